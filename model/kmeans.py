"""Batched k-means in torch: every video's points clustered at once, on the points' device.

Shapes: N points of all videos concatenated, video v owning rows offsets[v] .. offsets[v]+counts[v]
(contiguous), V videos, k clusters, D dims.

k-means++ seeding (Arthur & Vassilvitskii 2007: first centre uniform, each next one drawn with
probability proportional to the squared distance to the nearest chosen centre) is done for all
videos together by inverse-CDF sampling on one global cumulative sum, then Lloyd iterations with
scatter-adds until at most `tol` of the points change cluster (default 1e-4 of N, like
scikit-learn's tolerance it stops Lloyd's long tail of single-point moves; tol=0 runs to an exact
fixed point) or max_iter. An empty cluster keeps its previous centre.

Converged blocks are skipped (`skip_converged`, the default). Distances are computed per block of
VIDEOS_PER_BLOCK consecutive videos; once an iteration leaves every clip of a block in its cluster,
the block is at a fixed point: its centres, the means of unchanged clusters, come out bitwise equal
to the ones just used, so every later iteration would give it the same distances and clusters. Its
distances are then not recomputed; the centres of a video are updated only when some of its clips
moved (the same argument, per video). Nothing else changes (the same matmuls on
the same blocks, the same per-cluster sums in the same row order, the same global count of moved
points against `tol`), so the result is bitwise the one of the full loop (skip_converged=False,
tested), at a fraction of the cost when a few long videos converge slowly: on the bench's random
representation of 200 UCF-Crime videos (13 blocks), 8 blocks still moved at iteration 20, 4 at 50
and 2 at 100, where the loop stopped at max_iter.

Distances use ||x||^2 - 2 x.c + ||c||^2 with ||x||^2 computed once, so an iteration reads the
(N, k, D) gathered centres once instead of building three (N, k, D) temporaries. Everything stays
on the input's device, and only `_host_ints` copies to the host: the counts once, then one copy
per iteration of the counts of moved points (per video when skipping). No boolean-mask indexing
or bincount, whose output sizes a GPU would have to report to the host (a sync per block);
tests/model/test_meta_device.py runs the whole clustering on the meta device to hold this.

Reproducibility. The seed fixes the result on a given device. On the CPU it is bitwise the same
from run to run (and what `skip_converged` is tested against). On CUDA the float index_add_ of the
centre sums and the cumulative sum of the seeding are bitwise repeatable only with
`torch.use_deterministic_algorithms(True)`, which `claws train` turns on for a CUDA run
(claws.pipeline.training.loop); without it they may differ in the last bits from run to run. Results
on the CPU and on a GPU are not bitwise equal (different matmul reduction orders); near-ties
may then fall into the other cluster.
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


def _host_ints(tensor: Tensor) -> list[int]:
    """The one way values leave the device here (a sync on a GPU): an integer tensor as a list."""
    return tensor.tolist()


def _video_blocks(
    sizes: list[int], videos_per_block: int = VIDEOS_PER_BLOCK
) -> list[tuple[int, int, int, int]]:
    """(first video, end video, first row, end row) of consecutive blocks of videos."""
    blocks, row = [], 0
    for first in range(0, len(sizes), videos_per_block):
        end = min(len(sizes), first + videos_per_block)
        rows = sum(sizes[first:end])
        blocks.append((first, end, row, row + rows))
        row += rows
    return blocks


def _block_distances(
    points: Tensor, group: Tensor, centres: Tensor, centre_norms: Tensor, point_norms: Tensor,
    block: tuple[int, int, int, int],
) -> Tensor:
    """(n_b, k) squared distances of one block's points to their own video's centres, unclamped.

    x.c comes from one dense matmul (the block's points against the block's V_b * k centres, then
    each point's own k columns picked), much faster than gathering an (n_b, k, D) tensor of every
    point's own centres.
    """
    first, end, row0, row1 = block
    k, dim = centres.shape[1], centres.shape[2]
    columns = torch.arange(k, device=points.device)
    x = points[row0:row1].float()  # (n_b, D)
    dots = x @ centres[first:end].reshape(-1, dim).T  # (n_b, V_b * k)
    local = (group[row0:row1] - first) * k
    own = dots.gather(1, local.unsqueeze(1) + columns)  # (n_b, k)
    return point_norms[row0:row1].unsqueeze(1) - 2 * own + centre_norms[group[row0:row1]]


def _squared_distances(
    points: Tensor, group: Tensor, centres: Tensor, point_norms: Tensor,
    blocks: list[tuple[int, int, int, int]],
) -> Tensor:
    """(N, k) squared distance of each point to each centre of its own video.

    ||x||^2 - 2 x.c + ||c||^2, block by block (_block_distances), clamped at 0.
    """
    out = points.new_empty(len(points), centres.shape[1], dtype=torch.float32)
    centre_norms = centres.pow(2).sum(-1)  # (V, k)
    for block in blocks:
        out[block[2] : block[3]] = _block_distances(points, group, centres, centre_norms,
                                                    point_norms, block)
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
    sizes = _count(key, num_videos * k).unsqueeze(1)
    flat = centres.reshape(num_videos * k, dim)
    return torch.where(sizes > 0, sums / sizes.clamp(min=1), flat).view(num_videos, k, dim)


def _count(index: Tensor, size: int, weights: Tensor | None = None) -> Tensor:
    """(size,) int64 occurrences (or summed int64 weights) of each value of `index`: bincount
    with its size given, so without bincount's host sync on a GPU."""
    return torch.zeros(size, dtype=torch.int64, device=index.device).index_add_(
        0, index, torch.ones_like(index) if weights is None else weights)


def _update_block_centres(
    points: Tensor, group: Tensor, assignments: Tensor, centres: Tensor,
    block: tuple[int, int, int, int],
) -> None:
    """_update_centres for one block's videos, in place: the same sums over the same rows."""
    first, end, row0, row1 = block
    k = centres.shape[1]
    key = (group[row0:row1] - first) * k + assignments[row0:row1]
    centres[first:end] = _update_centres(points[row0:row1], key, centres[first:end])


def _update_video_centres(
    points: Tensor, assignments: Tensor, centres: Tensor, video: int, row0: int, row1: int,
) -> None:
    """_update_centres for one video (rows row0:row1), in place."""
    centres[video : video + 1] = _update_centres(points[row0:row1], assignments[row0:row1],
                                                 centres[video : video + 1])


def batched_kmeans(
    points: Tensor, counts: Tensor, k: int = 2, max_iter: int = 100, seed: int = 0,
    tol: float = 1e-4, skip_converged: bool = True,
) -> KMeansResult:
    """Cluster the points of every video into k clusters, all videos at once.

    Args:
        points: (N, D) float points, videos' rows contiguous in `counts` order.
        counts: (V,) int64 points per video, each >= 1, summing to N.
        k: clusters per video.
        max_iter: upper bound on Lloyd iterations.
        seed: seeds the k-means++ draws (a CPU generator, so results match across devices).
        tol: stop when at most this fraction of all points changed cluster (0: exact fixed point).
        skip_converged: skip blocks of videos at a fixed point (same result, less work; False
            runs every block every iteration, the reference the tests compare with).

    Returns:
        KMeansResult; a video with fewer than k distinct points gets duplicate centres and all
        its points in the lowest-numbered cluster that holds them.
    """
    counts = counts.to(device=points.device, dtype=torch.int64)
    sizes = _host_ints(counts)
    if points.ndim != 2 or len(points) != sum(sizes) or min(sizes, default=0) < 1:
        raise ValueError(
            f"points {tuple(points.shape)} must be (N, D) with N = sum(counts) and counts >= 1"
        )
    generator = torch.Generator().manual_seed(seed)
    offsets = torch.cumsum(counts, 0) - counts
    group = torch.repeat_interleave(torch.arange(len(counts), device=points.device), counts,
                                    output_size=len(points))  # the size given: no sync
    point_norms = points.float().pow(2).sum(1)
    blocks = _video_blocks(sizes)
    centres = _seed_centres(points, group, offsets, counts, k, generator, point_norms, blocks)
    assignments = torch.full_like(group, -1)
    allowed = int(tol * len(points))
    iterations = 0
    if not skip_converged:
        for iterations in range(1, max_iter + 1):
            new = _squared_distances(points, group, centres, point_norms, blocks).argmin(1)
            moved = _host_ints((new != assignments).sum().reshape(1))[0]  # the one copy
            assignments = new
            if moved <= allowed:
                break
            centres = _update_centres(points, group * k + assignments, centres)
    else:
        starts = [0]
        for size in sizes:
            starts.append(starts[-1] + size)
        active = list(range(len(blocks)))  # blocks some of whose clips moved last iteration
        for iterations in range(1, max_iter + 1):
            centre_norms = centres.pow(2).sum(-1)  # (V, k), as _squared_distances has it
            changed = []
            for index in active:
                first, end, row0, row1 = blocks[index]
                new = _block_distances(points, group, centres, centre_norms, point_norms,
                                       blocks[index]).clamp_(min=0).argmin(1)
                moved = (new != assignments[row0:row1]).long()
                changed.append(_count(group[row0:row1] - first, end - first, moved))
                assignments[row0:row1] = new
            moved_per_video = _host_ints(torch.cat(changed)) if changed else []  # the one copy
            if sum(moved_per_video) <= allowed:
                break
            still, position = [], 0
            for index in active:  # update the centres of the videos that moved
                first, end = blocks[index][:2]
                moved = [first + v for v, m in enumerate(moved_per_video[position : position
                                                                          + end - first]) if m]
                position += end - first
                if len(moved) > (end - first) // 2:  # most of the block: one update
                    _update_block_centres(points, group, assignments, centres, blocks[index])
                else:  # the others are at a fixed point: their update would give the same
                    for video in moved:
                        _update_video_centres(points, assignments, centres, video,
                                              starts[video], starts[video + 1])
                if moved:
                    still.append(index)
            active = still
    final = _squared_distances(points, group, centres, point_norms, blocks)
    final = final.gather(1, assignments[:, None])[:, 0]
    inertia = torch.zeros(len(counts), dtype=torch.float64, device=points.device)
    inertia.index_add_(0, group, final.double())
    return KMeansResult(assignments, centres, inertia, iterations)
