"""Crash-safe progress of an extraction directory: work files and the failure log.

Phase 1 of a job writes each finished video's RAW features (before normalization, which needs
statistics over the whole training split) as its own work file `DIR/.work/<video_id>.npz`,
built in memory and written whole (claws.data.atomic; the temporary file in `DIR/.work/tmp/`,
fsync, rename: only a file named exactly `<video_id>.npz` directly in `.work/` is a work file,
whatever the id looks like). A kill -9 therefore loses at most the videos in flight. Failures
are appended to `DIR/failures.jsonl`, one JSON object per line.

Every work file also stores the key of what produced it; which work files a rerun may trust is
decided in claws.extract.resume_plan.

Shapes: raw features (T, D) float32.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import time
from pathlib import Path
import numpy as np

from claws.data.atomic import space_named, temporary_path, write_atomic
from claws.data.shards import VideoRecord

logger = logging.getLogger(__name__)

WORK_DIR = ".work"
WORK_SUFFIX = ".npz"
TMP_DIR = "tmp"  # .work/tmp/: files being written; never read as work files
FAILURES = "failures.jsonl"


def work_dir(out: Path) -> Path:
    return Path(out) / WORK_DIR


def tmp_dir(out: Path) -> Path:
    return work_dir(out) / TMP_DIR


def prepare_out(out: Path) -> None:
    """Create `out` with its work folders and clear temporary files of writes a crash cut short.

    Fails before any work when `out` cannot be written. Call it once per job (rank 0 under
    torchrun, before any rank writes).
    """
    out = Path(out)
    try:
        tmp_dir(out).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=tmp_dir(out)):
            pass
    except OSError as err:
        raise OSError(f"output folder {out} is not writable ({err.strerror or err}); pass an --out "
                      "folder you can write to") from err
    stale = [*tmp_dir(out).iterdir(), *work_dir(out).glob(f"*{WORK_SUFFIX}.tmp")]  # 2nd: old names
    for path in stale:
        if path.is_file():
            path.unlink()


def remove_empty_work_dir(out: Path) -> None:
    """Remove `.work/` once no work file is left in it (any rank may call it)."""
    for folder in (tmp_dir(out), work_dir(out)):
        try:
            folder.rmdir()
        except OSError:
            return


def write_work(out: Path, record: VideoRecord, key: dict) -> Path:
    """Store one video's raw features, metadata and key (claws.extract.resume_plan.work_key)
    atomically as `.work/<video_id>.npz`.

    Raises:
        claws.data.atomic.DiskFullError: no room for it (nothing is left behind).
    """
    meta = {k: getattr(record, k) for k in (
        "video_id", "num_frames", "fps", "label", "split", "class_name", "source_path",
        "source_size", "source_mtime_ns", "clip_len", "tail_policy", "extractor")}
    image = io.BytesIO()
    np.savez(image, features=record.features.astype(np.float32), meta=json.dumps(meta),
             key=json.dumps(key, sort_keys=True))
    path = work_dir(out) / f"{record.video_id}{WORK_SUFFIX}"
    tmp_dir(out).mkdir(parents=True, exist_ok=True)
    return write_atomic(path, image.getbuffer(), temporary_path(path, tmp_dir(out)))


def read_work(path: Path) -> VideoRecord:
    """A work file back as a VideoRecord holding RAW features."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        return VideoRecord(features=z["features"], **meta)


def read_work_key(path: Path) -> dict | None:
    """The key a work file was written with; None for a file of an earlier version."""
    with np.load(path, allow_pickle=False) as z:
        return json.loads(str(z["key"])) if "key" in z.files else None


def work_files(out: Path) -> dict[str, Path]:
    """Finished work files by video id: exactly `.work/<video_id>.npz` (any id, dots included)."""
    folder = work_dir(out)
    if not folder.is_dir():
        return {}
    return {p.name[:-len(WORK_SUFFIX)]: p for p in sorted(folder.glob(f"*{WORK_SUFFIX}"))
            if p.is_file()}


def log_failure(out: Path, video_id: str, path: str, reason: str, rank: int = 0) -> None:
    """Append one failure to `DIR/failures.jsonl` (a line per failure, flushed at once)."""
    line = json.dumps({"video_id": video_id, "path": path, "reason": reason, "rank": rank,
                       "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n"
    with space_named(Path(out), FAILURES, len(line)), open(Path(out) / FAILURES, "a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_failures(out: Path) -> list[dict]:
    """Every failure ever logged in `out` (oldest first)."""
    path = Path(out) / FAILURES
    if not path.is_file():
        return []
    failures = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            failures.append(json.loads(line))
        except json.JSONDecodeError:
            if line.strip():
                logger.warning("%s:%d: not a JSON line (cut short by a full disk or a crash?); "
                               "skipped", path, n)
    return failures
