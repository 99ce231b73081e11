"""What `claws score` reads: shards as they are, or raw footage (videos, folders of videos, frame
folders) extracted into shards first.

Raw footage goes through the extraction job (claws.extract.job.run_job, the same decoding, C3D and
shard writing as `claws extract`) into `<out>/.features/shards/`, normalized with the statistics
stored in the checkpoint. Scoring those shards is then exactly scoring shards
(claws.pipeline.scoring.curve), so a video scored from raw footage equals the same video scored
from its shard. The extraction is resumable like any extraction job, and under torchrun its ranks
split the videos as `claws extract`'s do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple, Sequence

from claws.data.footage import footage_items
from claws.data.shards import ShardSet, VideoInfo, list_shards
from claws.data.videos import DatasetError, VideoItem, check_unique
from claws.extract.distributed import Rank
from claws.pipeline.scoring.curve import check_features
from claws.pipeline.training.checkpoint import Checkpoint

logger = logging.getLogger(__name__)

SHARDS_DIR = "shards"


def input_items(
    inputs: list[Path], fps: float = 0.0, exclude: Sequence[Path] = ()
) -> list[VideoItem]:
    """Every video and frame folder of the inputs, ids unique across all of them.

    Args:
        inputs: video files, folders of videos, frame folders, or CSV manifests.
        fps: frame rate recorded for frame folders (0: the reader's default).
        exclude: outputs of the command, never read as input (claws.data.footage).
    """
    items = [item for source in inputs for item in footage_items(source, exclude=exclude)]
    if fps > 0:
        items = [replace(i, fps=fps) if i.is_frame_folder else i for i in items]
    return check_unique(items, ", ".join(map(str, inputs)))


@dataclass(frozen=True)
class RawFootage:
    """Raw input of `claws score` and how to extract it (None: as the training run did)."""

    inputs: list[Path]  # video files, folders of videos, frame folders, CSV manifests
    weights: str | None = None  # C3D weights file or "random"; None: the training features'
    mean: Path | None = None  # mean cube; None: the training features'
    precision: str | None = None  # C3D arithmetic; None: the training features'
    fps: float = 0.0  # frame rate of frame folders (0: the reader's default)
    device: str = "cpu"
    workers: int = 1  # decoding worker processes
    progress: bool = True


class C3DSettings(NamedTuple):
    """The C3D extractor to run on raw footage (the arguments of `build_extractor`)."""

    weights: str
    seed: int
    mean: Path | None
    feature_dim: int
    precision: str


def extraction_settings(ckpt: Checkpoint, footage: RawFootage) -> C3DSettings:
    """C3D settings for the footage: the user's weights and mean, else the training run's."""
    trained = ckpt.feature_meta.get("extractor", {})
    weights = footage.weights
    if weights is None:
        weights = "random" if trained.get("random") else trained.get("weights_path")
        if not weights or (weights != "random" and not Path(weights).is_file()):
            raise DatasetError(
                f"{ckpt.path} records no usable C3D weights file ({weights!r}); pass --weights"
            )
    mean = footage.mean
    recorded_mean = trained.get("mean_source", "channel_means")
    if mean is None and recorded_mean != "channel_means":
        if not Path(recorded_mean).is_file():
            raise DatasetError(f"the run was trained with the mean cube {recorded_mean}, which "
                               "is not there; pass --mean")
        mean = Path(recorded_mean)
    return C3DSettings(
        weights=str(weights), seed=int(trained.get("seed") or 0), mean=mean,
        feature_dim=int(ckpt.feature_meta.get("feature_dim", 2048)),
        precision=footage.precision or trained.get("precision") or "auto",
    )


def extract_inputs(
    ckpt: Checkpoint, footage: RawFootage, folder: Path, exclude: Sequence[Path] = (),
    rank: Rank = Rank(),
) -> tuple[ShardSet | None, list[VideoInfo], list[dict]]:
    """Extract the raw inputs into `folder` with the checkpoint's statistics.

    Args:
        ckpt: the loaded checkpoint (its statistics and feature metadata are used).
        footage: the raw input and how to extract it.
        folder: work folder inside the scores folder.
        exclude: what the scoring command writes, never read as input.
        rank: this process under torchrun: it extracts its share of the videos (a collective).

    Returns:
        (the shards, the input videos found in them: every rank gets all of them; this rank's
        failures as dicts with video and reason).
    """
    # C3D, the decoders and the extraction job: only raw input needs them.
    from claws.extract.c3d import build_extractor
    from claws.extract.engine import default_batch_size
    from claws.extract.job import JobConfig, run_job

    items = input_items(footage.inputs, footage.fps, exclude)
    settings = extraction_settings(ckpt, footage)
    built = build_extractor(settings.weights, device=footage.device, precision=settings.precision,
                            seed=settings.seed, mean=settings.mean, feature_dim=settings.feature_dim)
    network, preprocess = built.network, built.preprocess
    extractor = built.identity
    check_features(ckpt, settings.feature_dim, extractor, f"C3D weights {settings.weights}")
    config = JobConfig(
        out=folder / SHARDS_DIR, workers=footage.workers, device=footage.device,
        batch_size=default_batch_size(footage.device),
        stats=replace(ckpt.norm_stats, source=ckpt.norm_stats.source or str(ckpt.path)),
        stats_origin=f"the checkpoint {ckpt.path}", progress=footage.progress,
        created_by="claws score",
    )
    result = run_job(items, network, preprocess, extractor, config, rank)
    failures = [{"video_id": vid, "source": str(next(i.path for i in items if i.video_id == vid)),
                 "reason": f"extraction: {reason}"} for vid, reason in result.failed]
    # every rank's shards are written once run_job returns; a rank may have extracted none
    if not (folder / SHARDS_DIR).is_dir() or not list_shards(folder / SHARDS_DIR):
        return None, [], failures
    shards = ShardSet(folder / SHARDS_DIR)
    videos = [shards.videos[i.video_id] for i in items if i.video_id in shards.videos]
    return shards, videos, failures
