"""Published per-clip feature files and the lists that describe them (for `claws import-features`).

Users often hold the per-video feature files that other repositories published instead of the
videos. This module reads what is on disk:

- Per-clip feature files: one `.npy` per video (or one array per video in an `.npz`), `(T, D)`
  (one row per 16-frame clip) or `(T, crops, D)` (e.g. the 10-crop I3D/C3D files of RTFM-style
  repositories; the crops are averaged), or one `.npy` per crop named `<video>__<k>.npy`
  (k = 0..crops-1, each `(T, D)`; averaged too). Which file belongs to which video:
  claws.data.feature_sources; segment-pooled files: claws.data.segment_files.
- Frame-count lists (`read_frame_counts`), any of: UCF-Crime `Train_Annotation.txt`
  (`Class/name.mp4 NUM_FRAMES`) and `Test_Annotation.txt` (`Class/name.mp4 NUM_FRAMES Class s1 e1
  s2 e2`), `Temporal_Anomaly_Annotation_New.txt` (`name.mp4 Class s1 e1 s2 e2 NUM_FRAMES`),
  ShanghaiTech `SH_Test_NEW.txt` (`name,label,num_frames`, -1 = unknown), or a generic CSV whose
  header names the columns `video,num_frames[,fps]` (other columns are ignored; a video may appear
  on several rows when they agree, as in the ucf_c3d32 pack's index.csv).
- An import manifest (`read_import_manifest`): CSV with the header `video,label,split[,class]`.

Shapes: T clips, D feature dim.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path, PurePosixPath
from typing import NamedTuple, Sequence

import numpy as np

from claws.data.feature_sources import CROP_FILE, FeatureFileError, read_array
from claws.data.text_files import open_text
from claws.data.videos import (
    DatasetError, VideoItem, check_unique, manifest_rows, printable, read_lines, row_label_split,
)


class FrameCount(NamedTuple):
    """What a frame-count list says about one video."""

    num_frames: int  # frames of the original video; -1 when the list does not know
    fps: float  # frame rate from the list, 0.0 when it has none
    source: str  # file name of the list, recorded with the features


class ClipFeatures(NamedTuple):
    """One video's features as read from its file(s)."""

    features: np.ndarray  # (T, D) float32, crops averaged
    crops: int  # crops averaged (1 when the file had none)
    paths: list[Path]  # the file(s) read
    size: int  # bytes of those files


def _video_id(name: str) -> str:
    return printable(PurePosixPath(name.replace("\\", "/")).stem)


