"""Raw input for `claws score`: videos, folders and frame folders to shards, with the checkpoint's
normalization statistics.

The footage goes through the extraction job (claws.extract.job.run_job, the same decoding, C3D and
shard writing as `claws extract`) into `<out>/.features/shards/`, normalized with the statistics
stored in the checkpoint (handed to the job as `--stats-from` would be). Scoring those
shards is then exactly scoring shards, so a video scored from raw footage equals the same video
scored from its shard. The extraction is resumable like any extraction job.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from claws.data.footage import footage_items
from claws.data.shards import ShardSet, VideoInfo
from claws.data.version import code_version
from claws.data.videos import DatasetError, VideoItem, check_unique
from claws.extract.c3d import build_extractor
from claws.extract.engine import default_batch_size
from claws.extract.job import JobConfig, run_job
from claws.pipeline.checkpoint import Checkpoint
from claws.pipeline.scoring import check_features

logger = logging.getLogger(__name__)

SHARDS_DIR = "shards"


def input_items(inputs: list[Path], fps: float = 0.0) -> list[VideoItem]:
    """Every video and frame folder of the inputs, ids unique across all of them.

    Args:
        inputs: video files, folders of videos, frame folders, or CSV manifests.
        fps: frame rate recorded for frame folders (0: the reader's default).
    """
    items = [item for source in inputs for item in footage_items(source)]
    if fps > 0:
        items = [replace(i, fps=fps) if i.is_frame_folder else i for i in items]
    return check_unique(items, ", ".join(map(str, inputs)))


class C3DSettings(NamedTuple):
    """The C3D extractor to run on raw footage (the arguments of `build_extractor`)."""

    weights: str
    seed: int
    mean: Path | None
    feature_dim: int
    precision: str


def extraction_settings(ckpt: Checkpoint, args: argparse.Namespace) -> C3DSettings:
    """C3D settings for the footage: the user's weights and mean, else the training run's."""
    trained = ckpt.feature_meta.get("extractor", {})
    weights = args.weights
    if weights is None:
        weights = "random" if trained.get("random") else trained.get("weights_path")
        if not weights or (weights != "random" and not Path(weights).is_file()):
            raise DatasetError(
                f"{ckpt.path} records no usable C3D weights file ({weights!r}); pass --weights"
            )
    mean = args.mean
    recorded_mean = trained.get("mean_source", "channel_means")
    if mean is None and recorded_mean != "channel_means":
        if not Path(recorded_mean).is_file():
            raise DatasetError(f"the run was trained with the mean cube {recorded_mean}, which "
                               "is not there; pass --mean")
        mean = Path(recorded_mean)
    return C3DSettings(
        weights=str(weights), seed=int(trained.get("seed") or 0), mean=mean,
        feature_dim=int(ckpt.feature_meta.get("feature_dim", 2048)),
        precision=args.precision or trained.get("precision") or "auto",
    )


def extract_inputs(
    ckpt: Checkpoint, args: argparse.Namespace, folder: Path
) -> tuple[ShardSet | None, list[VideoInfo], list[dict]]:
    """Extract the raw inputs into `folder` with the checkpoint's statistics.

    Args:
        ckpt: the loaded checkpoint (its statistics and feature metadata are used).
        args: the `claws score` arguments (inputs, weights, mean, device, workers, fps...).
        folder: work folder inside the scores folder.

    Returns:
        (the shards, the input videos found in them, failures as dicts with video and reason).
    """
    items = input_items(args.inputs, args.fps)
    settings = extraction_settings(ckpt, args)
    built = build_extractor(settings.weights, device=args.device, precision=settings.precision,
                            seed=settings.seed, mean=settings.mean, feature_dim=settings.feature_dim)
    network, preprocess = built.network, built.preprocess
    extractor = {**built.identity, "claws_version": code_version(commit=False)}
    check_features(ckpt, settings.feature_dim, extractor, f"C3D weights {settings.weights}")
    config = JobConfig(
        out=folder / SHARDS_DIR, workers=args.workers, device=args.device,
        batch_size=default_batch_size(args.device),
        stats=replace(ckpt.norm_stats, source=ckpt.norm_stats.source or str(ckpt.path)),
        stats_origin=f"the checkpoint {ckpt.path}", progress=not args.no_progress,
        created_by="claws score",
    )
    result = run_job(items, network, preprocess, extractor, config)
    failures = [{"video_id": vid, "source": str(next(i.path for i in items if i.video_id == vid)),
                 "reason": f"extraction: {reason}"} for vid, reason in result.failed]
    if result.extracted == 0 and result.skipped == 0:
        return None, [], failures
    shards = ShardSet(folder / SHARDS_DIR)
    videos = [shards.videos[i.video_id] for i in items if i.video_id in shards.videos]
    return shards, videos, failures
