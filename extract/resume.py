"""What an extraction directory holds between runs, and what a rerun may reuse of it.

Phase 1 of a job writes each finished video's RAW features (before normalization, which needs
statistics over the whole training split) as its own work file `DIR/.work/<stem>.npz`, where
<stem> is the video id, or for an id of more than 200 bytes its first bytes, `~` and a hash
(claws.data.videos.file_stem: a name's length never depends on the source's; the full id is in
the file), built in memory and written whole (claws.data.atomic; the temporary file in
`DIR/.work/tmp/`, fsync, rename: only a file named exactly `<stem>.npz` directly in `.work/` is a
work file, whatever the id looks like). A kill -9 therefore loses at most the videos in flight.
Failures are appended to `DIR/failures.jsonl`, one JSON object per line, as they happen; it holds
one line per video whose last attempt failed: a job first drops the lines of its own videos
(those it retries, and those done since), so a rerun never repeats a line.

Every work file also stores the key of what produced it (`work_key`): the source (resolved
path, size, modification time), the extractor identity and the video's label and split. A rerun
reuses a work file only when its key equals the job's key for that video, extracts the video
again otherwise (logged with the fields that differ), and leaves work files of videos that are
not in the job out of the shards and the statistics (logged). A video already in a finished
shard is done, unless the shard says it came from another source: then the job stops
(`ResumeConflict`), because a finished shard is never modified. An output directory holds the
features of one extractor only (`check_same_extractor`).

Shapes: raw features (T, D) float32.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import time
import zipfile
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from claws.data.atomic import space_named, temporary_path, write_atomic, write_jsonl
from claws.data.shards import VideoRecord, list_shards
from claws.data.videos import file_stem

logger = logging.getLogger(__name__)

# What reading a damaged work file raises: a truncated zip (BadZipFile, EOFError), a damaged
# member (ValueError, KeyError), or the file system (OSError).
DAMAGED = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


# --- work files and the failure log ----------------------------------------------------------

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


def job_outputs(out: Path) -> list[Path]:
    """What an extraction job writes: `out` itself, its work folder, failure log and shards
    (a search for footage never reads them: claws.data.footage.folder_items)."""
    out = Path(out)
    return [out, work_dir(out), out / FAILURES, *sorted(out.glob("shard-*.h5"))]


def remove_empty_work_dir(out: Path) -> None:
    """Remove `.work/` once no work file is left in it (any rank may call it: a folder another
    rank removed already is not in the way; one that still holds files stays)."""
    for folder in (tmp_dir(out), work_dir(out)):
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            return


def write_work(out: Path, record: VideoRecord, key: dict) -> Path:
    """Store one video's raw features, metadata and key (`work_key`) atomically as
    `.work/<file_stem(video_id)>.npz`.

    Raises:
        claws.data.atomic.DiskFullError: no room for it (nothing is left behind).
    """
    meta = {k: getattr(record, k) for k in (
        "video_id", "num_frames", "fps", "label", "split", "class_name", "source_path",
        "source_size", "source_mtime_ns", "clip_len", "tail_policy", "extractor", "rotation",
        "mirrored")}
    image = io.BytesIO()
    np.savez(image, features=record.features.astype(np.float32), meta=json.dumps(meta),
             key=json.dumps(key, sort_keys=True))
    path = work_path(out, record.video_id)
    tmp_dir(out).mkdir(parents=True, exist_ok=True)
    return write_atomic(path, image.getbuffer(), temporary_path(path, tmp_dir(out)))


def work_path(out: Path, video_id: str) -> Path:
    """Where the work file of `video_id` is (or goes) in `out`."""
    return work_dir(out) / f"{file_stem(video_id)}{WORK_SUFFIX}"


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
    """Finished work files by file stem (`file_stem` of the video id: the id itself unless it is
    over 200 bytes): exactly `.work/<stem>.npz` (any stem, dots included)."""
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


def forget_failures(out: Path, video_ids: set[str]) -> None:
    """Drop the failure lines of `video_ids` from `DIR/failures.jsonl` (rewritten whole; removed
    when nothing is left): a job calls it for its own videos before it logs any failure."""
    path = Path(out) / FAILURES
    failures = read_failures(out)
    kept = [f for f in failures if f.get("video_id") not in video_ids]
    if len(kept) == len(failures):
        return
    if kept:
        write_jsonl(path, kept)
    else:
        path.unlink(missing_ok=True)


def read_failures(out: Path) -> list[dict]:
    """The failures logged in `out`: one per video whose last attempt failed (oldest first)."""
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


# --- which videos are done: work-file keys, finished shards, the extractor identity ---------

# Extractor fields that must agree for features to live in one dataset.
IDENTITY_KEYS = ("weights_sha256", "random", "seed", "precision", "feature_dim", "mean_source",
                 "clip_len", "network", "segments", "l2_normalized", "resize", "fc6_precision")
# Values of identity fields added later, for extractor dicts written before they existed.
# "resize": before OpenCV resized the frames, a float bilinear resize rounded half up did (it
# differs by one level in 8.6% of pixels), so such features are not mixed with new ones.
IDENTITY_DEFAULTS = {"segments": None, "l2_normalized": False, "resize": "float_bilinear_round"}
SOURCE_FIELDS = ("source_path", "source_size", "source_mtime_ns")


class ResumeConflict(ValueError):
    """A video of the job is in a finished shard but was made from another source."""


class ShardVideo(NamedTuple):
    """What a finished shard says about one of its videos."""

    shard: Path
    extractor: dict
    source: dict  # SOURCE_FIELDS as stored (source_mtime_ns -1 in shards of earlier versions)


class ResumePlan(NamedTuple):
    """Where a job stands in its output directory."""

    done: set[str]  # job videos in a finished shard or with a work file of the same key
    stale: dict[str, str]  # job video -> why its work file is not reused (it is extracted again)
    foreign: list[str]  # work files (by stem: the id, unless long) of videos not in this job


def work_key(source: dict, extractor: dict, **video) -> dict:
    """The key of a work file: its source (`claws.data.videos.source_stamp`), the identity of
    the extractor, and further fields that change the stored record (label, split...)."""
    key = {**{k: source[k] for k in SOURCE_FIELDS},
           **{f"extractor.{k}": v for k, v in _identity(extractor).items()}, **video}
    return json.loads(json.dumps(key, sort_keys=True))  # as it reads back from a file


def shard_videos(out: Path) -> dict[str, ShardVideo]:
    """Videos already in finished shards under `out`, by id."""
    if not Path(out).is_dir():
        return {}
    found = {}
    for shard in list_shards(out):
        with h5py.File(shard, "r") as h5:
            for vid, g in h5.get("videos", {}).items():
                a = g.attrs
                source = {"source_path": str(a.get("source_path", "")),
                          "source_size": int(a.get("source_size", -1)),
                          "source_mtime_ns": int(a.get("source_mtime_ns", -1))}
                found[vid] = ShardVideo(shard, json.loads(a.get("extractor", "{}")), source)
    return found


def _identity(extractor: dict) -> dict:
    found = {k: extractor.get(k, IDENTITY_DEFAULTS.get(k)) for k in IDENTITY_KEYS}
    if "fc6_precision" not in extractor:  # before issue 22 fc6 ran in the convolutions' precision
        found["fc6_precision"] = extractor.get("precision")
    return found


def check_same_extractor(out: Path, extractor: dict) -> None:
    """Fail when `out` already holds features of a different extractor (weights, precision...)."""
    wanted = _identity(extractor)
    previous = next((v.extractor for v in shard_videos(out).values()), None)
    for path in work_files(out).values() if previous is None else ():
        try:
            previous = read_work(path).extractor
            break
        except DAMAGED:  # plan_resume names it and extracts its video again
            continue
    if previous is None:
        return
    found = _identity(previous)
    if found != wanted:
        diff = {k: (found[k], wanted[k]) for k in IDENTITY_KEYS if found[k] != wanted[k]}
        raise ValueError(
            f"{out} holds features of another extractor (stored, requested): {diff}; "
            "use a new output directory or the same settings"
        )


def _source_differs(stored: dict, wanted: dict) -> list[str]:
    """The source fields in which a finished shard's video differs from the job's video."""
    path = Path(stored["source_path"])
    same_path = (str(path) == wanted["source_path"] if path.is_absolute()  # earlier versions
                 else path.name == Path(wanted["source_path"]).name)  # stored paths as given
    differs = [] if same_path else ["source_path"]
    return differs + [k for k in ("source_size", "source_mtime_ns") if stored[k] >= 0
                      and stored[k] != wanted[k]]


def _describe(source: dict) -> str:
    mtime = source["source_mtime_ns"]
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(mtime / 1e9)) if mtime >= 0 else "?"
    return f"{source['source_path']} ({source['source_size']} bytes, modified {when})"


def _key_change(stored: dict | None, wanted: dict) -> str:
    if stored is None:
        return "an earlier claws version that did not record it"
    changed = [f"{k}: {stored.get(k)!r} -> {wanted[k]!r}" for k in sorted(wanted)
               if stored.get(k) != wanted[k]]
    return "other footage or settings (" + "; ".join(changed) + ")"


def plan_resume(out: Path, keys: dict[str, dict]) -> ResumePlan:
    """Which videos of a job are done, which work files are stale, which belong to no video.

    Args:
        out: the output directory.
        keys: the job's videos, id -> `work_key`.

    Raises:
        ResumeConflict: videos of the job are in finished shards but came from other sources.
    """
    in_shards = shard_videos(out)
    conflicts = [
        f"{vid} in {in_shards[vid].shard.name} was made from {_describe(in_shards[vid].source)}, "
        f"this job's {vid} is {_describe(keys[vid])} (differs in "
        f"{', '.join(_source_differs(in_shards[vid].source, keys[vid]))})"
        for vid in sorted(set(keys) & set(in_shards))
        if _source_differs(in_shards[vid].source, keys[vid])
    ]
    if conflicts:
        raise ResumeConflict(
            f"{out}: {len(conflicts)} videos of this job are already in finished shards but "
            f"from other footage: {'; '.join(conflicts[:10])}. Finished shards are never "
            "modified: write this job to a new output directory, or leave these videos out of "
            "it; if it is the same footage moved or touched, delete the shard files named here "
            "and rerun to extract their videos again"
        )
    done = set(keys) & set(in_shards)
    stale: dict[str, str] = {}
    files = work_files(out)
    stems = {vid: file_stem(vid) for vid in keys}
    for vid in sorted(vid for vid in set(keys) - done if stems[vid] in files):
        try:
            stored = read_work_key(files[stems[vid]])
        except DAMAGED as err:  # a work file damaged after it was written
            stale[vid] = f"it cannot be read ({err})"
            continue
        if stored == keys[vid]:
            done.add(vid)
        else:
            stale[vid] = f"its work file was made from {_key_change(stored, keys[vid])}"
    return ResumePlan(done, stale, sorted(set(files) - set(stems.values())))


def log_resume(plan: ResumePlan, out: Path, redo: str) -> None:
    """Say which work files are not reused and which are left out of this job."""
    for vid, why in plan.stale.items():
        logger.warning("%s: %s; %s", vid, why, redo)
    if plan.foreign:
        logger.warning(
            "%d work files in %s belong to videos that are not in this job (%s%s): they are left "
            "out of its shards and statistics; rerun with those videos in the job to finish "
            "them, or delete the files", len(plan.foreign), work_dir(out),
            ", ".join(plan.foreign[:20]), ", ..." if len(plan.foreign) > 20 else "")


def job_work_files(out: Path, keys: dict[str, dict]) -> list[Path]:
    """The work files that belong in this job's shards, sorted: those of its videos with their
    key, and those of its videos already in a shard (left by a crash before the cleanup)."""
    files = work_files(out)
    stems = [file_stem(vid) for vid in plan_resume(out, keys).done]
    return sorted(files[stem] for stem in stems if stem in files)