def _count(text: str, where: str) -> int:
    """A listed frame count: a whole number (written 1234 or 1234.0), -1 or 0 meaning unknown."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value == int(value) and value >= -1):
        raise DatasetError(f"{where}: frame count {text!r} is not a whole number of frames "
                           "(-1: unknown); fix the line")
    return int(value)


def _csv_counts(path: Path) -> dict[str, FrameCount]:
    counts: dict[str, FrameCount] = {}
    lines: dict[str, int] = {}
    with open_text(path) as f:
        reader = csv.DictReader(f, skipinitialspace=True)
        if not reader.fieldnames or not {"video", "num_frames"} <= set(reader.fieldnames):
            raise DatasetError(f"{path}: a frame-count CSV needs the columns 'video,num_frames[,fps]'")
        for n, row in enumerate(reader, 2):
            where = f"{path}:{n}"
            try:
                fps = float(row.get("fps") or 0.0)
            except ValueError as err:
                raise DatasetError(f"{where}: fps {row['fps']!r} is not a number") from err
            vid = _video_id((row["video"] or "").strip())
            count = FrameCount(_count(row["num_frames"] or "", where), fps, path.name)
            old = counts.get(vid)
            if old is not None and old != count:
                raise DatasetError(f"{where}: video {vid} has {count.num_frames} frames (fps {fps}) "
                                   f"but line {lines[vid]} says {old.num_frames} (fps {old.fps}); "
                                   "fix one of the rows")
            counts[vid], lines[vid] = count, lines.get(vid, n)
    return counts


def _line_count(fields: list[str], comma: bool, where: str) -> tuple[str, int]:
    if comma and len(fields) == 3:  # ShanghaiTech name,label,num_frames
        return fields[0], _count(fields[2], where)
    if len(fields) >= 2 and fields[1].lstrip("-").isdigit():  # Class/name.mp4 NUM_FRAMES ...
        return fields[0], _count(fields[1], where)
    if len(fields) == 7 and fields[-1].isdigit():  # name.mp4 Class s1 e1 s2 e2 NUM_FRAMES
        return fields[0], _count(fields[-1], where)
    raise DatasetError(
        f"{where}: no frame count in {' '.join(fields)!r}; expected 'Class/name.mp4 NUM_FRAMES ...', "
        "'name,label,num_frames' or a CSV with header video,num_frames[,fps]"
    )


def read_frame_counts(path: Path) -> dict[str, FrameCount]:
    """Frame counts (and fps when given) by video id from one list file (formats: module doc)."""
    path = Path(path)
    lines = read_lines(path, "frame-count list")
    if lines and lines[0].replace(" ", "").lower().startswith("video,"):
        return _csv_counts(path)
    counts = {}
    for n, line in enumerate(lines, 1):
        comma = "," in line
        fields = [f.strip() for f in line.split(",")] if comma else line.split()
        name, num_frames = _line_count(fields, comma, f"{path}:{n}")
        counts[_video_id(name)] = FrameCount(num_frames, 0.0, path.name)
    return counts


def read_import_manifest(path: Path) -> list[VideoItem]:
    """Videos of a CSV `video,label,split[,class]` (header required; label anomalous/normal/1/0/-1)."""
    items = []
    for where, row in manifest_rows(path, "video", "video,label,split[,class]"):
        video_id = _video_id(row["video"].strip())
        if not video_id:
            raise DatasetError(f"{where}: empty video name")
        items.append(VideoItem(video_id, None, *row_label_split(row, where),
                               (row.get("class") or "").strip()))
    if not items:
        raise DatasetError(f"{path}: no videos listed")
    return check_unique(items, str(path))


def load_clip_features(paths: Sequence[Path], key: str | None = None) -> ClipFeatures:
    """One video's (T, D) features from a (T, D) / (T, crops, D) file or from per-crop files.

    Args:
        paths: one .npy or .npz, or the per-crop .npy files in crop order.
        key: the video's array in an .npz holding one array per video (None for .npy).

    Raises:
        FeatureFileError: unreadable file, wrong rank, zero rows, crops of different shapes,
            NaN or inf; the message names the file (and the npz key).
    """
    paths = [Path(p) for p in paths]
    where = f"{paths[0]}[{key}]" if key is not None else str(paths[0])
    arrays = [read_array(p, key) for p in paths]
    if len(arrays) > 1:
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1 or arrays[0].ndim != 2:
            match = CROP_FILE.match(paths[0].stem)
            video = printable(match["base"]) if match else _video_id(paths[0].name)
            raise FeatureFileError(
                f"{paths[0].parent}: the {len(paths)} crop files of {video} "
                f"({paths[0].name} ...) must all be (T, D), got {sorted(shapes)}"
            )
        array = np.stack(arrays, axis=1)  # (T, crops, D)
    else:
        array = arrays[0]
    if array.ndim not in (2, 3) or array.shape[0] == 0 or array.shape[-1] == 0:
        raise FeatureFileError(
            f"{where}: features of shape {array.shape}; expected (T, D) or (T, crops, D) with T > 0"
        )
    crops = array.shape[1] if array.ndim == 3 else 1
    features = array.astype(np.float64).mean(axis=1) if array.ndim == 3 else array
    features = np.asarray(features, dtype=np.float32)
    if not np.isfinite(features).all():
        raise FeatureFileError(f"{where}: features contain NaN or inf")
    return ClipFeatures(features, crops, list(paths), sum(p.stat().st_size for p in paths))
