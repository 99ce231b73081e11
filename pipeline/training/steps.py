"""What one training step computes for each model, the epoch's clustering, and validation.

Shapes: N clips of all videos, K windows, B windows per step, b clips per window, D feature dim,
Z1 representation size, V videos, S MIL segments.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import torch
from torch import Tensor

from claws.model.claws import ClawsNet
from claws.model.inference import clip_scores
from claws.model.kmeans import batched_kmeans
from claws.model.losses import LossOutput, WindowClusters, claws_losses, unit_rows
from claws.model.mil import MilNet, mil_ranking_losses
from claws.pipeline.training.config import TrainConfig
from claws.pipeline.metrics import roc_auc
from claws.pipeline.training.data import VideoSet

REPRESENTATION_CHUNK = 1024  # windows per no-grad forward when computing the representation


class EpochClusters(NamedTuple):
    """The epoch's 2-means of every training clip, and what the clustering loss needs of it."""

    assignments: Tensor  # (N,) int64 cluster 0/1 of every clip
    sizes: Tensor  # (V, 2) int64 clips of each video in each cluster
    units: Tensor | None  # (N, Z1) epoch-start r^ = r / ||r|| (scale-free distance only)
    sums: Tensor | None  # (V, 2, Z1) sum of `units` of each video per cluster (scale-free only)


@torch.no_grad()
def clip_representation(model: ClawsNet, videos: VideoSet) -> Tensor:
    """(N, Z1) detached FC-1 x NSM-1 of every clip, computed with the training windows.

    NSM's softmax is over a window, so each clip's representation is the one its training
    window gives it; the padded positions are dropped, so each clip has exactly one.
    """
    representation = None
    for first in range(0, len(videos.window_clips), REPRESENTATION_CHUNK):
        clips = videos.window_clips[first : first + REPRESENTATION_CHUNK]
        valid = videos.window_valid[first : first + REPRESENTATION_CHUNK]
        chunk = model.representation(videos.features[clips].float())  # (c, b, Z1)
        if representation is None:
            representation = chunk.new_empty(len(videos.features), chunk.shape[-1])
        representation[clips[valid]] = chunk[valid]
    return representation


def cluster_state(
    representation: Tensor, assignments: Tensor, videos: VideoSet, scale_free: bool
) -> EpochClusters:
    """Per-video cluster sizes and, for the scale-free distance, unit vectors and their sums.

    Args:
        representation: (N, Z1) epoch-start representation (unused unless scale_free).
        assignments: (N,) cluster of every clip.
        videos: the videos the clips belong to (counts in row order).
        scale_free: compute `units` and `sums`.
    """
    num_videos = len(videos.counts)
    owner = torch.repeat_interleave(
        torch.arange(num_videos, device=videos.counts.device), videos.counts)
    key = owner * 2 + assignments
    sizes = torch.bincount(key, minlength=2 * num_videos).view(num_videos, 2)
    if not scale_free:
        return EpochClusters(assignments, sizes, None, None)
    units = unit_rows(representation)
    sums = units.new_zeros(2 * num_videos, units.shape[1]).index_add_(0, key, units)
    return EpochClusters(assignments, sizes, units, sums.view(num_videos, 2, -1))


@torch.no_grad()
def epoch_clusters(
    model: ClawsNet, videos: VideoSet, max_iter: int, seed: int, tol: float = 1e-3,
    scale_free: bool = True, on_units: bool = False,
) -> tuple[EpochClusters, dict]:
    """2-means of every video's detached FC-1 x NSM-1 representation (paper 3.4, DESIGN.md).

    Args:
        model: the model being trained (its representation, no gradient).
        videos: the training videos with their windows.
        max_iter, seed, tol: of the batched k-means (claws.model.kmeans).
        scale_free: keep the unit vectors and their per-cluster sums for the scale-free L_c.
        on_units: cluster r / ||r|| instead of r (`kmeans_on_units`).

    Returns:
        EpochClusters on the data's device, and a dict of figures: timings, Lloyd iterations,
        videos in one cluster, and the epoch-start scale-free distance d_i averaged over normal
        and over anomalous videos (the quantity L_c pushes down and up).
    """
    start = time.perf_counter()
    representation = clip_representation(model, videos)
    represented = time.perf_counter()
    points = unit_rows(representation) if on_units else representation
    result = batched_kmeans(points, videos.counts, k=2, max_iter=max_iter, seed=seed, tol=tol)
    state = cluster_state(representation, result.assignments, videos, scale_free=True)
    centres = state.sums / state.sizes.clamp(min=1).unsqueeze(2)
    distance = (centres[:, 0] - centres[:, 1]).norm(dim=1)
    usable = (state.sizes > 0).all(1)
    figures = {
        "representation_s": round(represented - start, 4),
        "kmeans_s": round(time.perf_counter() - represented, 4),
        "kmeans_iterations": result.iterations,
        "videos_single_cluster": int((~usable).sum()),
    }
    for label, name in ((0, "normal"), (1, "anomalous")):
        chosen = usable & (videos.labels == label)
        figures[f"distance_{name}"] = round(float(distance[chosen].mean()), 5) if chosen.any() else None
    if not scale_free:
        state = EpochClusters(state.assignments, state.sizes, None, None)
    return state, figures


