"""The `claws score` job: score shard videos (or raw input, extracted by claws.pipeline.scoring.inputs)
with a checkpoint and write each video's curve, events and plot into a scores folder
(claws.pipeline.scoring.files). What the command accepts and writes is described in
claws.pipeline.commands.score, its command line, which hands this job a `ScoreJob`.

Under torchrun (claws.extract.distributed) the ranks share one job and one folder: raw footage is
extracted by the extraction job, whose ranks split the videos by file size; the videos still to
score are then split by clip count (`rank_share`, what scoring costs; shards too), each rank
writes the per-video files of its share, and once every rank is done (a collective that also
gathers the failures) rank 0 alone writes the folder's index.jsonl and failures.jsonl. Every
rank returns the same exit code, and bad input refuses on every rank (exit 2).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from claws.data.atomic import write_jsonl
from claws.data.shards import ShardError, ShardSet, VideoInfo
from claws.extract.c3d_weights import file_sha256
from claws.extract.distributed import Rank, all_gather, all_sum, balanced_split, barrier
from claws.pipeline.training.checkpoint import Checkpoint, load_checkpoint
from claws.pipeline.scoring.events import find_events
from claws.pipeline.lock import LOCK_NAME, folder_lock
from claws.pipeline.scoring.files import (
    FAILURES, INDEX, REVIEW_DIR, is_complete, other_settings, remove_outputs, video_output_files, write_index,
    write_video_outputs,
)
from claws.pipeline.scoring.curve import (
    FeatureMismatch, check_feature_dim, checkpoint_window, score_shard_video,
)
from claws.pipeline.scoring.inputs import RawFootage, extract_inputs

logger = logging.getLogger(__name__)

FEATURES_DIR = ".features"  # raw input is extracted here, inside the output folder
BAD_INPUT = (FileNotFoundError, ShardError, FeatureMismatch, ValueError)  # exit 2, by name


@dataclass(frozen=True)
class ScoreJob:
    """What `claws score` was asked to do (its options, typed)."""

    run: Path  # the training run folder or checkpoint file
    out: Path  # the scores folder
    footage: RawFootage | None = None  # raw input; None: score `shards`
    shards: Path | None = None  # feature shards to score instead of raw input
    split: str | None = None  # split of `shards` to score (None: all)
    threshold: float = 0.5  # a frame whose score reaches this is anomalous
    min_duration: float = 1.0  # shortest event, seconds
    merge_gap: float = 1.0  # events closer than this are merged, seconds
    window: int | None = None  # clips per scoring window; None: the training run's
    overwrite: bool = False  # rescore finished videos, remove those of other settings
    progress: bool = True


def score_outputs(out: Path) -> list[Path]:
    """What `claws score` writes: `out` itself and, for a run whose input folder is `out`, each
    thing it writes there (never read as input: claws.data.footage.folder_items)."""
    return [out, out / FEATURES_DIR, out / REVIEW_DIR, out / INDEX, out / FAILURES,
            out / LOCK_NAME, *video_output_files(out)]


def _run_fields(ckpt: Checkpoint, job: ScoreJob, window: int) -> dict:
    extractor = ckpt.feature_meta.get("extractor", {})
    return {
        "checkpoint": str(ckpt.path),
        "checkpoint_sha256": file_sha256(ckpt.path),
        "checkpoint_step": ckpt.step,
        "weights_sha256": extractor.get("weights_sha256", ""),
        "window": window,
        "threshold": job.threshold,
        "min_duration_s": job.min_duration,
        "merge_gap_s": job.merge_gap,
    }


def check_settings(out: Path, fields: dict, overwrite: bool) -> None:
    """Keep a scores folder to one set of settings (curve_files.SETTINGS).

    Finished videos scored with other settings make this run refuse (ValueError, exit 2) unless
    `overwrite`, which removes their outputs: this run rescores its own videos, and the others
    are gone rather than listed beside results of other settings.
    """
    others = other_settings(out, fields) if out.is_dir() else {}
    if not others:
        return
    differ: dict[str, tuple] = {}
    for found in others.values():
        for key, values in found.items():
            differ.setdefault(key, values)
    shown = "; ".join(f"{key} {_short(then)} there, {_short(now)} now"
                      for key, (then, now) in differ.items())
    videos = ", ".join(sorted(others)[:5]) + (", ..." if len(others) > 5 else "")
    if not overwrite:
        raise ValueError(
            f"{out} holds {len(others)} videos scored with other settings ({videos}: {shown}); "
            "a scores folder holds one set of settings: choose another --out, or pass --overwrite "
            "to rescore this run's videos and remove the outputs of the others")
    for video_id in others:
        remove_outputs(out, video_id)
    logger.warning("--overwrite: removed the outputs of %d videos scored with other settings "
                   "(%s: %s); this run rescores those it is given", len(others), videos, shown)


def _short(value: object) -> str:
    return value[:12] if isinstance(value, str) and len(value) == 64 else repr(value)


def one_line(info: dict) -> str:
    """The per-video summary line: duration, peak score and time, number of events."""
    flag = "  [RANDOM C3D WEIGHTS: not real features]" if info["random_features"] else ""
    return (f"{info['video_id']}: {info['duration_s']:.1f} s, {info['num_frames']} frames, "
            f"peak {info['peak']:.3f} at {info['peak_s']:.1f} s, {info['num_events']} "
            f"event{'' if info['num_events'] == 1 else 's'} "
            f"(C3D {info.get('precision', 'unknown')}){flag}")


def rank_share(videos: list[VideoInfo], rank: Rank) -> list[VideoInfo]:
    """This rank's share of the videos to score: greedy longest first on clip count (what scoring
    a video costs), the same split on every rank; all of them in one process."""
    return balanced_split(videos, [v.num_clips for v in videos], rank.world_size)[rank.rank]


def score_shards(
    ckpt: Checkpoint, shards: ShardSet, videos: list[VideoInfo], job: ScoreJob, fields: dict,
    rank: Rank = Rank(),
) -> tuple[list[dict], int, int]:
    """Score and write every video not yet finished, with the run `fields` (_run_fields).

    Args:
        ckpt: the loaded checkpoint.
        shards: the shards holding `videos`.
        videos: every video of the job (the same list on every rank).
        job: what `claws score` was asked to do.
        fields: the run's fields, recorded with every video.
        rank: this process under torchrun (it scores its `rank_share`; a collective).

    Returns:
        (this rank's failures as dicts of video, source and reason; videos this rank scored;
        videos skipped because an earlier run finished them).
    """
    window = fields["window"]
    failures = []
    todo = [v for v in videos if job.overwrite or not is_complete(job.out, v.video_id)]
    if len(todo) < len(videos) and rank.rank == 0:
        logger.info("%d of %d videos already scored in %s; skipping them",
                    len(videos) - len(todo), len(videos), job.out)
    barrier(rank)  # every rank listed the finished videos before any rank finishes another
    share = rank_share(todo, rank)
    if rank.distributed:
        logger.info("rank %d of %d: scoring %d of the %d videos to score", rank.rank,
                    rank.world_size, len(share), len(todo))
    for info in tqdm(share, unit="video", disable=not job.progress, dynamic_ncols=True):
        try:
            scored = score_shard_video(ckpt, shards, info, window)
            events = find_events(scored.frame_scores, scored.fps, job.threshold,
                                 job.min_duration, job.merge_gap)
            summary = write_video_outputs(job.out, scored, events, fields)
        except (ShardError, FeatureMismatch, ValueError, OSError) as err:
            logger.error("%s failed: %s", info.video_id, err)
            failures.append({"video_id": info.video_id, "source": info.source_path,
                             "reason": str(err)})
            continue
        tqdm.write(one_line(summary))
    return failures, len(share) - len(failures), len(videos) - len(todo)


def select_videos(shards: ShardSet, split: str | None) -> list[VideoInfo]:
    """The shard videos to score (one split, or all)."""
    videos = shards.select(split=split)
    if not videos:
        raise ShardError(f"no videos of split {split!r} in {shards.files[0].parent}")
    return videos


def run(job: ScoreJob, rank: Rank = Rank()) -> int:
    """Run `claws score`; exit code 0 when every video was scored, 1 otherwise, 2 on bad input
    (including a folder another job holds, or one scored with other settings).

    Args:
        job: what `claws score` was asked to do.
        rank: this process under torchrun (claws.extract.distributed.init_rank): every rank of
            the job calls `run` and they return the same exit code.
    """
    if bool(job.footage and job.footage.inputs) == bool(job.shards):
        logger.error("give either videos/folders or --shards DIR (not both, not neither)")
        return 2
    try:
        ckpt = load_checkpoint(job.run)
    except (FileNotFoundError, ValueError) as err:
        logger.error("%s", err)
        return 2
    with folder_lock(job.out, "claws score", rank):
        return _score_locked(ckpt, job, rank)


def _refused(error: Exception | None, rank: Rank) -> bool:
    """Whether this rank or any other met bad input (a collective: every rank calls it)."""
    if error is not None:
        logger.error("%s", error)
    refused = all_sum(int(error is not None), rank) > 0
    if refused and error is None:
        logger.error("rank %d of %d: stopping, another rank refused the input (see its message)",
                     rank.rank, rank.world_size)
    return refused


def _score_locked(ckpt: Checkpoint, job: ScoreJob, rank: Rank) -> int:
    """The rest of `run`, with the scores folder locked."""
    out, error = job.out, None
    try:
        fields = _run_fields(ckpt, job, job.window or checkpoint_window(ckpt))
        if rank.rank == 0:  # one rank reads (with --overwrite: clears) the folder's settings
            check_settings(out, fields, job.overwrite)
    except BAD_INPUT as err:
        error = err
    if _refused(error, rank):
        return 2
    try:
        if job.shards:
            shards = ShardSet(job.shards)
            check_feature_dim(ckpt, shards.feature_dim, str(job.shards))
            videos, failures = select_videos(shards, job.split), []
        else:
            shards, videos, failures = extract_inputs(ckpt, job.footage, out / FEATURES_DIR,
                                                      exclude=score_outputs(out), rank=rank)
    except BAD_INPUT as err:
        error = err
    if _refused(error, rank):
        return 2
    failed, scored, kept = (score_shards(ckpt, shards, videos, job, fields, rank) if videos
                            else ([], 0, 0))
    mine = failures + failed
    gathered = all_gather((mine, scored), rank)  # returns once every rank wrote its videos
    failures = sorted((f for part, _ in gathered for f in part), key=lambda f: f["video_id"])
    if rank.distributed:
        logger.info("rank %d of %d: %d videos scored, %d failed; %d failed over all ranks",
                    rank.rank, rank.world_size, scored, len(mine), len(failures))
    if rank.rank == 0:
        write_jsonl(out / FAILURES, failures)
        index = write_index(out)
        finished = sum(1 for _ in index.read_text().splitlines())
        logger.info("%d videos scored in this run, %d already scored (kept), %d failed%s; %s "
                    "lists %d videos", sum(n for _, n in gathered), kept, len(failures),
                    f" (see {out / FAILURES})" if failures else "", index, finished)
    return 1 if failures else 0
