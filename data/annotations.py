"""Ground truth per frame: annotation files to 0/1 frame labels. DESIGN.md "Scores to frames".

Three sources, each turned into the same `GroundTruth` (one `VideoTruth` per video):

- UCF-Crime temporal annotations (`Temporal_Anomaly_Annotation.txt`, Sultani et al.): lines
  `name.mp4 Class s1 e1 s2 e2`, frames 1-based and inclusive, -1 = no second (or any) event.
  The variants `Class/name.mp4 NUM_FRAMES Class s1 e1 s2 e2` (`Test_Annotation.txt`) and
  `name.mp4 Class s1 e1 s2 e2 NUM_FRAMES` (`Temporal_Anomaly_Annotation_New.txt`) carry the frame
  counts themselves. Ranges are clipped to the video length; each clip is a counted warning.
- ShanghaiTech (Zhong et al. weakly supervised split): a split file of lines `name,label,num_frames`
  (`SH_Test_NEW.txt`, -1 = use the mask length) or plain names (`SH_Test.txt`), plus a folder of
  per-frame uint8 masks `test_frame_mask/<name>.npy`. A video without a mask is all normal.
- A generic interval CSV with header `video,start_frame,end_frame` (optional columns `num_frames`,
  `class`): frames 0-based, end EXCLUSIVE; a row with empty or -1 start/end lists a normal video,
  and a video listed so may have no event row too (an error naming both lines).

Frame counts that a file does not give come from `frame_counts` (e.g. the lengths of the score
curves). Video ids are file stems without folder or extension (`Abuse028_x264`); names that are not
UTF-8 get the ids claws.data.videos gives their files. An annotation that lies entirely past its
video's end is an error (the file or the frame count is wrong), not a clipped empty event.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from claws.data.text_files import open_text, read_text
from claws.data.videos import printable

logger = logging.getLogger(__name__)

NORMAL_CLASS = "Normal"


class AnnotationError(ValueError):
    """An annotation file cannot be turned into frame labels; the message names file and video."""


@dataclass(frozen=True)
class VideoTruth:
    """Per-frame ground truth of one video."""

    video_id: str
    frame_labels: np.ndarray  # (num_frames,) uint8, 1 = anomalous frame
    class_name: str  # UCF-Crime class, "Normal" for a normal video

    @property
    def num_frames(self) -> int:
        return int(self.frame_labels.shape[0])

    @property
    def is_anomalous(self) -> bool:
        return bool(self.frame_labels.any()) or self.class_name != NORMAL_CLASS


@dataclass
class GroundTruth:
    """All annotated videos of one test set, plus the warnings met while reading them."""

    videos: dict[str, VideoTruth]
    source: str  # the annotation file(s) read
    warnings: list[str] = field(default_factory=list)  # e.g. annotations past a video's end

    @property
    def num_frames(self) -> int:
        return sum(v.num_frames for v in self.videos.values())

    @property
    def num_anomalous_frames(self) -> int:
        return sum(int(v.frame_labels.sum()) for v in self.videos.values())


def video_id_of(name: str) -> str:
    """`Arson/Arson022_x264.mp4` -> `Arson022_x264`: the id a video has everywhere in claws."""
    name = Path(printable(name.strip())).name
    return Path(name).stem if "." in name else name


def _read_lines(path: Path) -> list[str]:
    """Lines of an annotation file (claws.data.text_files: BOM or not, names as on disk)."""
    return read_text(path).splitlines()


def labels_from_ranges(
    video_id: str, num_frames: int, ranges: list[tuple[int, int]], warnings: list[str],
    origins: list[str] | None = None,
) -> np.ndarray:
    """0-based half-open frame ranges to a (num_frames,) uint8 label array, clipped to the video.

    Args:
        video_id: named in warnings and errors.
        num_frames: length of the video.
        ranges: (start, end) pairs, 0-based, end exclusive.
        warnings: a range that ends past the video's end is clipped and a message appended here.
        origins: each range as its file writes it, with file and line, for the messages
            (default: the 0-based range).

    Returns:
        (num_frames,) uint8 array, 1 inside any range.

    Raises:
        AnnotationError: an empty or negative range, or one that starts past the video's end.
    """
    labels = np.zeros(num_frames, dtype=np.uint8)
    for k, (start, end) in enumerate(ranges):
        shown = origins[k] if origins else f"[{start}, {end})"
        if start < 0 or end <= start:
            raise AnnotationError(f"video {video_id}: invalid frame range {shown}")
        if start >= num_frames:
            raise AnnotationError(
                f"video {video_id}: the annotation {shown} lies entirely past the video's end "
                f"({num_frames} frames); fix the annotation or the video's frame count, or leave "
                "the video out (--videos)"
            )
        if end > num_frames:
            warnings.append(
                f"video {video_id}: annotation {shown} ends past the video's end "
                f"({num_frames} frames); clipped"
            )
        labels[start:min(end, num_frames)] = 1
    return labels


def _is_int(token: str) -> bool:
    return token.lstrip("-").isdigit()


def _frame_count(text: str, where: str, video_id: str, unknown_ok: bool = False) -> int:
    """A frame count as written in an annotation file: a whole number >= 1 (or -1 = unknown)."""
    text = text.strip()
    if _is_int(text) and (int(text) >= 1 or (unknown_ok and int(text) == -1)):
        return int(text)
    allowed = "a whole number >= 1" + (" (or -1: unknown)" if unknown_ok else "")
    raise AnnotationError(f"{where}: video {video_id}: num_frames {text!r} is not {allowed}; "
                          "fix the line")


def _parse_ucf_line(path: Path, lineno: int, line: str) -> tuple[str, str, list[int], int | None]:
    """One annotation line to (video id, class, [s1, e1, s2, e2], frame count or None)."""
    tokens = line.split()
    if len(tokens) == 6 and not _is_int(tokens[1]):
        name, cls, bounds, count = tokens[0], tokens[1], tokens[2:6], None
    elif len(tokens) == 7 and _is_int(tokens[1]):
        name, count, cls, bounds = tokens[0], tokens[1], tokens[2], tokens[3:7]
    elif len(tokens) == 7 and _is_int(tokens[6]):
        name, cls, bounds, count = tokens[0], tokens[1], tokens[2:6], tokens[6]
    else:
        raise AnnotationError(
            f"{path}:{lineno}: expected 'name Class s1 e1 s2 e2' (optionally with a frame count), "
            f"got {line.strip()!r}"
        )
    if not all(_is_int(b) for b in bounds):
        raise AnnotationError(f"{path}:{lineno}: frame bounds must be integers, got {bounds}")
    vid = video_id_of(name)
    if count is not None:
        count = _frame_count(count, f"{path}:{lineno}", vid)
    return vid, cls, [int(b) for b in bounds], count


def _ucf_ranges(
    video_id: str, bounds: list[int], where: str
) -> tuple[list[tuple[int, int]], list[str]]:
    """1-based inclusive (s, e) pairs, -1 = none, to 0-based half-open ranges and their origins."""
    ranges, origins = [], []
    for start, end in zip(bounds[0::2], bounds[1::2]):
        if start == -1 and end == -1:
            continue
        if start < 1 or end < start:
            raise AnnotationError(
                f"{where}: video {video_id}: 1-based inclusive range ({start}, {end}) is invalid; "
                "use -1 -1 for no event"
            )
        ranges.append((start - 1, end))
        origins.append(f"frames {start}-{end} (1-based, inclusive; {where})")
    return ranges, origins


def read_ucf_frame_counts(path: Path) -> dict[str, int]:
    """Frame counts per video id from a file with counts (`Test_Annotation.txt` and kin)."""
    counts = {}
    for lineno, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        tokens = line.split()
        if len(tokens) >= 2 and _is_int(tokens[1]):
            vid = video_id_of(tokens[0])
            counts[vid] = _frame_count(tokens[1], f"{path}:{lineno}", vid)
        elif len(tokens) == 7 and _is_int(tokens[6]):
            vid = video_id_of(tokens[0])
            counts[vid] = _frame_count(tokens[6], f"{path}:{lineno}", vid)
        else:
            raise AnnotationError(f"{path}:{lineno}: no frame count in {line.strip()!r}")
    if not counts:
        raise AnnotationError(f"{path}: no frame counts found")
    return counts


def load_ucf_crime(path: Path, frame_counts: Mapping[str, int] | None = None) -> GroundTruth:
    """UCF-Crime test ground truth from a temporal annotation file.

    Args:
        path: `Temporal_Anomaly_Annotation.txt` (or a variant with frame counts).
        frame_counts: video id -> frames, for lines without a count (from `Test_Annotation.txt`
            via `read_ucf_frame_counts`, or the lengths of the score curves).

    Returns:
        GroundTruth with one VideoTruth per line; ranges past a video's end clipped and counted.
    """
    path = Path(path)
    frame_counts = frame_counts or {}
    videos: dict[str, VideoTruth] = {}
    warnings: list[str] = []
    for lineno, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        vid, cls, bounds, count = _parse_ucf_line(path, lineno, line)
        if vid in videos:
            raise AnnotationError(f"{path}:{lineno}: video {vid} annotated twice")
        if count is None:
            if vid not in frame_counts:
                raise AnnotationError(
                    f"{path}: video {vid} has no frame count: pass --ucf-frame-counts "
                    "Test_Annotation.txt or score the video first"
                )
            count = int(frame_counts[vid])
        ranges, origins = _ucf_ranges(vid, bounds, f"{path}:{lineno}")
        labels = labels_from_ranges(vid, count, ranges, warnings, origins)
        videos[vid] = VideoTruth(vid, labels, cls)
    return _finish(videos, str(path), warnings)


def load_shanghaitech(
    mask_dir: Path, split_file: Path, frame_counts: Mapping[str, int] | None = None
) -> GroundTruth:
    """ShanghaiTech test ground truth from per-frame masks and the split's frame counts.

    Args:
        mask_dir: folder of `<name>.npy` uint8 masks (the anomalous videos of the split).
        split_file: `name,label,num_frames` lines (-1 = mask length) or plain names.
        frame_counts: video id -> frames for normal videos whose count the split does not give.

    Returns:
        GroundTruth; an anomalous video's labels are its mask, a normal video's are zeros.
    """
    mask_dir, split_file = Path(mask_dir), Path(split_file)
    frame_counts = frame_counts or {}
    videos: dict[str, VideoTruth] = {}
    for lineno, line in enumerate(_read_lines(split_file), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        vid, where = printable(parts[0]), f"{split_file}:{lineno}"
        if len(parts) > 1 and parts[1] not in ("0", "1", "-1"):
            raise AnnotationError(f"{where}: video {vid}: label {parts[1]!r} is not 0, 1 or -1")
        label = int(parts[1]) if len(parts) > 1 else -1
        count = _frame_count(parts[2], where, vid, unknown_ok=True) if len(parts) > 2 else -1
        if vid in videos:
            raise AnnotationError(f"{split_file}:{lineno}: video {vid} listed twice")
        videos[vid] = _sht_video(mask_dir, split_file, vid, label, count, frame_counts)
    return _finish(videos, f"{split_file} + {mask_dir}", [])


def _sht_video(
    mask_dir: Path, split_file: Path, vid: str, label: int, count: int,
    frame_counts: Mapping[str, int],
) -> VideoTruth:
    mask_path = mask_dir / f"{vid}.npy"
    if mask_path.is_file():
        mask = (np.load(mask_path) > 0).astype(np.uint8).reshape(-1)
        if count not in (-1, len(mask)):
            raise AnnotationError(
                f"{split_file}: video {vid}: {count} frames listed but {mask_path} has {len(mask)}"
            )
        if label == 0 and mask.any():
            raise AnnotationError(f"{split_file}: video {vid} is labelled normal but {mask_path} "
                                  "marks anomalous frames")
        return VideoTruth(vid, mask, "Anomalous" if mask.any() else NORMAL_CLASS)
    if label == 1:
        raise AnnotationError(f"video {vid} is anomalous in {split_file} but {mask_path} is missing")
    if count == -1:
        if vid not in frame_counts:
            raise AnnotationError(
                f"{split_file}: video {vid} has no frame count and no mask; score it first"
            )
        return VideoTruth(vid, np.zeros(int(frame_counts[vid]), np.uint8), NORMAL_CLASS)
    return VideoTruth(vid, np.zeros(count, np.uint8), NORMAL_CLASS)


def load_intervals(path: Path, frame_counts: Mapping[str, int] | None = None) -> GroundTruth:
    """Ground truth from a CSV `video,start_frame,end_frame[,num_frames][,class]`.

    Frames are 0-based and the end is EXCLUSIVE. A row with empty or -1 start/end lists a normal
    video; a video may have several rows (several events), but not a normal row and an event row.

    Args:
        path: the CSV file, with a header row.
        frame_counts: video id -> frames for videos without a `num_frames` column value.

    Returns:
        GroundTruth over every video named in the file.

    Raises:
        AnnotationError: a bad header or row, or a video listed both as normal and with an event
            (naming the file, both lines and the video).
    """
    path = Path(path)
    frame_counts = frame_counts or {}
    ranges: dict[str, list[tuple[int, int, str]]] = {}  # (start, end, where it is written)
    counts: dict[str, int] = {}
    classes: dict[str, str] = {}
    normal_line: dict[str, int] = {}  # video -> its first normal row
    event_line: dict[str, int] = {}  # video -> its first event row
    with open_text(path) as handle:
        reader = csv.DictReader(handle)
        missing = {"video", "start_frame", "end_frame"} - set(reader.fieldnames or [])
        if missing:
            raise AnnotationError(f"{path}: header lacks {sorted(missing)}; "
                                  "expected video,start_frame,end_frame")
        for lineno, row in enumerate(reader, 2):
            vid = video_id_of(row["video"])
            span = _interval_row(path, lineno, vid, row, counts, classes)
            ranges.setdefault(vid, [])
            if span is None:
                normal_line.setdefault(vid, lineno)
            else:
                ranges[vid].append(span)
                event_line.setdefault(vid, lineno)
            if vid in normal_line and vid in event_line:
                raise AnnotationError(
                    f"{path}:{lineno}: video {vid} is listed as normal (line {normal_line[vid]}) "
                    f"and with an event (line {event_line[vid]}); remove the normal row, or the "
                    "event rows if the video is normal"
                )
    videos, warnings = {}, []
    for vid, spans in ranges.items():
        count = counts.get(vid, frame_counts.get(vid))
        if count is None:
            raise AnnotationError(f"{path}: video {vid} has no num_frames; score it first "
                                  "or add a num_frames column")
        labels = labels_from_ranges(vid, int(count), [(s, e) for s, e, _ in spans], warnings,
                                    [origin for *_, origin in spans])
        cls = classes.get(vid) or ("Anomalous" if spans else NORMAL_CLASS)
        videos[vid] = VideoTruth(vid, labels, cls)
    return _finish(videos, str(path), warnings)


def _interval_row(
    path: Path, lineno: int, vid: str, row: dict, counts: dict[str, int], classes: dict[str, str]
) -> tuple[int, int, str] | None:
    """One CSV row's event (start, end, where it is written), or None for a normal row; its
    num_frames and class go into `counts` and `classes`."""
    # a row shorter than the header has None in the missing columns
    start, end = (row.get("start_frame") or "").strip(), (row.get("end_frame") or "").strip()
    if (row.get("num_frames") or "").strip():
        counts[vid] = _frame_count(row["num_frames"], f"{path}:{lineno}", vid)
    if (row.get("class") or "").strip():
        classes[vid] = row["class"].strip()
    if start in ("", "-1") and end in ("", "-1"):
        return None
    if not (_is_int(start) and _is_int(end)):
        raise AnnotationError(f"{path}:{lineno}: video {vid}: start/end must be integers")
    return int(start), int(end), f"[{start}, {end}) (0-based, end exclusive; {path}:{lineno})"


def _finish(videos: dict[str, VideoTruth], source: str, warnings: list[str]) -> GroundTruth:
    if not videos:
        raise AnnotationError(f"{source}: no videos annotated")
    for message in warnings:
        logger.warning(message)
    return GroundTruth(videos, source, warnings)