def window_clusters(clusters: EpochClusters, videos: VideoSet, windows: Tensor) -> WindowClusters:
    """The clustering loss's view of a batch of windows (indices into videos.window_*).

    Each window is live for its own clips only: with windows_per_iteration > 1 and two windows of
    one video in a batch, each sees the other's clips at their epoch-start values.
    """
    clips = videos.window_clips[windows]  # (B, b)
    video = videos.window_video[windows]
    if clusters.units is None:
        return WindowClusters(clusters.assignments[clips], videos.counts[video])
    return WindowClusters(clusters.assignments[clips], videos.counts[video],
                          clusters.units[clips], clusters.sums[video], clusters.sizes[video])


def claws_step(
    model: ClawsNet, videos: VideoSet, windows: Tensor, clusters: EpochClusters | None,
    config: TrainConfig,
) -> LossOutput:
    """Loss terms of CLAWS Net on a batch of windows (indices into videos.window_*)."""
    clips = videos.window_clips[windows]  # (B, b)
    valid = videos.window_valid[windows]
    video = videos.window_video[windows]
    out = model(videos.features[clips].float())  # features (B, b, D)
    return claws_losses(
        out.scores, out.representation, videos.labels[video], valid,
        window_clusters(clusters, videos, windows) if clusters is not None else None,
        lambda1=config.lambda1, lambda2=config.lambda2, alpha=config.alpha,
        min_distance=config.cluster_min_distance, smooth_sparsity=config.smooth_sparsity,
    )


def mil_pairs(labels: Tensor, per_class: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Indices of `per_class` anomalous and `per_class` normal videos (without replacement when
    a class has enough videos), drawn with `generator`."""
    picked = []
    for label in (1, 0):
        pool = torch.nonzero(labels.cpu() == label)[:, 0]
        if len(pool) >= per_class:
            order = torch.randperm(len(pool), generator=generator)[:per_class]
        else:
            order = torch.randint(len(pool), (per_class,), generator=generator)
        picked.append(pool[order].to(labels.device))
    return picked[0], picked[1]


def mil_step(
    model: MilNet, segments: Tensor, labels: Tensor, per_class: int, config: TrainConfig,
    generator: torch.Generator,
) -> dict[str, Tensor]:
    """Sultani's loss terms on per_class anomalous + per_class normal videos' segments (V, S, D)."""
    anomalous, normal = mil_pairs(labels, per_class, generator)
    scores = model(segments[torch.cat([anomalous, normal])]).scores  # (2P, S)
    half = len(anomalous)
    return mil_ranking_losses(scores[:half], scores[half:], config.mil_smoothness, config.mil_sparsity)


def _claws_validation_losses(
    model: ClawsNet, videos: VideoSet, clusters: EpochClusters | None, config: TrainConfig
) -> dict[str, Tensor]:
    """Loss terms over all windows, in chunks, weighted by the chunk's share of windows."""
    total = len(videos.window_clips)
    sums: dict[str, Tensor] = {}
    for first in range(0, total, REPRESENTATION_CHUNK):
        windows = torch.arange(first, min(first + REPRESENTATION_CHUNK, total),
                               device=videos.features.device)
        terms = claws_step(model, videos, windows, clusters, config).terms
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + value * (len(windows) / total)
    return sums


@torch.no_grad()
def validate(model: torch.nn.Module, videos: VideoSet, config: TrainConfig, seed: int) -> dict:
    """Video-level AUC (max clip score vs video label) and validation losses, in eval mode.

    Training videos carry only video labels, so frame AUC cannot be computed on them.
    """
    was_training = model.training
    model.eval()
    top = torch.stack([
        clip_scores(model, videos.video_features(v), config.window).max()
        for v in range(len(videos.counts))
    ])
    figures: dict = {"video_auc": roc_auc(videos.labels.cpu().numpy(), top.cpu().numpy())}
    if isinstance(model, ClawsNet):
        clusters = None
        if config.clustering:
            clusters, _ = epoch_clusters(model, videos, config.kmeans_max_iter, seed,
                                         config.kmeans_tol, config.cluster_loss == "scale_free",
                                         config.kmeans_on_units)
        terms = _claws_validation_losses(model, videos, clusters, config)
    else:
        per_class = int(videos.labels.bincount(minlength=2).min())
        segments = videos.segments(config.mil_segments).to(videos.features.device)
        generator = torch.Generator().manual_seed(seed)
        terms = mil_step(model, segments, videos.labels, per_class, config, generator)
    figures.update({f"val_{k}": float(v) for k, v in terms.items()})
    model.train(was_training)
    return figures
