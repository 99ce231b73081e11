"""CLAWS Net training losses (paper section 3.5), one pure function per term, and their sum.

Shapes: B windows in an iteration, T clips per window (b), Z1 representation size.
Every term is computed per window over its real clips only (`valid`, False at the cyclic padding
of a video's last window) and averaged over the windows of the iteration, so with one window per
iteration (the paper's setting) each is exactly the paper's per-batch formula.

Clustering distance (section 3.4, DESIGN.md): the epoch's k-means gives every clip a cluster; in
the iteration the two centres are means of the LIVE representation of the window's clips of each
cluster, d = ||c1 - c2|| / m_i (m_i = clips in the video), L_c = min(alpha, d) for a normal video
and 1 / d for an anomalous one. Guards, reported by `claws_losses`:
  - a window whose real clips all fall in one cluster has no distance; it is left out of L_c
    (L_c is the mean over the other windows, 0 when none is left);
  - 1 / d uses max(d, min_distance), bounding the term at 1 / min_distance (its gradient is zero
    while clamped, so a tiny min_distance keeps the paper's behaviour and only stops overflow).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class LossOutput(NamedTuple):
    """Named loss terms (the loop sums `terms["total"]`) and the clustering guards' counts."""

    terms: dict[str, Tensor]  # regression, clustering, smoothness, sparsity, total
    guards: dict[str, Tensor]  # 0-d counts: cluster_windows, cluster_single_cluster, cluster_clamped


def regression_loss(scores: Tensor, labels: Tensor, valid: Tensor) -> Tensor:
    """L_pred: mean squared error to the video label over each window's real clips.

    Args:
        scores: (B, T) predictions.
        labels: (B,) video labels 0/1.
        valid: (B, T) bool, real clips.
    """
    squared = (scores - labels[:, None].to(scores.dtype)).pow(2) * valid
    return (squared.sum(1) / valid.sum(1)).mean()


def smoothness_loss(scores: Tensor, valid: Tensor) -> Tensor:
    """L_ts: sum of squared differences of consecutive real clips' scores, per window."""
    pairs = valid[:, 1:] & valid[:, :-1]
    return ((scores[:, 1:] - scores[:, :-1]).pow(2) * pairs).sum(1).mean()


def sparsity_loss(scores: Tensor, valid: Tensor) -> Tensor:
    """L_s: sum of the real clips' scores, per window."""
    return (scores * valid).sum(1).mean()


def cluster_distance(
    representation: Tensor, assignments: Tensor, valid: Tensor, num_clips: Tensor
) -> tuple[Tensor, Tensor]:
    """d = ||c1 - c2|| / m_i with centres from the live representation of each window.

    Args:
        representation: (B, T, Z1) FC-1 x NSM-1 of the window, with gradient.
        assignments: (B, T) int64 cluster 0/1 of each clip from the epoch's k-means.
        valid: (B, T) bool, real clips.
        num_clips: (B,) m_i, clips in each window's video.

    Returns:
        distance (B,) and usable (B,) bool: False where the real clips sit in one cluster.
    """
    members = torch.stack([(assignments == c) & valid for c in (0, 1)], dim=1).float()  # (B,2,T)
    sizes = members.sum(2)  # (B, 2)
    sums = torch.bmm(members, representation)  # (B, 2, Z1)
    centres = sums / sizes.clamp(min=1).unsqueeze(2)
    distance = (centres[:, 0] - centres[:, 1]).norm(dim=1) / num_clips.to(centres.dtype)
    return distance, (sizes > 0).all(1)


def clustering_loss(
    distance: Tensor, usable: Tensor, labels: Tensor, alpha: float, min_distance: float
) -> tuple[Tensor, Tensor]:
    """L_c (Eq. 2): min(alpha, d) for normal, 1 / max(d, min_distance) for anomalous windows.

    Returns:
        The mean over usable windows (0 when none), and (B,) bool of clamped windows.
    """
    anomalous = labels.to(torch.bool)
    clamped = anomalous & usable & (distance < min_distance)
    inverse = 1.0 / distance.clamp(min=min_distance)
    per_window = torch.where(anomalous, inverse, distance.clamp(max=alpha))
    per_window = torch.where(usable, per_window, torch.zeros_like(per_window))
    return per_window.sum() / usable.sum().clamp(min=1), clamped


def claws_losses(
    scores: Tensor,
    representation: Tensor,
    labels: Tensor,
    valid: Tensor,
    assignments: Tensor | None,
    num_clips: Tensor,
    *,
    lambda1: float,
    lambda2: float,
    alpha: float,
    min_distance: float,
    smooth_sparsity: bool = True,
) -> LossOutput:
    """Eq. 3: total = lambda1 L_pred + (1 - lambda1) L_c + lambda2 (L_s + L_ts).

    Args:
        scores: (B, T) model scores.
        representation: (B, T, Z1) live FC-1 x NSM-1.
        labels: (B,) video labels.
        valid: (B, T) real clips.
        assignments: (B, T) epoch clusters, or None to switch the clustering loss off.
        num_clips: (B,) clips of each window's video (m_i).
        lambda1, lambda2, alpha: paper weights (0.9, 8e-5, 1).
        min_distance: clamp of d inside 1 / d.
        smooth_sparsity: False switches L_s + L_ts off (Table 3 rows without them).

    Returns:
        LossOutput; switched-off terms are reported as 0 and do not enter the total.
    """
    zero = scores.new_zeros(())
    terms = {
        "regression": regression_loss(scores, labels, valid),
        "clustering": zero,
        "smoothness": smoothness_loss(scores, valid) if smooth_sparsity else zero,
        "sparsity": sparsity_loss(scores, valid) if smooth_sparsity else zero,
    }
    count = torch.zeros((), dtype=torch.int64, device=scores.device)
    guards = {"cluster_windows": count, "cluster_single_cluster": count, "cluster_clamped": count}
    if assignments is not None:
        distance, usable = cluster_distance(representation, assignments, valid, num_clips)
        terms["clustering"], clamped = clustering_loss(distance, usable, labels, alpha, min_distance)
        guards = {
            "cluster_windows": count + len(usable),
            "cluster_single_cluster": (~usable).sum(),
            "cluster_clamped": clamped.sum(),
        }
    terms["total"] = (
        lambda1 * terms["regression"] + (1 - lambda1) * terms["clustering"]
        + lambda2 * (terms["sparsity"] + terms["smoothness"])
    )
    return LossOutput(terms, guards)
