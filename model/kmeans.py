"""Batched k-means in torch: every video's points clustered at once, on the points' device.

Shapes: N points of all videos concatenated, video v owning rows offsets[v] .. offsets[v]+counts[v]
(contiguous), V videos, k clusters, D dims.

k-means++ seeding (Arthur & Vassilvitskii 2007: first centre uniform, each next one drawn with
probability proportional to the squared distance to the nearest chosen centre) is done for all
videos together by inverse-CDF sampling on one global cumulative sum, then Lloyd iterations with
scatter-adds until at most `tol` of the points change cluster (default 1e-4 of N, like
scikit-learn's tolerance it stops Lloyd's long tail of single-point moves; tol=0 runs to an exact
fixed point) or max_iter. An empty cluster keeps its previous centre. Distances use
||x||^2 - 2 x.c + ||c||^2 with ||x||^2 computed once, so an iteration reads the (N, k, D) gathered
centres once instead of building three (N, k, D) temporaries. Everything stays on the input's
device; the only device-to-host transfer per iteration is the one-element count of moved points.
The seed fixes the result.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

VIDEOS_PER_BLOCK = 16  # videos per distance matmul: cost N x 16k x D, temporaries n_b x 16k


class KMeansResult(NamedTuple):
    """Clusters of every video."""

    assignments: Tensor  # (N,) int64 cluster of each point, in [0, k)
    centres: Tensor  # (V, k, D) float32
    inertia: Tensor  # (V,) float64 sum of squared distances to the assigned centre
    iterations: int  # Lloyd iterations run


def _video_blocks(
    counts: Tensor, videos_per_block: int = VIDEOS_PER_BLOCK
) -> list[tuple[int, int, int, int]]:
    """(first video, end video, first row, end row) of consecutive blocks of videos.

    Computed once per clustering from the counts (the one host copy besides the moved counts).
    """
    sizes = counts.tolist()
    blocks, row = [], 0
    for first in range(0, len(sizes), videos_per_block):
        end = min(len(sizes), first + videos_per_block)
        rows = sum(sizes[first:end])
        blocks.append((first, end, row, row + rows))
        row += rows
    return blocks


def _squared_distances(
    points: Tensor, group: Tensor, centres: Tensor, point_norms: Tensor,
    blocks: list[tuple[int, int, int, int]],
) -> Tensor:
    """(N, k) squared distance of each point to each centre of its own video.

    ||x||^2 - 2 x.c + ||c||^2, with x.c from one dense matmul per block of videos (the block's
    points against the block's V_b * k centres, then each point's own k columns picked), which is
    much faster than gathering an (N, k, D) tensor of every point's own centres.
    """
    num_videos, k, dim = centres.shape
    out = points.new_empty(len(points), k, dtype=torch.float32)
    centre_norms = centres.pow(2).sum(-1)  # (V, k)
    columns = torch.arange(k, device=points.device)
    for first, end, row0, row1 in blocks:
        x = points[row0:row1].float()  # (n_b, D)
        dots = x @ centres[first:end].reshape(-1, dim).T  # (n_b, V_b * k)
        local = (group[row0:row1] - first) * k
        own = dots.gather(1, local.unsqueeze(1) + columns)  # (n_b, k)
        rows = slice(row0, row1)
        out[rows] = point_norms[rows].unsqueeze(1) - 2 * own + centre_norms[group[rows]]
    return out.clamp_(min=0)


def _seed_centres(points: Tensor, group: Tensor, offsets: Tensor, counts: Tensor, k: int,
                  generator: torch.Generator, point_norms: Tensor, blocks: list) -> Tensor:
    """k-means++ initial centres (V, k, D) for every video at once."""
    num_videos, device = len(counts), points.device
    centres = points.new_zeros(num_videos, k, points.shape[1], dtype=torch.float32)
    draw = torch.rand(num_videos, generator=generator).to(device)
    first = offsets + torch.minimum((draw * counts).long(), counts - 1)
    centres[:, 0] = points[first].float()
    nearest = _squared_distances(points, group, centres[:, :1], point_norms, blocks)
    nearest = nearest[:, 0].double()  # (N,)
    for j in range(1, k):
        cumulative = torch.cumsum(nearest, 0)
        before = torch.where(offsets > 0, cumulative[(offsets - 1).clamp(min=0)], 0.0)
        total = cumulative[offsets + counts - 1] - before
        draw = torch.rand(num_videos, generator=generator, dtype=torch.float64).to(device)
        chosen = torch.searchsorted(cumulative, before + draw * total, right=True)
        chosen = torch.minimum(torch.maximum(chosen, offsets), offsets + counts - 1)
        chosen = torch.where(total > 0, chosen, first)  # all points equal: any point will do
        centres[:, j] = points[chosen].float()
        new = _squared_distances(points, group, centres[:, j : j + 1], point_norms, blocks)
        new = new[:, 0].double()
        nearest = torch.minimum(nearest, new)
    return centres


def _update_centres(points: Tensor, key: Tensor, centres: Tensor) -> Tensor:
    """Mean of each (video, cluster) from keys video * k + cluster; empty clusters keep theirs."""
    num_videos, k, dim = centres.shape
    sums = points.new_zeros(num_videos * k, dim, dtype=torch.float32)
    sums.index_add_(0, key, points.float())
    sizes = torch.bincount(key, minlength=num_videos * k).unsqueeze(1)
    flat = centres.reshape(num_videos * k, dim)
    return torch.where(sizes > 0, sums / sizes.clamp(min=1), flat).view(num_videos, k, dim)


def batched_kmeans(
    points: Tensor, counts: Tensor, k: int = 2, max_iter: int = 100, seed: int = 0,
    tol: float = 1e-4,
) -> KMeansResult:
    """Cluster the points of every video into k clusters, all videos at once.

    Args:
        points: (N, D) float points, videos' rows contiguous in `counts` order.
        counts: (V,) int64 points per video, each >= 1, summing to N.
        k: clusters per video.
        max_iter: upper bound on Lloyd iterations.
        seed: seeds the k-means++ draws (a CPU generator, so results match across devices).
        tol: stop when at most this fraction of all points changed cluster (0: exact fixed point).

    Returns:
        KMeansResult; a video with fewer than k distinct points gets duplicate centres and all
        its points in the lowest-numbered cluster that holds them.
    """
    counts = counts.to(device=points.device, dtype=torch.int64)
    if points.ndim != 2 or len(points) != int(counts.sum()) or (counts < 1).any():
        raise ValueError(
            f"points {tuple(points.shape)} must be (N, D) with N = sum(counts) and counts >= 1"
        )
    generator = torch.Generator().manual_seed(seed)
    offsets = torch.cumsum(counts, 0) - counts
    group = torch.repeat_interleave(torch.arange(len(counts), device=points.device), counts)
    point_norms = points.float().pow(2).sum(1)
    blocks = _video_blocks(counts)
    centres = _seed_centres(points, group, offsets, counts, k, generator, point_norms, blocks)
    assignments = torch.full_like(group, -1)
    allowed = int(tol * len(points))
    iterations = 0
    for iterations in range(1, max_iter + 1):
        new = _squared_distances(points, group, centres, point_norms, blocks).argmin(1)
        moved = int((new != assignments).sum())  # the one scalar that leaves the device
        assignments = new
        if moved <= allowed:
            break
        centres = _update_centres(points, group * k + assignments, centres)
    final = _squared_distances(points, group, centres, point_norms, blocks)
    final = final.gather(1, assignments[:, None])[:, 0]
    inertia = torch.zeros(len(counts), dtype=torch.float64, device=points.device)
    inertia.index_add_(0, group, final.double())
    return KMeansResult(assignments, centres, inertia, iterations)
