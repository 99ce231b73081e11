"""How features become a curve: the checkpoint's normalization -> clip scores -> per-frame curve.

Features: the checkpoint's normalization statistics are applied, never statistics of the new
footage: a shard normalized with other statistics is denormalized with its own and normalized
again with the checkpoint's. Clip scores come from claws.model.inference.clip_scores with the
training windows (DESIGN.md "Batches and NSM windows"); frame curves from claws.data.clips (the one
clip rule). Before scoring, the shards' feature metadata is checked against the checkpoint's:
another feature dimension or other C3D weights is an error; random-weights features on one side
only is a loud warning. Features that are not finite once normalized with the checkpoint's
statistics, and scores that are not finite, fail their video (NonFiniteValues, naming it): no
NaN curve or peak is ever written.

Shapes: T clips, D feature dim, N frames.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
import torch

from claws.data.clips import clip_scores_to_frame_scores
from claws.data.shards import ShardSet, VideoInfo
from claws.model.inference import DEFAULT_WINDOW, clip_scores
from claws.pipeline.training.checkpoint import Checkpoint

logger = logging.getLogger(__name__)



class FeatureMismatch(ValueError):
    """Features and checkpoint come from different extractors; the message says which and how."""


class NonFiniteValues(ValueError):
    """A video's normalized features or its scores hold NaN or inf; the message names the video."""


class ScoredVideo(NamedTuple):
    """One scored video with what its outputs need."""

    video_id: str
    frame_scores: np.ndarray  # (N,) float32, exactly num_frames values
    clip_scores: np.ndarray  # (T,) float32
    num_frames: int
    fps: float
    source: str  # source video path (or shard when unknown)
    label: int  # 1 anomalous, 0 normal, -1 unknown (from the shard)
    class_name: str
    random_features: bool  # features come from random C3D weights: not real features
    precision: str  # C3D precision of the features (fp32, bf16, fp16; "imported" for published ones)


def checkpoint_window(ckpt: Checkpoint) -> int:
    """b, clips per scoring window: the training config's value, else the paper's 64."""
    if "window" in ckpt.config:  # TrainConfig.window
        return int(ckpt.config["window"])
    logger.info("checkpoint config names no window size; scoring with b=%d", DEFAULT_WINDOW)
    return DEFAULT_WINDOW


def check_feature_dim(ckpt: Checkpoint, feature_dim: int, where: str) -> None:
    """Fail unless features of dimension `feature_dim` are what the checkpoint was trained on."""
    want_dim = int(ckpt.feature_meta.get("feature_dim", feature_dim))
    if feature_dim != want_dim:
        raise FeatureMismatch(
            f"{where}: {feature_dim}-d features but {ckpt.path} was trained on {want_dim}-d; "
            f"extract again with --feature-dim {want_dim}"
        )


def check_features(ckpt: Checkpoint, feature_dim: int, extractor: dict, where: str) -> bool:
    """Check one video's features against the checkpoint's feature metadata.

    Args:
        ckpt: the loaded checkpoint.
        feature_dim: D of the features.
        extractor: the video's extractor dict (weights_sha256, random, seed, ...).
        where: names the video and file in messages.

    Returns:
        True when the features come from random C3D weights.

    Raises:
        FeatureMismatch: other feature dim, other real weights, or another random seed.
    """
    check_feature_dim(ckpt, feature_dim, where)
    trained = ckpt.feature_meta.get("extractor", {})
    ours_random, theirs_random = bool(extractor.get("random")), bool(trained.get("random"))
    ours_sha, theirs_sha = extractor.get("weights_sha256", ""), trained.get("weights_sha256", "")
    if not ours_random and not theirs_random and ours_sha and theirs_sha and ours_sha != theirs_sha:
        raise FeatureMismatch(
            f"{where}: features from C3D weights sha256 {ours_sha[:12]}... but {ckpt.path} was "
            f"trained on {theirs_sha[:12]}...; extract with the training run's weights"
        )
    if ours_random and theirs_random and extractor.get("seed") != trained.get("seed"):
        raise FeatureMismatch(
            f"{where}: random-weights features of seed {extractor.get('seed')} but the checkpoint "
            f"was trained on seed {trained.get('seed')}: different feature spaces"
        )
    if ours_random != theirs_random:
        logger.warning(
            "!!! %s: %s features scored with a checkpoint trained on %s features: "
            "THE SCORES MEAN NOTHING !!!", where, "RANDOM-WEIGHTS" if ours_random else "real",
            "RANDOM-WEIGHTS" if theirs_random else "real",
        )
    return ours_random


