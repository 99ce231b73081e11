"""The extraction job over a list of videos: plan, extract, finalize.

Plan: before any video is decoded, the job checks what it can (`--stats-from` and its feature
dim, that the output folder is writable, that the folder holds features of the same extractor:
`prepare_job`) and which videos are still to do (not in a finished shard, no work file made from
the same source and extractor; a finished shard of the job's video from another source stops the
job: `pending_videos`, claws.extract.resume). Extract (phase 1): every pending video goes
through the engine (claws.extract.engine) and its raw features are stored as a work file.
Finalize (phase 2, `finish_job`), once every video is done or failed: pick the normalization
statistics, then write the final shards of the job's videos from the work files; a video whose
features are not finite once normalized (finite raw values far outside the training videos' range
overflow float32) fails there alone, like a video that cannot be read. The import job
(claws.extract.import_job) runs the same plan and finalize steps around its own phase 1.

Statistics come, in this order, from (1) the shards already in the output directory (new videos
added to a finished directory are normalized exactly like the old ones; a finished shard is never
rewritten), (2) `--stats-from` (an earlier run's statistics, read by the command from its shards
or checkpoint and handed to the job, so extract/ never reads checkpoints; checked against the
job's feature dim before any work, `check_given_stats`), or (3) the raw features of the TRAINING
videos of this job (DESIGN.md "Mean normalization"), combined across torchrun ranks. Each rank
then writes its share of the work files into shards of at most `shard_size` videos, named
`shard-r<rank>-<n>.h5`, and removes those work files.

Under torchrun each rank runs `run_job` on its share of the videos; the barriers keep
every rank's view of the directory the same where it matters.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Sequence

import numpy as np

from claws.data.atomic import DiskFullError
from claws.data.clips import CLIP_LEN, TAIL_POLICY
from claws.data.shards import (
    NormAccumulator, NormStats, ShardSet, VideoRecord, list_shards, video_id_problem, write_shard,
)
from claws.data.videos import VideoItem, file_stem, printable, source_stamp
from claws.extract.distributed import Rank, all_reduce_accumulator, all_sum, balanced_split, barrier
from claws.extract.resume import (
    check_same_extractor, forget_failures, job_work_files, log_failure, log_resume, plan_resume,
    prepare_out, read_work, remove_empty_work_dir, shard_videos, work_key, write_work,
)

if TYPE_CHECKING:  # the engine (decoders, torchvision) is imported by run_job only, so the
    # import job, which shares the plan and finalize steps, does not load what it never runs
    from claws.extract.engine import Network, Preprocess, VideoEnd

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobConfig:
    """How to run a job (everything but the videos and the network)."""

    out: Path  # output directory: shards, .work/, failures.jsonl
    batch_size: int = 16  # clips per network call, from one or several videos
    workers: int = 1  # DataLoader decode/preprocess processes per rank
    chunk_clips: int = 8  # clips decoded at a time per worker (memory bound)
    device: str = "cpu"  # where the network runs ("cuda:1" etc.)
    shard_size: int = 64  # videos per shard file
    stats: NormStats | None = None  # an earlier run's statistics to normalize with (--stats-from)
    stats_origin: str = "--stats-from"  # what gave `stats`, as the user named it, for messages
    decode_threads: int = 1  # decoder threads per worker
    progress: bool = True  # tqdm bar
    created_by: str = "claws extract"  # recorded in every shard


class JobResult(NamedTuple):
    """What one rank did."""

    extracted: int  # videos extracted by this rank in this run
    skipped: int  # videos already done before this run (all ranks)
    failed: list[tuple[str, str]]  # (video_id, reason) of this rank's failures
    failed_total: int  # failures over all ranks
    shards: list[Path]  # shards this rank wrote
    counters: dict  # engine counters (clips, seconds, clips_per_s, network_calls)


class JobStats(NamedTuple):
    """The statistics a job may normalize with, fixed before phase 1 (`resolve_stats`)."""

    stored: NormStats | None  # of the finished shards in the output directory, if any
    given: NormStats | None  # handed to the job (`--stats-from`), checked against its feature dim


def run_job(
    items: Sequence[VideoItem], network: Network, preprocess: Preprocess, extractor: dict,
    config: JobConfig, rank: Rank = Rank(),
) -> JobResult:
    """Extract, normalize and shard `items` into `config.out` (resumable, crash-safe).

    Args:
        items: every video of the job (all ranks get the same list).
        network: clips to (B, D) features on `config.device`.
        preprocess: picklable frames-to-clips function for the workers.
        extractor: recorded with every video; its identity keys must match earlier runs in `out`.
        config: job settings.
        rank: this process under torchrun, or the single process.
    """
    from claws.extract.engine import extract_videos

    out = Path(config.out)
    stats = prepare_job(out, extractor, config.stats, config.stats_origin, rank)
    keys, unreadable = video_keys(items, extractor)
    pending = pending_videos(out, items, keys, "done", "extracting it again", rank)
    pending = [i for i in pending if i.video_id in keys]  # the unreadable fail below
    skipped = len(items) - len(pending) - len(unreadable)
    unnamable = [(i, why) for i in pending if (why := video_id_problem(i.video_id))]
    pending = [i for i in pending if not video_id_problem(i.video_id)]
    weights = [keys[i.video_id]["source_size"] for i in pending]
    share = balanced_split(pending, weights, rank.world_size)[rank.rank]
    failed: list[tuple[str, str]] = []

    def on_done(item: VideoItem, features: np.ndarray, end: VideoEnd) -> None:
        key = keys[item.video_id]
        try:
            write_work(out, VideoRecord(
                item.video_id, features, end.num_frames, end.fps, item.label, item.split,
                item.class_name, key["source_path"], key["source_size"], CLIP_LEN, TAIL_POLICY,
                extractor, key["source_mtime_ns"], end.rotation, end.mirrored,
            ), key)
        except DiskFullError:
            raise  # nothing else can be written either: the job stops (exit 2), resumable
        except OSError as err:  # a limit of this one file: the video fails alone
            on_failed(item, f"its work file cannot be written ({err})")
            return
        if end.rotation or end.mirrored:
            logger.info("%s: turned %d degrees counterclockwise%s, as its display matrix says",
                        item.video_id, end.rotation, " and mirrored" if end.mirrored else "")
        if end.reported_frames != end.num_frames:
            logger.info("%s: %d frames decoded, container reported %d", item.video_id,
                        end.num_frames, end.reported_frames)

    def on_failed(item: VideoItem, reason: str) -> None:
        logger.error("%s (%s) failed: %s", item.video_id, item.path, reason)
        log_failure(out, item.video_id, str(item.path), reason, rank.rank)
        failed.append((item.video_id, reason))

    if rank.rank == 0:
        for item, why in unreadable + unnamable:  # failed now: nothing to decode, or a shard
            on_failed(item, why)  # could not hold them
    counters = {}
    if share:
        counters = extract_videos(
            share, network, preprocess, on_done, on_failed, batch_size=config.batch_size,
            workers=config.workers, chunk_clips=config.chunk_clips, device=config.device,
            decode_threads=config.decode_threads, progress=config.progress,
        )
    barrier(rank)  # every rank's work files are on disk now
    shards = finish_job(out, keys, stats, config.shard_size, config.created_by, rank, failed)
    return JobResult(counters.get("videos_done", 0), skipped, failed,
                     all_sum(len(failed), rank), shards, counters)


def video_key(item: VideoItem, extractor: dict) -> dict:
    """The work-file key of a video of this job (claws.extract.resume.work_key)."""
    return work_key(source_stamp(item.path), extractor, label=item.label, split=item.split,
                    class_name=item.class_name)


def video_keys(
    items: Sequence[VideoItem], extractor: dict
) -> tuple[dict[str, dict], list[tuple[VideoItem, str]]]:
    """The work-file keys of the job's videos, and the videos whose source cannot be read.

    Returns:
        (video id -> key, [(item, why)] for a source that is gone: a dangling symbolic link, a
        file deleted after the folder was searched, one that cannot be looked at).
    """
    keys, unreadable = {}, []
    for item in items:
        try:
            keys[item.video_id] = video_key(item, extractor)
        except OSError as err:
            unreadable.append((item, source_problem(Path(item.path), err)))
    return keys, unreadable


def source_problem(path: Path, err: OSError) -> str:
    """Why a video's source cannot be read, for failures.jsonl."""
    if path.is_symlink() and not path.exists():
        return f"a symbolic link to {printable(os.readlink(path))}, which does not exist"
    return f"cannot be read ({err.strerror or err})"


