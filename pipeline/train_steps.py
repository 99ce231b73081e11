"""What one training step computes for each model, the epoch's clustering, and validation.

Shapes: N clips of all videos, K windows, B windows per step, b clips per window, D feature dim,
Z1 representation size, V videos, S MIL segments.
"""

from __future__ import annotations

import time

import torch
from sklearn.metrics import roc_auc_score
from torch import Tensor

from claws.model.claws import ClawsNet
from claws.model.inference import clip_scores
from claws.model.kmeans import batched_kmeans
from claws.model.losses import LossOutput, claws_losses
from claws.model.mil import MilNet, mil_ranking_losses
from claws.pipeline.config import TrainConfig
from claws.pipeline.training_data import VideoSet

REPRESENTATION_CHUNK = 1024  # windows per no-grad forward when computing the representation


@torch.no_grad()
def cluster_assignments(
    model: ClawsNet, videos: VideoSet, max_iter: int, seed: int, tol: float = 1e-3
) -> tuple[Tensor, dict]:
    """2-means of every video's detached FC-1 x NSM-1 representation (paper 3.4, DESIGN.md).

    The representation is computed window by window with the training windows (NSM's softmax
    is over a window) and the padded positions dropped, so each clip has one representation.

    Returns:
        (N,) int64 cluster of every clip on the data's device, and a dict of figures.
    """
    start = time.perf_counter()
    representation = None
    for first in range(0, len(videos.window_clips), REPRESENTATION_CHUNK):
        clips = videos.window_clips[first : first + REPRESENTATION_CHUNK]
        valid = videos.window_valid[first : first + REPRESENTATION_CHUNK]
        chunk = model.representation(videos.features[clips].float())  # (c, b, Z1)
        if representation is None:
            representation = chunk.new_empty(len(videos.features), chunk.shape[-1])
        representation[clips[valid]] = chunk[valid]
    represented = time.perf_counter()
    result = batched_kmeans(representation, videos.counts, k=2, max_iter=max_iter, seed=seed,
                            tol=tol)
    device = videos.counts.device
    sizes = torch.zeros(len(videos.counts), device=device).index_add_(
        0, torch.repeat_interleave(torch.arange(len(videos.counts), device=device), videos.counts),
        result.assignments.float(),
    )
    single = int(((sizes == 0) | (sizes == videos.counts)).sum())
    figures = {
        "representation_s": round(represented - start, 4),
        "kmeans_s": round(time.perf_counter() - represented, 4),
        "kmeans_iterations": result.iterations,
        "videos_single_cluster": single,
    }
    return result.assignments, figures


def claws_step(
    model: ClawsNet, videos: VideoSet, windows: Tensor, assignments: Tensor | None,
    config: TrainConfig,
) -> LossOutput:
    """Loss terms of CLAWS Net on a batch of windows (indices into videos.window_*)."""
    clips = videos.window_clips[windows]  # (B, b)
    valid = videos.window_valid[windows]
    video = videos.window_video[windows]
    out = model(videos.features[clips].float())  # features (B, b, D)
    return claws_losses(
        out.scores, out.representation, videos.labels[video], valid,
        assignments[clips] if assignments is not None else None, videos.counts[video],
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
    model: ClawsNet, videos: VideoSet, assignments: Tensor | None, config: TrainConfig
) -> dict[str, Tensor]:
    """Loss terms over all windows, in chunks, weighted by the chunk's share of windows."""
    total = len(videos.window_clips)
    sums: dict[str, Tensor] = {}
    for first in range(0, total, REPRESENTATION_CHUNK):
        windows = torch.arange(first, min(first + REPRESENTATION_CHUNK, total),
                               device=videos.features.device)
        terms = claws_step(model, videos, windows, assignments, config).terms
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
    figures: dict = {"video_auc": float(roc_auc_score(videos.labels.cpu(), top.cpu()))}
    if isinstance(model, ClawsNet):
        assignments = None
        if config.clustering:
            assignments, _ = cluster_assignments(model, videos, config.kmeans_max_iter, seed,
                                                 config.kmeans_tol)
        terms = _claws_validation_losses(model, videos, assignments, config)
    else:
        per_class = int(videos.labels.bincount(minlength=2).min())
        segments = videos.segments(config.mil_segments).to(videos.features.device)
        generator = torch.Generator().manual_seed(seed)
        terms = mil_step(model, segments, videos.labels, per_class, config, generator)
    figures.update({f"val_{k}": float(v) for k, v in terms.items()})
    model.train(was_training)
    return figures