def score_features(
    ckpt: Checkpoint, features: np.ndarray, num_frames: int, window: int, clip_len: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Normalized clip features (T, D) to (clip scores (T,), frame scores (num_frames,))."""
    clips = clip_scores(ckpt.model, torch.from_numpy(np.ascontiguousarray(features)), window)
    clips = clips.float().numpy()
    return clips, clip_scores_to_frame_scores(clips, num_frames, clip_len).astype(np.float32)


def checkpoint_features(ckpt: Checkpoint, shards: ShardSet, video_id: str) -> np.ndarray:
    """A video's features normalized with the checkpoint's statistics (T, D) float32."""
    stats = ckpt.norm_stats
    if stats.feature_dim != shards.feature_dim:
        raise FeatureMismatch(
            f"video {video_id}: {shards.feature_dim}-d shards, checkpoint statistics are "
            f"{stats.feature_dim}-d"
        )
    same = np.array_equal(stats.mean, shards.stats.mean) and np.array_equal(
        stats.range, shards.stats.range
    )
    if same:
        return shards.features(video_id)  # checked finite by the reader
    raw = shards.features(video_id, raw=True)
    with np.errstate(over="ignore"):  # checked here, with the video named
        features = stats.normalize(raw)
    if not np.isfinite(features).all():
        raise NonFiniteValues(
            f"video {video_id}: features are not finite after normalization with the "
            f"checkpoint's statistics (raw values up to {np.abs(raw).max():.3g}, ranges down to "
            f"{stats.range.min():.3g}: beyond float32); they lie far outside the features the "
            "model was trained on: check the video's features"
        )
    return features


def score_shard_video(
    ckpt: Checkpoint, shards: ShardSet, info: VideoInfo, window: int
) -> ScoredVideo:
    """Score one shard video with the checkpoint (features checked, then re-normalized if needed).

    Args:
        ckpt: the loaded checkpoint.
        shards: the shard set holding the video.
        info: the video's metadata from `shards`.
        window: b, clips per scoring window (see checkpoint_window).

    Returns:
        ScoredVideo with the per-frame curve of exactly info.num_frames values.
    """
    where = f"{info.shard}: video {info.video_id}"
    random_features = check_features(ckpt, shards.feature_dim, info.extractor, where)
    features = checkpoint_features(ckpt, shards, info.video_id)
    clips, frames = score_features(ckpt, features, info.num_frames, window, info.clip_len)
    if not np.isfinite(clips).all():
        raise NonFiniteValues(
            f"{where}: the model gave scores that are not finite (NaN or inf) for "
            f"{int((~np.isfinite(clips)).sum())} of {len(clips)} clips; its normalized features "
            f"reach {np.abs(features).max():.3g} (training features lie within about 1): check "
            "the video's features and the statistics they were normalized with"
        )
    return ScoredVideo(
        info.video_id, frames, clips, info.num_frames, info.fps,
        info.source_path or str(info.shard), info.label, info.class_name, random_features,
        feature_precision(info.extractor),
    )


def feature_precision(extractor: dict) -> str:
    """The C3D precision recorded in a video's extractor dict ("imported": published features)."""
    return str(extractor.get("precision") or ("imported" if extractor.get("imported") else "unknown"))
