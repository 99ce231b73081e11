"""One extraction job over a list of videos: resume, extract, normalize, shard.

Before any video is decoded, the job checks what it can (`--stats-from` and its feature dim,
that the output folder is writable, that finished shards hold the job's videos from the same
sources). Phase 1 extracts every video not yet done (not in a finished shard, no work file made
from the same source and extractor) and stores its raw features as a work file
(claws.extract.resume, claws.extract.resume_plan). Phase 2, once every video is done or failed,
picks the normalization statistics and writes the final shards of the job's videos
(claws.extract.finalize).
Under torchrun each rank runs this same function on its share of the videos; the barriers keep
every rank's view of the directory the same where it matters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from claws.data.clips import CLIP_LEN, TAIL_POLICY
from claws.data.shards import NormStats, VideoRecord, video_id_problem
from claws.data.videos import VideoItem, source_stamp
from claws.extract.distributed import Rank, all_sum, balanced_split, barrier
from claws.extract.engine import Network, extract_videos
from claws.extract.finalize import check_given_stats, existing_stats, resolve_stats, write_shards
from claws.extract.loader import Preprocess, VideoEnd
from claws.extract.resume import log_failure, prepare_out, remove_empty_work_dir, write_work
from claws.extract.resume_plan import (
    check_same_extractor, job_work_files, log_resume, plan_resume, work_key,
)

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
    out = Path(config.out)
    given = None if config.stats is None else check_given_stats(
        config.stats, extractor.get("feature_dim"), config.stats_origin)
    if rank.rank == 0:
        prepare_out(out)
    check_same_extractor(out, extractor)
    stored = existing_stats(out)
    keys = {i.video_id: video_key(i, extractor) for i in items}
    plan = plan_resume(out, keys)
    pending = [i for i in items if i.video_id not in plan.done]
    skipped = len(items) - len(pending)
    unnamable = [(i, why) for i in pending if (why := video_id_problem(i.video_id))]
    pending = [i for i in pending if not video_id_problem(i.video_id)]
    barrier(rank)  # nobody writes before every rank has looked at the directory
    if rank.rank == 0:
        log_resume(plan, out, "extracting it again")
        if skipped:
            logger.info("%d of %d videos already done in %s; skipping them", skipped, len(items),
                        out)
    weights = [keys[i.video_id]["source_size"] for i in pending]
    share = balanced_split(pending, weights, rank.world_size)[rank.rank]
    failed: list[tuple[str, str]] = []

    def on_done(item: VideoItem, features: np.ndarray, end: VideoEnd) -> None:
        key = keys[item.video_id]
        write_work(out, VideoRecord(
            item.video_id, features, end.num_frames, end.fps, item.label, item.split,
            item.class_name, key["source_path"], key["source_size"], CLIP_LEN, TAIL_POLICY,
            extractor, key["source_mtime_ns"],
        ), key)
        if end.reported_frames != end.num_frames:
            logger.info("%s: %d frames decoded, container reported %d", item.video_id,
                        end.num_frames, end.reported_frames)

    def on_failed(item: VideoItem, reason: str) -> None:
        logger.error("%s (%s) failed: %s", item.video_id, item.path, reason)
        log_failure(out, item.video_id, str(item.path), reason, rank.rank)
        failed.append((item.video_id, reason))

    if rank.rank == 0:
        for item, why in unnamable:  # failed now: a shard could not hold them
            on_failed(item, why)
    counters = {}
    if share:
        counters = extract_videos(
            share, network, preprocess, on_done, on_failed, batch_size=config.batch_size,
            workers=config.workers, chunk_clips=config.chunk_clips, device=config.device,
            decode_threads=config.decode_threads, progress=config.progress,
        )
    barrier(rank)  # every rank's work files are on disk now
    shards = _finalize(out, stored, given, config, rank, keys)
    return JobResult(counters.get("videos_done", 0), skipped, failed,
                     all_sum(len(failed), rank, config.device), shards, counters)


def video_key(item: VideoItem, extractor: dict) -> dict:
    """The work-file key of a video of this job (claws.extract.resume_plan.work_key)."""
    return work_key(source_stamp(item.path), extractor, label=item.label, split=item.split,
                    class_name=item.class_name)


def _finalize(out: Path, stored, given, config: JobConfig, rank: Rank, keys: dict) -> list[Path]:
    everything = job_work_files(out, keys)
    barrier(rank)  # every rank listed the same work files before any is turned into a shard
    written = []
    if everything:
        files = everything[rank.rank::rank.world_size]
        stats = resolve_stats(out, stored, files, given, rank, config.device)
        written = write_shards(out, files, stats, rank, config.shard_size, config.created_by)
    remove_empty_work_dir(out)
    return written
