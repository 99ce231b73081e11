"""The MIL ranking baseline of Sultani et al. (CVPR 2018): 32 segments, 3-layer FC, ranking loss.

Shapes: V videos, S segments per video (32), T clips, D feature dim.

Segments follow Sultani's `Save_C3DFeatures_32Segments.m`: boundaries round(linspace(1, T, S+1))
(1-based); segment s averages clips boundaries[s] .. boundaries[s+1]-1, or takes clip
boundaries[s] alone when that range is empty (videos shorter than S clips). Matlab rounds halves
away from zero, so do we. The last clip belongs to no segment in that rule; for scoring it gets the
last segment's score. Sultani also L2-normalises each segment feature; here segments keep the
mean-normalized features of the shards so both models see the same inputs.

Scorer (Sultani's Keras model): FC 512 + ReLU + dropout 0.6, FC 32 (linear) + dropout 0.6,
FC 1 + sigmoid. Loss per (anomalous, normal) video pair: hinge max(0, 1 - max anomalous segment
score + max normal segment score) + smoothness * sum of squared differences of consecutive
anomalous segment scores + sparsity * sum of anomalous segment scores (both 8e-5).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from claws.model.claws import init_linear

NUM_SEGMENTS = 32  # Sultani et al. 2018, section 3.3


class MilOutput(NamedTuple):
    """What one forward pass returns."""

    scores: Tensor  # (V, S) segment anomaly scores in [0, 1]


def segment_bounds(
    num_clips: int, num_segments: int = NUM_SEGMENTS, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor]:
    """0-based [start, end) clip ranges of the segments; an empty range becomes [start, start+1).

    Args:
        num_clips: T >= 1.
        num_segments: S.
        device: where the bounds go (computed on the CPU, so they are the same on every device).

    Returns:
        starts (S,), ends (S,) int64 with start < end <= T.
    """
    if num_clips < 1:
        raise ValueError(f"a video needs at least one clip, got {num_clips}")
    edges = torch.linspace(1, num_clips, num_segments + 1, dtype=torch.float64)
    edges = torch.floor(edges + 0.5).to(torch.int64) - 1  # Matlab round, then 0-based
    starts, ends = edges[:-1], edges[1:]
    return starts.to(device), torch.maximum(ends, starts + 1).to(device)


def segment_features(features: Tensor, num_segments: int = NUM_SEGMENTS) -> Tensor:
    """Average a video's clip features (T, D) into (S, D) segments (Sultani's rule), on their device."""
    starts, ends = segment_bounds(len(features), num_segments, features.device)
    cumulative = torch.cat([features.new_zeros(1, features.shape[1]), features.cumsum(0)])
    sums = cumulative[ends] - cumulative[starts]
    return sums / (ends - starts).unsqueeze(1).to(features.dtype)


def clip_segments(num_clips: int, num_segments: int = NUM_SEGMENTS) -> Tensor:
    """(T,) index of the segment whose score each clip gets (its first covering segment)."""
    starts, ends = segment_bounds(num_clips, num_segments)
    owner = torch.full((num_clips,), num_segments - 1, dtype=torch.int64)
    for s in range(num_segments - 1, -1, -1):  # first covering segment wins
        owner[int(starts[s]) : int(ends[s])] = s
    return owner


class MilNet(nn.Module):
    """Sultani's scorer applied to segment features: `forward((V, S, D)) -> MilOutput`.

    Args:
        feature_dim: D.
        hidden1: first FC size (512).
        hidden2: second FC size (32).
        dropout: dropout after the first two FCs (0.6).
        num_segments: S, segments per video (32).
        init: weight initialisation (Sultani: Glorot normal).
    """

    def __init__(
        self,
        feature_dim: int = 2048,
        hidden1: int = 512,
        hidden2: int = 32,
        dropout: float = 0.6,
        num_segments: int = NUM_SEGMENTS,
        init: str = "xavier_normal",
    ) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.num_segments = num_segments
        self.layers = nn.Sequential(
            nn.Linear(feature_dim, hidden1), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden1, hidden2), nn.Dropout(dropout),
            nn.Linear(hidden2, 1), nn.Sigmoid(),
        )
        for layer in self.layers:
            if isinstance(layer, nn.Linear):
                init_linear(layer, init)

    def forward(self, segments: Tensor) -> MilOutput:
        """Score (V, S, D) segment features -> MilOutput with scores (V, S)."""
        if segments.ndim != 3 or segments.shape[-1] != self.feature_dim:
            raise ValueError(
                f"MilNet expects segments (V, S, {self.feature_dim}), got {tuple(segments.shape)}"
            )
        return MilOutput(self.layers(segments).squeeze(-1))


def mil_ranking_losses(
    anomalous_scores: Tensor, normal_scores: Tensor, smoothness: float, sparsity: float
) -> dict[str, Tensor]:
    """Sultani's loss terms for paired videos, averaged over the pairs.

    Args:
        anomalous_scores: (V, S) segment scores of V anomalous videos.
        normal_scores: (V, S) segment scores of V normal videos, paired by row.
        smoothness: weight of the temporal smoothness term (8e-5).
        sparsity: weight of the sparsity term (8e-5).

    Returns:
        {"ranking", "smoothness", "sparsity", "total"}; the first three unweighted.
    """
    if anomalous_scores.shape != normal_scores.shape:
        raise ValueError(
            f"paired scores differ in shape: {tuple(anomalous_scores.shape)} vs "
            f"{tuple(normal_scores.shape)}"
        )
    top_anomalous = anomalous_scores.max(dim=1).values
    top_normal = normal_scores.max(dim=1).values
    ranking = torch.relu(1.0 - top_anomalous + top_normal).mean()
    smooth = (anomalous_scores[:, 1:] - anomalous_scores[:, :-1]).pow(2).sum(1).mean()
    sparse = anomalous_scores.sum(1).mean()
    total = ranking + smoothness * smooth + sparsity * sparse
    return {"ranking": ranking, "smoothness": smooth, "sparsity": sparse, "total": total}
