"""The `claws score` job: score shard videos (or raw input, extracted by claws.pipeline.score_raw)
with a checkpoint and write each video's curve, events and plot. What the command accepts and
writes is described in claws.pipeline.score_cmd, its command line.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tqdm import tqdm

from claws.data.atomic import write_jsonl
from claws.data.shards import ShardError, ShardSet, VideoInfo
from claws.extract.c3d_weights import file_sha256
from claws.pipeline.checkpoint import Checkpoint, load_checkpoint
from claws.pipeline.events import find_events
from claws.pipeline.lock import folder_lock
from claws.pipeline.score_outputs import (
    FAILURES, is_complete, other_settings, remove_outputs, write_index, write_video_outputs,
)
from claws.pipeline.scoring import (
    FeatureMismatch, check_feature_dim, checkpoint_window, score_shard_video,
)

logger = logging.getLogger(__name__)

FEATURES_DIR = ".features"  # raw input is extracted here, inside the output folder


def _run_fields(ckpt: Checkpoint, args: argparse.Namespace, window: int) -> dict:
    extractor = ckpt.feature_meta.get("extractor", {})
    return {
        "checkpoint": str(ckpt.path),
        "checkpoint_sha256": file_sha256(ckpt.path),
        "checkpoint_step": ckpt.step,
        "weights_sha256": extractor.get("weights_sha256", ""),
        "window": window,
        "threshold": args.threshold,
        "min_duration_s": args.min_duration,
        "merge_gap_s": args.merge_gap,
    }


def check_settings(out: Path, fields: dict, overwrite: bool) -> None:
    """Keep a scores folder to one set of settings (score_outputs.SETTINGS).

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


def score_shards(
    ckpt: Checkpoint, shards: ShardSet, videos: list[VideoInfo], args: argparse.Namespace,
    fields: dict,
) -> tuple[list[dict], int, int]:
    """Score and write every video not yet finished, with the run `fields` (_run_fields).

    Returns:
        (failures as dicts of video, source and reason; videos scored in this call; videos skipped
        because an earlier run finished them).
    """
    window = fields["window"]
    failures = []
    todo = [v for v in videos if args.overwrite or not is_complete(args.out, v.video_id)]
    if len(todo) < len(videos):
        logger.info("%d of %d videos already scored in %s; skipping them",
                    len(videos) - len(todo), len(videos), args.out)
    for info in tqdm(todo, unit="video", disable=args.no_progress, dynamic_ncols=True):
        try:
            scored = score_shard_video(ckpt, shards, info, window)
            events = find_events(scored.frame_scores, scored.fps, args.threshold,
                                 args.min_duration, args.merge_gap)
            summary = write_video_outputs(args.out, scored, events, fields)
        except (ShardError, FeatureMismatch, ValueError, OSError) as err:
            logger.error("%s failed: %s", info.video_id, err)
            failures.append({"video_id": info.video_id, "source": info.source_path,
                             "reason": str(err)})
            continue
        tqdm.write(one_line(summary))
    return failures, len(todo) - len(failures), len(videos) - len(todo)


def select_videos(shards: ShardSet, split: str | None) -> list[VideoInfo]:
    """The shard videos to score (one split, or all)."""
    videos = shards.select(split=split)
    if not videos:
        raise ShardError(f"no videos of split {split!r} in {shards.files[0].parent}")
    return videos


def run(args: argparse.Namespace) -> int:
    """Run `claws score`; exit code 0 when every video was scored, 1 otherwise, 2 on bad input
    (including a folder another job holds, or one scored with other settings)."""
    if bool(args.inputs) == bool(args.shards):
        logger.error("give either videos/folders or --shards DIR (not both, not neither)")
        return 2
    try:
        ckpt = load_checkpoint(args.run)
    except (FileNotFoundError, ValueError) as err:
        logger.error("%s", err)
        return 2
    with folder_lock(args.out, "claws score"):
        return _score_locked(ckpt, args)


def _score_locked(ckpt: Checkpoint, args: argparse.Namespace) -> int:
    """The rest of `run`, with the scores folder locked."""
    try:
        fields = _run_fields(ckpt, args, args.window or checkpoint_window(ckpt))
        check_settings(args.out, fields, args.overwrite)
        if args.shards:
            shards = ShardSet(args.shards)
            check_feature_dim(ckpt, shards.feature_dim, str(args.shards))
            videos, failures = select_videos(shards, args.split), []
        else:
            from claws.pipeline.score_raw import extract_inputs  # imports C3D and decoders

            shards, videos, failures = extract_inputs(ckpt, args, args.out / FEATURES_DIR)
    except (FileNotFoundError, ShardError, FeatureMismatch, ValueError) as err:
        logger.error("%s", err)
        return 2
    failed, scored, kept = score_shards(ckpt, shards, videos, args, fields) if videos else ([], 0, 0)
    failures += failed
    write_jsonl(args.out / FAILURES, failures)
    index = write_index(args.out)
    finished = sum(1 for _ in index.read_text().splitlines())
    logger.info("%d videos scored in this run, %d already scored (kept), %d failed%s; %s lists %d "
                "videos", scored, kept, len(failures),
                f" (see {args.out / FAILURES})" if failures else "", index, finished)
    if args.review and finished:
        from claws.pipeline.review import write_review  # PyAV for previews

        write_review(args.out, progress=not args.no_progress)
    return 1 if failures else 0
