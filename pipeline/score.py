"""`claws score`: per-frame anomaly curves, events and plots for new footage with a trained run.

Inputs are raw videos, folders of videos, frame folders (decoded and passed through C3D with the
weights the user gives, normalized with the CHECKPOINT's statistics, never statistics of the new
footage), or feature shards (`--shards DIR`). Raw input is extracted into `<out>/.features/` by the
extraction job with the checkpoint's statistics, then scored exactly like shards, so a video
scored from raw footage equals the same video scored from its shard. Outputs per video and for
the folder are described in claws.pipeline.score_outputs. Finished videos are skipped on a rerun;
failures are recorded in failures.jsonl and make the exit code 1.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tqdm import tqdm

from claws.data.shards import ShardError, ShardSet, VideoInfo
from claws.pipeline.atomic import write_jsonl
from claws.pipeline.checkpoint import Checkpoint, load_checkpoint
from claws.pipeline.events import find_events
from claws.pipeline.score_outputs import FAILURES, is_complete, write_index, write_video_outputs
from claws.pipeline.scoring import (
    FeatureMismatch, check_feature_dim, checkpoint_window, score_shard_video,
)

logger = logging.getLogger(__name__)

FEATURES_DIR = ".features"  # raw input is extracted here, inside the output folder


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `score` sub-command."""
    p = subparsers.add_parser(
        "score", help="per-frame anomaly curves, events and plots for videos or shards",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("inputs", nargs="*", type=Path,
                   help="videos, folders of videos, or frame folders")
    p.add_argument("--run", type=Path, required=True,
                   help="training run directory (its latest checkpoint) or a checkpoint file")
    p.add_argument("--out", type=Path, required=True, help="scores folder to write")
    p.add_argument("--shards", type=Path, help="score the videos of these feature shards instead")
    p.add_argument("--split", default=None, help="with --shards: only videos of this split")
    p.add_argument("--weights", help="C3D weights for raw input (c3d.pickle, Keras .h5, or "
                   "'random' for a test run); default: the path recorded in the checkpoint")
    p.add_argument("--mean", type=Path, help="C3D mean cube (.npy[.bz2] or .binaryproto)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default=None,
                   help="C3D precision for raw input (default: the training features')")
    p.add_argument("--fps", type=float, default=0.0,
                   help="frame rate of frame folders (they carry none)")
    p.add_argument("--device", default="cpu", help="device for C3D on raw input")
    p.add_argument("--workers", type=int, default=1, help="decoding worker processes")
    p.add_argument("--threshold", type=float, default=0.5, help="event threshold on the score")
    p.add_argument("--min-duration", type=float, default=1.0, help="shortest event, seconds")
    p.add_argument("--merge-gap", type=float, default=1.0,
                   help="events closer than this many seconds are merged")
    p.add_argument("--window", type=int, default=None,
                   help="clips per scoring window (default: the training run's)")
    p.add_argument("--overwrite", action="store_true", help="rescore finished videos")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _run_fields(ckpt: Checkpoint, args: argparse.Namespace, window: int) -> dict:
    extractor = ckpt.feature_meta.get("extractor", {})
    return {
        "checkpoint": str(ckpt.path),
        "checkpoint_step": ckpt.step,
        "weights_sha256": extractor.get("weights_sha256", ""),
        "window": window,
        "threshold": args.threshold,
        "min_duration_s": args.min_duration,
        "merge_gap_s": args.merge_gap,
    }


def one_line(info: dict) -> str:
    """The per-video summary line: duration, peak score and time, number of events."""
    flag = "  [RANDOM C3D WEIGHTS: not real features]" if info["random_features"] else ""
    return (f"{info['video_id']}: {info['duration_s']:.1f} s, {info['num_frames']} frames, "
            f"peak {info['peak']:.3f} at {info['peak_s']:.1f} s, {info['num_events']} events{flag}")


def score_shards(
    ckpt: Checkpoint, shards: ShardSet, videos: list[VideoInfo], args: argparse.Namespace
) -> list[dict]:
    """Score and write every video not yet finished; returns the failures (video, reason)."""
    window = args.window or checkpoint_window(ckpt)
    fields = _run_fields(ckpt, args, window)
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
    return failures


def select_videos(shards: ShardSet, split: str | None) -> list[VideoInfo]:
    """The shard videos to score (one split, or all)."""
    videos = shards.select(split=split)
    if not videos:
        raise ShardError(f"no videos of split {split!r} in {shards.files[0].parent}")
    return videos


def run(args: argparse.Namespace) -> int:
    """Run `claws score`; exit code 0 when every video was scored, 1 otherwise, 2 on bad input."""
    if bool(args.inputs) == bool(args.shards):
        logger.error("give either videos/folders or --shards DIR (not both, not neither)")
        return 2
    try:
        ckpt = load_checkpoint(args.run)
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
    args.out.mkdir(parents=True, exist_ok=True)
    failures += score_shards(ckpt, shards, videos, args) if videos else []
    write_jsonl(args.out / FAILURES, failures)
    index = write_index(args.out)
    finished = sum(1 for _ in index.read_text().splitlines())
    logger.info("%d videos scored in %s (%s); %d failed in this run%s", finished, args.out,
                index.name, len(failures), f", see {args.out / FAILURES}" if failures else "")
    return 1 if failures else 0
