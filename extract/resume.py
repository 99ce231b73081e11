"""Crash-safe progress of an extraction directory: work files and the failure log.

Phase 1 of a job writes each finished video's RAW features (before normalization, which needs
statistics over the whole training split) as its own work file `DIR/.work/<video_id>.npz`,
atomically (temporary name, fsync, rename). A kill -9 therefore loses at most the videos in
flight; a rerun skips every video that has a work file or is already in a finished shard.
Failures are appended to `DIR/failures.jsonl`, one JSON object per line.

Shapes: raw features (T, D) float32.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import h5py
import numpy as np

from claws.data.shards import VideoRecord, list_shards

WORK_DIR = ".work"
FAILURES = "failures.jsonl"
# Extractor fields that must agree for features to live in one dataset.
IDENTITY_KEYS = ("weights_sha256", "random", "seed", "precision", "feature_dim", "mean_source",
                 "clip_len", "network", "segments", "l2_normalized")
# Values of identity fields added later, for extractor dicts written before they existed.
IDENTITY_DEFAULTS = {"segments": None, "l2_normalized": False}


def work_dir(out: Path) -> Path:
    return Path(out) / WORK_DIR


def write_work(out: Path, record: VideoRecord) -> Path:
    """Store one video's raw features and metadata atomically as `.work/<video_id>.npz`."""
    folder = work_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record.video_id}.npz"
    tmp = folder / f".{record.video_id}.npz.tmp"
    meta = {k: getattr(record, k) for k in (
        "video_id", "num_frames", "fps", "label", "split", "class_name", "source_path",
        "source_size", "clip_len", "tail_policy", "extractor")}
    with open(tmp, "wb") as f:
        np.savez(f, features=record.features.astype(np.float32), meta=json.dumps(meta))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_work(path: Path) -> VideoRecord:
    """A work file back as a VideoRecord holding RAW features."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        return VideoRecord(features=z["features"], **meta)


def work_files(out: Path) -> dict[str, Path]:
    """Finished work files by video id (temporary files of videos in flight are ignored)."""
    folder = work_dir(out)
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.npz")) if not p.name.startswith(".")}


def shard_videos(out: Path) -> dict[str, dict]:
    """Videos already in finished shards under `out`: id -> extractor dict."""
    if not Path(out).is_dir():
        return {}
    found = {}
    for shard in list_shards(out):
        with h5py.File(shard, "r") as h5:
            for vid, g in h5.get("videos", {}).items():
                found[vid] = json.loads(g.attrs.get("extractor", "{}"))
    return found


def _identity(extractor: dict) -> dict:
    return {k: extractor.get(k, IDENTITY_DEFAULTS.get(k)) for k in IDENTITY_KEYS}


def check_same_extractor(out: Path, extractor: dict) -> None:
    """Fail when `out` already holds features of a different extractor (weights, precision...)."""
    wanted = _identity(extractor)
    previous = next(iter(shard_videos(out).values()), None)
    if previous is None:
        files = work_files(out)
        previous = read_work(next(iter(files.values()))).extractor if files else None
    if previous is None:
        return
    found = _identity(previous)
    if found != wanted:
        diff = {k: (found[k], wanted[k]) for k in IDENTITY_KEYS if found[k] != wanted[k]}
        raise ValueError(
            f"{out} holds features of another extractor (stored, requested): {diff}; "
            "use a new output directory or the same settings"
        )


def log_failure(out: Path, video_id: str, path: str, reason: str, rank: int = 0) -> None:
    """Append one failure to `DIR/failures.jsonl` (a line per failure, flushed at once)."""
    line = json.dumps({"video_id": video_id, "path": path, "reason": reason, "rank": rank,
                       "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
    with open(Path(out) / FAILURES, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_failures(out: Path) -> list[dict]:
    """Every failure ever logged in `out` (oldest first)."""
    path = Path(out) / FAILURES
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