# --- plan: checks before any work, and the videos still to do --------------------------------

def prepare_job(
    out: Path, extractor: dict, stats: NormStats | None, stats_origin: str, rank: Rank = Rank()
) -> JobStats:
    """Check what can be checked before any work, and create the output folder.

    Args:
        out: the output directory.
        extractor: the job's extractor dict (its feature dim and identity keys).
        stats: statistics handed to the job (`--stats-from`), or None.
        stats_origin: what gave `stats`, as the user named it, for messages.
        rank: this process (rank 0 creates the folder).

    Returns:
        The stored and the given statistics (`resolve_stats` picks one in phase 2).

    Raises:
        ValueError: `stats` of another feature dim, or `out` holds another extractor's features.
        OSError: `out` cannot be written.
    """
    given = None if stats is None else check_given_stats(
        stats, extractor.get("feature_dim"), stats_origin)
    if rank.rank == 0:
        prepare_out(out)
    check_same_extractor(out, extractor)
    return JobStats(existing_stats(out), given)


def pending_videos(
    out: Path, items: Sequence[VideoItem], keys: dict[str, dict], done: str, redo: str,
    rank: Rank = Rank(),
) -> list[VideoItem]:
    """The videos of `items` not done yet in `out` (claws.extract.resume.plan_resume), logged;
    failures.jsonl forgets the failures of `items`, which this job retries or has done.

    Args:
        out: the output directory.
        items: every video of the job.
        keys: video id -> work-file key (`work_key`); a video without one is pending.
        done: what the log says of videos done before ("done", "imported").
        redo: what the log says happens to a video whose work file is not reused.
        rank: this process (rank 0 logs).

    Raises:
        claws.extract.resume.ResumeConflict: a finished shard holds a job video of other footage.
    """
    plan = plan_resume(out, keys)
    pending = [i for i in items if i.video_id not in plan.done]
    skipped = len(items) - len(pending)
    if rank.rank == 0:  # before the barrier: no rank has logged a failure of this run yet
        forget_failures(out, {i.video_id for i in items})
    barrier(rank)  # nobody writes before every rank has looked at the directory
    if rank.rank == 0:
        log_resume(plan, out, redo)
        if skipped:
            logger.info("%d of %d videos already %s in %s; skipping them", skipped, len(items),
                        done, out)
    return pending


