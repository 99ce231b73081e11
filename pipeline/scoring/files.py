"""The scores folder written by `claws score` and read by `claws evaluate`.

Per video (every file written atomically; `<stem>.events.json` last, so its presence with the
others marks a finished video and a rerun skips it):

    <stem>.npy          (num_frames,) float32 per-frame curve
    <stem>.csv          frame,time_s,score (header, then exactly num_frames rows; time = frame/fps)
    <stem>.png          the curve against time, events shaded, the threshold dashed
    <stem>.events.json  summary (video_id, num_frames, fps, duration_s, source, checkpoint,
                        checkpoint_sha256, weights_sha256, random_features, peak, peak_s,
                        window, threshold, event parameters, num_events) and the events list

<stem> is the video id, or for an id of more than 200 bytes its first bytes, `~` and 16 hex
digits of its sha256 (claws.data.videos.file_stem), so that no name passes the 255 bytes a file
system allows; readers take the id from the events file and index.jsonl, never from a name.

A folder holds the results of ONE set of scoring settings (SETTINGS: the checkpoint's content,
window, threshold, event parameters): a run whose settings differ from those of a finished video
in the folder refuses to start unless told to overwrite, which rescores its videos and removes
the outputs of the others (other_settings, remove_outputs), so the index never mixes settings.

For the folder: `index.jsonl` (one line per finished video: the summary without the events,
rebuilt from the events files at the end of every run) and `failures.jsonl` (this run's failures,
one JSON object per line with video and reason).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from claws.data.atomic import atomic_path, save_npy, write_json, write_jsonl
from claws.data.videos import file_stem
from claws.pipeline.scoring.events import Event
from claws.pipeline.scoring.plots import plot_curve_events
from claws.pipeline.scoring.curve import ScoredVideo

logger = logging.getLogger(__name__)

INDEX = "index.jsonl"
FAILURES = "failures.jsonl"
EVENTS_SUFFIX = ".events.json"
REVIEW_DIR = "review"  # the review page of the folder (claws.pipeline.review.site writes it)
OUTPUT_SUFFIXES = (".npy", ".csv", ".png", EVENTS_SUFFIX)
# The run fields that decide a video's outputs: the checkpoint by content (not by path: a moved
# run folder is the same checkpoint), the scoring window and the event settings.
SETTINGS = ("checkpoint_sha256", "window", "threshold", "min_duration_s", "merge_gap_s")


class ScoresError(ValueError):
    """A scores folder is incomplete or inconsistent; the message names the video and file."""


def is_complete(out: Path, video_id: str) -> bool:
    """True when every output of the video exists (events.json is written last)."""
    return _complete_stem(out, file_stem(video_id))


def _complete_stem(out: Path, stem: str) -> bool:
    return all((Path(out) / f"{stem}{s}").is_file() for s in OUTPUT_SUFFIXES)


def video_output_files(out: Path) -> list[Path]:
    """The per-video files a scores folder holds: every OUTPUT_SUFFIXES file of a name that has
    a curve (`.npy`, written first), so that a run whose input folder is its --out never reads
    its own plots as frames."""
    out = Path(out)
    names = [p.name[:-len(".npy")] for p in out.glob("*.npy")] if out.is_dir() else []
    return [out / f"{name}{suffix}" for name in names for suffix in OUTPUT_SUFFIXES]


def other_settings(out: Path, run: dict) -> dict[str, dict[str, tuple]]:
    """Finished videos of a scores folder scored with other SETTINGS than `run`.

    Returns:
        video id -> {setting: (value in the folder, value of `run`)} for every differing setting
        (a summary written before a setting was recorded differs in it, as None).
    """
    found = {}
    for info in read_summaries(out):
        differ = {k: (info.get(k), run[k]) for k in SETTINGS if info.get(k) != run[k]}
        if differ:
            found[info["video_id"]] = differ
    return found


def remove_outputs(out: Path, video_id: str) -> None:
    """Delete a video's outputs, events.json first (so a crash midway leaves it unfinished)."""
    for suffix in (EVENTS_SUFFIX, *OUTPUT_SUFFIXES[:-1]):
        (Path(out) / f"{file_stem(video_id)}{suffix}").unlink(missing_ok=True)


def write_curve_csv(path: Path, frame_scores: np.ndarray, fps: float) -> Path:
    """`frame,time_s,score` with one row per frame, atomically."""
    frames = np.arange(len(frame_scores))
    table = np.column_stack([frames, frames / fps, frame_scores])
    with atomic_path(path) as tmp:
        np.savetxt(tmp, table, fmt=("%d", "%.4f", "%.6f"), delimiter=",",
                   header="frame,time_s,score", comments="")
    return Path(path)


def summary(scored: ScoredVideo, events: list[Event], run: dict) -> dict:
    """The per-video summary stored in events.json and index.jsonl."""
    peak_frame = int(np.argmax(scored.frame_scores))
    return {
        "video_id": scored.video_id,
        "num_frames": scored.num_frames,
        "fps": scored.fps,
        "duration_s": round(scored.num_frames / scored.fps, 4),
        "source": scored.source,
        "label": scored.label,
        "class_name": scored.class_name,
        "random_features": scored.random_features,
        "precision": scored.precision,
        "peak": round(float(scored.frame_scores[peak_frame]), 6),
        "peak_s": round(peak_frame / scored.fps, 4),
        "mean": round(float(scored.frame_scores.mean()), 6),
        "num_events": len(events),
        **run,
    }


