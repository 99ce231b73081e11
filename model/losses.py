"""CLAWS Net training losses (paper section 3.5), one pure function per term, and their sum.

Shapes: B windows in an iteration, T clips per window (b), Z1 representation size.
Every term is computed per window over its real clips only (`valid`, False at the cyclic padding
of a video's last window) and averaged over the windows of the iteration, so with one window per
iteration (the paper's setting) each is exactly the paper's per-batch formula.

Clustering distance (section 3.4). The epoch's 2-means gives every clip of every training video a
cluster a_j. Two distances are implemented (DESIGN.md "Clustering loss"):

- "scale_free" (the presets' default): per VIDEO, on unit vectors r^_j = r_j / ||r_j||. For a
  window of video i, centre c_k is the mean of r^_j over ALL of the video's clips with a_j = k,
  taking the epoch-start (detached) value for clips outside the window and the live value for the
  window's clips, so the loss has a gradient through the batch; d_i = ||c_1 - c_2|| lies in
  [0, sqrt 2] whatever the video's length or the representation's scale.
- "literal": the paper's text read as written, d = ||c1 - c2|| / m_i with centres of the live
  representation of the window's clips (m_i = clips in the video). Kept for the record: on real
  and synthetic features d is 1e-6..5e-5, L_c's gradient dwarfs L_pred's and inverts the detector.

L_c = min(alpha, d) for a normal video and 1 / max(d, min_distance) for an anomalous one (Eq. 2).
Guards, reported by `claws_losses`:
  - a window without a distance (literal: its real clips sit in one cluster; scale-free: the
    whole video sits in one cluster) is left out of L_c (the mean over the other windows, 0 when
    none is left);
  - 1 / d uses max(d, min_distance) (delta), bounding the term at 1 / delta; its gradient is zero
    while clamped (counted as cluster_clamped).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class WindowClusters(NamedTuple):
    """What the clustering loss knows about the clips of a batch's windows (from the epoch start).

    `epoch_units`, `video_sums` and `video_sizes` are None for the literal distance.
    """

    assignments: Tensor  # (B, T) int64 cluster 0/1 of each clip from the epoch's 2-means
    num_clips: Tensor  # (B,) m_i, clips in each window's video
    epoch_units: Tensor | None = None  # (B, T, Z1) epoch-start r^ of the window's clips, detached
    video_sums: Tensor | None = None  # (B, 2, Z1) sum of epoch-start r^ of the video per cluster
    video_sizes: Tensor | None = None  # (B, 2) clips of the video in each cluster


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


def unit_rows(representation: Tensor, eps: float = 1e-12) -> Tensor:
    """r / ||r|| along the last dim; an all-zero vector stays zero."""
    return representation / representation.norm(dim=-1, keepdim=True).clamp(min=eps)


def video_cluster_distance(
    representation: Tensor, clusters: WindowClusters, valid: Tensor
) -> tuple[Tensor, Tensor]:
    """Scale-free per-video d_i = ||c_1 - c_2|| with live batch clips (DESIGN.md).

    c_k = (video_sums_k - sum of the window's epoch-start r^ in k + sum of their live r^ in k)
    / video_sizes_k: the mean of r^ over the whole video, live inside the window.

    Args:
        representation: (B, T, Z1) live FC-1 x NSM-1 of the window, with gradient.
        clusters: WindowClusters with the scale-free fields set.
        valid: (B, T) bool, real clips (padded positions repeat clips already counted).

    Returns:
        distance (B,) in [0, sqrt 2] for non-negative r, and usable (B,) bool: False where the
        video has clips in one cluster only.
    """
    members = torch.stack([(clusters.assignments == c) & valid for c in (0, 1)], dim=1)
    members = members.to(representation.dtype)  # (B, 2, T)
    live = torch.bmm(members, unit_rows(representation))  # (B, 2, Z1)
    stale = torch.bmm(members, clusters.epoch_units.to(representation.dtype))
    sizes = clusters.video_sizes.to(representation.dtype)
    centres = (clusters.video_sums.to(representation.dtype) - stale + live) / sizes.clamp(
        min=1).unsqueeze(2)
    distance = (centres[:, 0] - centres[:, 1]).norm(dim=1)
    return distance, (clusters.video_sizes > 0).all(1)


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
    clusters: WindowClusters | None,
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
        clusters: the epoch's clusters of the windows' clips, or None to switch the clustering
            loss off; scale-free when its epoch_units are set, literal otherwise.
        lambda1, lambda2, alpha: paper weights (0.9, 8e-5, 1).
        min_distance: delta, the clamp of d inside 1 / d.
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
    if clusters is not None:
        if clusters.epoch_units is None:
            distance, usable = cluster_distance(representation, clusters.assignments, valid,
                                                clusters.num_clips)
        else:
            distance, usable = video_cluster_distance(representation, clusters, valid)
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