def check_given_stats(stats: NormStats, feature_dim: int | None, origin: str) -> NormStats:
    """Statistics handed to the job (`--stats-from`) must be of the job's feature dim.

    Args:
        stats: the statistics (read by the command: claws.pipeline.training.checkpoint.stats_from).
        feature_dim: the job's feature dim (None: not checked).
        origin: what gave them, as the user named it ("--stats-from PATH"), for the message.

    Returns:
        `stats`.

    Raises:
        ValueError: the dimensions differ; the message names `origin` and says what to do.
    """
    if feature_dim is not None and stats.feature_dim != int(feature_dim):
        raise ValueError(
            f"{origin} holds statistics of feature dim {stats.feature_dim}, this job's features "
            f"have dim {feature_dim}; pass statistics of features made the same way (the same "
            "--feature-dim), or drop --stats-from"
        )
    return stats


def existing_stats(out: Path) -> NormStats | None:
    """The statistics of the finished shards in `out`, if any."""
    if not Path(out).is_dir() or not list_shards(out):
        return None
    return ShardSet(out).stats


# --- finalize: statistics, then shards from the work files -----------------------------------

def finish_job(
    out: Path, keys: dict[str, dict], stats: JobStats, shard_size: int, created_by: str,
    rank: Rank = Rank(), failed: list[tuple[str, str]] | None = None,
) -> list[Path]:
    """Phase 2: normalize this rank's share of the job's work files into shards.

    Args:
        out: the output directory.
        keys: the job's videos, id -> work-file key (only their work files become shards).
        stats: `prepare_job`'s statistics.
        shard_size: videos per shard file.
        created_by: recorded in every shard.
        rank: this process; every rank calls it (computed statistics are a collective).
        failed: (video_id, reason) of each video that fails here is appended to it (and logged in
            failures.jsonl).

    Returns:
        The shards this rank wrote.
    """
    everything = job_work_files(out, keys)
    barrier(rank)  # every rank listed the same work files before any is turned into a shard
    written = []
    if everything:
        files = everything[rank.rank::rank.world_size]
        chosen = resolve_stats(out, stats.stored, files, stats.given, rank)
        written = write_shards(out, files, chosen, rank, shard_size, created_by, failed)
    remove_empty_work_dir(out)
    return written