def write_video_outputs(out: Path, scored: ScoredVideo, events: list[Event], run: dict) -> dict:
    """Write all outputs of one scored video; returns its summary.

    Args:
        out: the scores folder.
        scored: the scored video.
        events: its events.
        run: fields shared by the whole run (checkpoint, weights_sha256, threshold, ...).
    """
    out = Path(out)
    vid, stem = scored.video_id, file_stem(scored.video_id)
    info = summary(scored, events, run)
    save_npy(out / f"{stem}.npy", scored.frame_scores.astype(np.float32))
    write_curve_csv(out / f"{stem}.csv", scored.frame_scores, scored.fps)
    title = (f"{vid}: {info['duration_s']:.1f} s, peak {info['peak']:.3f} at "
             f"{info['peak_s']:.1f} s, {len(events)} event{'' if len(events) == 1 else 's'}"
             + (" (RANDOM C3D WEIGHTS)" if scored.random_features else ""))
    min_duration = run.get("min_duration_s", 0.0)
    plot_curve_events(out / f"{stem}.png", scored.frame_scores, scored.fps, events,
                      run.get("threshold", 0.5), title,
                      f"events last >= {min_duration:g} s" if min_duration else "events")
    write_json(out / f"{stem}{EVENTS_SUFFIX}", {**info, "events": [e.to_dict() for e in events]})
    return info


def _checked_summary(text: str | bytes, where: str, fix: str) -> dict:
    """One video's summary (an events file or an index line), with what the readers rely on.

    Raises:
        ScoresError: not a JSON object, no video_id or num_frames, or a num_frames that is not a
            whole number >= 1; the message says `where` and ends with `fix`.
    """
    try:
        info = json.loads(text)
    except ValueError as err:  # JSONDecodeError, or bytes that are not UTF-8
        raise ScoresError(f"{where}: not a JSON object ({err}); {fix}") from err
    if not isinstance(info, dict):
        raise ScoresError(f"{where}: not a JSON object but {type(info).__name__}; {fix}")
    for key in ("video_id", "num_frames"):
        if key not in info:
            raise ScoresError(f"{where}: lacks {key}; {fix}")
    count = info["num_frames"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ScoresError(f"{where}: num_frames {count!r} is not a whole number >= 1; {fix}")
    if not isinstance(info["video_id"], str) or not info["video_id"]:
        raise ScoresError(f"{where}: video_id {info['video_id']!r} is not a name; {fix}")
    return info


def read_summaries(out: Path) -> list[dict]:
    """Summaries of every finished video in a scores folder, sorted by video id.

    Raises:
        ScoresError: a damaged events file, named, with what to do.
    """
    rows = []
    for path in sorted(Path(out).glob(f"*{EVENTS_SUFFIX}")):
        stem = path.name[: -len(EVENTS_SUFFIX)]
        if not _complete_stem(out, stem):  # unfinished, or a temporary name
            continue
        info = _checked_summary(path.read_bytes(), str(path),
                                "delete it and rerun `claws score` to score that video again")
        if file_stem(info["video_id"]) != stem:
            raise ScoresError(f"{path}: holds video {info['video_id']}, whose files are named "
                              f"{file_stem(info['video_id'])}.*; a renamed or copied file? "
                              "delete it and rerun `claws score`")
        info.pop("events", None)
        rows.append(info)
    return sorted(rows, key=lambda row: row["video_id"])


def write_index(out: Path) -> Path:
    """Rebuild index.jsonl from the finished videos' events files."""
    return write_jsonl(Path(out) / INDEX, read_summaries(out))


def read_curves(out: Path) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Curves and summaries of a scores folder, each curve checked against its num_frames.

    Args:
        out: a folder written by `claws score`.

    Returns:
        (video id -> (num_frames,) float32 curve, summaries).
    """
    out = Path(out)
    index = out / INDEX
    if not index.is_file():
        raise ScoresError(f"{out}: no {INDEX}; is this a folder written by `claws score`?")
    fix = (f"rerun `claws score` with the same arguments into {out} to rebuild {INDEX} from the "
           f"videos' {EVENTS_SUFFIX} files")
    rows = [_checked_summary(line, f"{index}:{n}", fix)
            for n, line in enumerate(index.read_bytes().splitlines(), 1) if line.strip()]
    curves = {}
    for row in rows:
        vid, path = row["video_id"], out / f"{file_stem(row['video_id'])}.npy"
        if not path.is_file():
            raise ScoresError(f"{path}: listed in {INDEX} but missing; rerun `claws score`")
        try:
            curve = np.load(path)
        except (ValueError, OSError) as err:
            raise ScoresError(f"{path}: unreadable curve ({err}); delete the outputs of video "
                              f"{vid} and rerun `claws score`") from err
        if curve.shape != (row["num_frames"],):
            raise ScoresError(
                f"{path}: video {vid}: curve of shape {curve.shape} but num_frames="
                f"{row['num_frames']}; delete its outputs and rerun `claws score`"
            )
        curves[vid] = curve
    return curves, rows
