"""Phase 2 of a job: normalization statistics, then final shards from the work files.

Statistics come, in this order, from (1) the shards already in the output directory (new videos
added to a finished directory are normalized exactly like the old ones; a finished shard is never
rewritten), (2) `--stats-from` (an earlier run's statistics, read by the command from its shards
or checkpoint and handed to the job, so extract/ never reads checkpoints; checked against the
job's feature dim before any work, `check_given_stats`), or (3) the raw features of the TRAINING
videos of this job (DESIGN.md "Mean normalization"), combined across torchrun ranks. Each rank
then writes its share of the work files into shards of at most `shard_size` videos, named
`shard-r<rank>-<n>.h5`, and removes those work files.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from claws.data.shards import NormAccumulator, NormStats, ShardSet, list_shards, write_shard
from claws.extract.distributed import Rank, all_reduce_accumulator
from claws.extract.resume import read_work
from claws.extract.resume_plan import shard_videos

logger = logging.getLogger(__name__)


def check_given_stats(stats: NormStats, feature_dim: int | None, origin: str) -> NormStats:
    """Statistics handed to the job (`--stats-from`) must be of the job's feature dim.

    Args:
        stats: the statistics (read by the command: claws.pipeline.checkpoint.stats_from).
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


def resolve_stats(
    out: Path, stored: NormStats | None, files: list[Path], given: NormStats | None, rank: Rank,
    device: str,
) -> NormStats:
    """Pick the statistics (see the module docstring); a collective when computed.

    Args:
        out: the output directory (recorded as the statistics' source when computed).
        stored: `existing_stats(out)` taken at the START of the job, before any rank wrote a
            shard, so that every rank takes the same branch.
        files: this rank's work files.
        given: the statistics of `--stats-from` (`check_given_stats`), or None.
        rank: this process.
        device: the job's device (NCCL reduces on the GPU).
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
    acc = all_reduce_accumulator(acc or NormAccumulator(dim), rank, device)
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
    out: Path, files: list[Path], stats: NormStats, rank: Rank, shard_size: int, created_by: str
) -> list[Path]:
    """Normalize this rank's work files into new shards, then delete those work files."""
    in_shards = set(shard_videos(out))
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
            record.features = stats.normalize(record.features)
            records.append(record)
        shard = Path(out) / f"shard-r{rank.rank:03d}-{index:05d}.h5"
        written.append(write_shard(shard, records, stats, created_by))
        index += 1
        for path in group:
            path.unlink()
    return written