def resolve_stats(
    out: Path, stored: NormStats | None, files: list[Path], given: NormStats | None, rank: Rank,
) -> NormStats:
    """Pick the statistics (see the module docstring); a collective when computed.

    Args:
        out: the output directory (recorded as the statistics' source when computed).
        stored: `existing_stats(out)` taken at the START of the job, before any rank wrote a
            shard, so that every rank takes the same branch.
        files: this rank's work files.
        given: the statistics of `--stats-from` (`check_given_stats`), or None.
        rank: this process.
    """
    if stored is not None:
        logger.info("adding videos to %s with its stored statistics (%d train videos, %d clips)",
                    out, stored.num_videos, stored.num_clips)
        return stored
    if given is not None:
        logger.info("normalizing with the statistics of %s (%d train videos, %d clips)",
                    given.source, given.num_videos, given.num_clips)
        return given
    acc = None
    for path in files:
        record = read_work(path)
        if acc is None:
            acc = NormAccumulator(record.features.shape[1])
        if record.split == "train":
            acc.update(record.features)
    dim = _feature_dim(acc, files)
    acc = all_reduce_accumulator(acc or NormAccumulator(dim), rank)
    stats = acc.finalize(source=str(out))
    logger.info("normalization statistics from %d training videos (%d clips)",
                stats.num_videos, stats.num_clips)
    return stats


def _feature_dim(acc: NormAccumulator | None, files: list[Path]) -> int:
    if acc is not None:
        return acc.sum.shape[0]
    # a rank without work files still joins the collective with the job's feature dimension
    return int(read_work(files[0]).extractor["feature_dim"]) if files else 2048


def next_shard_index(out: Path, rank: int) -> int:
    pattern = re.compile(rf"^shard-r{rank:03d}-(\d+)\.h5$")
    used = [int(m.group(1)) for p in Path(out).glob("shard-*.h5") if (m := pattern.match(p.name))]
    return max(used, default=-1) + 1


def write_shards(
    out: Path, files: list[Path], stats: NormStats, rank: Rank, shard_size: int, created_by: str,
    failed: list[tuple[str, str]] | None = None,
) -> list[Path]:
    """Normalize this rank's work files into new shards, then delete those work files.

    A video whose normalized features are not finite is left out, logged as failed (appended
    to `failed` too) and its work file deleted, so a rerun reads its source again.
    """
    in_shards = {file_stem(vid) for vid in shard_videos(out)}
    pending = []
    for path in files:
        if path.stem in in_shards:  # written before a crash that came before the cleanup
            path.unlink(missing_ok=True)
        else:
            pending.append(path)
    written, index = [], next_shard_index(out, rank.rank)
    for start in range(0, len(pending), shard_size):
        group = pending[start:start + shard_size]
        records = []
        for path in group:
            record = read_work(path)
            raw = record.features
            with np.errstate(over="ignore"):  # checked here, with the video named
                record.features = stats.normalize(raw)
            if np.isfinite(record.features).all():
                records.append(record)
                continue
            reason = (f"features are not finite after normalization: raw values up to "
                      f"{np.abs(raw).max():.3g}, statistics of {stats.source or 'unknown'} with "
                      f"ranges down to {stats.range.min():.3g}, overflow float32; the source holds "
                      "values far outside those of the training videos: check it")
            logger.error("%s (%s) failed: %s", record.video_id, record.source_path, reason)
            log_failure(out, record.video_id, record.source_path, reason, rank.rank)
            if failed is not None:
                failed.append((record.video_id, reason))
        if records:
            shard = Path(out) / f"shard-r{rank.rank:03d}-{index:05d}.h5"
            written.append(write_shard(shard, records, stats, created_by))
            index += 1
        for path in group:
            path.unlink()
    return written
