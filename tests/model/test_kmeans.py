"""Batched torch k-means against scikit-learn's KMeans, and its edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from claws.model.kmeans import batched_kmeans


def _videos(rng: np.random.Generator, sizes: list[int], dim: int, gap: float) -> list[np.ndarray]:
    videos = []
    for size in sizes:
        split = rng.integers(1, size)
        centre = rng.normal(size=dim) * gap
        blob = np.concatenate([rng.normal(size=(split, dim)), rng.normal(size=(size - split, dim)) + centre])
        videos.append(blob[rng.permutation(size)].astype(np.float32))
    return videos


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return bool((a == b).all() or (a == 1 - b).all())


def test_matches_sklearn_on_separated_data() -> None:
    rng = np.random.default_rng(0)
    videos = _videos(rng, [40, 7, 250, 64, 2, 129], dim=16, gap=8.0)
    counts = torch.tensor([len(v) for v in videos])
    result = batched_kmeans(torch.from_numpy(np.concatenate(videos)), counts, k=2, seed=3)
    labels = result.assignments.split(counts.tolist())
    for v, (points, mine) in enumerate(zip(videos, labels)):
        reference = KMeans(2, n_init=1, random_state=0).fit(points)
        assert _same_partition(mine.numpy(), reference.labels_), v
        assert result.inertia[v].item() == pytest.approx(reference.inertia_, rel=0.01, abs=1e-6)


def test_inertia_within_one_percent_on_overlapping_data() -> None:
    rng = np.random.default_rng(1)
    videos = _videos(rng, [300] * 8, dim=8, gap=1.0)
    counts = torch.tensor([len(v) for v in videos])
    result = batched_kmeans(torch.from_numpy(np.concatenate(videos)), counts, seed=0)
    mine = result.inertia.sum().item()
    reference = sum(KMeans(2, n_init=10, random_state=0).fit(v).inertia_ for v in videos)
    assert mine <= reference * 1.01


def test_centres_are_cluster_means_and_seed_fixes_result() -> None:
    rng = np.random.default_rng(2)
    points = torch.from_numpy(np.concatenate(_videos(rng, [50, 30], dim=4, gap=5.0)))
    counts = torch.tensor([50, 30])
    a = batched_kmeans(points, counts, seed=7)
    b = batched_kmeans(points, counts, seed=7)
    assert torch.equal(a.assignments, b.assignments) and torch.equal(a.centres, b.centres)
    first = a.assignments[:50]
    torch.testing.assert_close(a.centres[0, 1], points[:50][first == 1].mean(0))
    assert a.iterations >= 1


def test_degenerate_videos() -> None:
    points = torch.tensor([[1.0, 1.0], [2.0, 2.0], [2.0, 2.0], [5.0, 0.0]])
    result = batched_kmeans(points, torch.tensor([1, 2, 1]), k=2)
    assert result.assignments.tolist() == [0, 0, 0, 0]  # one point / identical points
    assert torch.allclose(result.inertia, torch.zeros(3, dtype=torch.float64))


def test_bad_counts_are_errors() -> None:
    with pytest.raises(ValueError, match="sum"):
        batched_kmeans(torch.zeros(5, 2), torch.tensor([2, 2]))
    with pytest.raises(ValueError, match="counts >= 1"):
        batched_kmeans(torch.zeros(2, 2), torch.tensor([2, 0]))


@pytest.mark.gpu
def test_cuda_result_matches_cpu() -> None:
    rng = np.random.default_rng(3)
    points = torch.from_numpy(np.concatenate(_videos(rng, [100, 60, 3], dim=8, gap=6.0)))
    counts = torch.tensor([100, 60, 3])
    cpu = batched_kmeans(points, counts, seed=1)
    gpu = batched_kmeans(points.cuda(), counts.cuda(), seed=1)
    assert gpu.assignments.is_cuda
    assert torch.equal(cpu.assignments, gpu.assignments.cpu())


def _assert_same(a, b) -> None:
    assert a.iterations == b.iterations
    assert torch.equal(a.assignments, b.assignments)
    assert torch.equal(a.centres, b.centres) and torch.equal(a.inertia, b.inertia)


@pytest.mark.parametrize("tol,max_iter", [(0.0, 100), (1e-3, 100), (0.0, 4), (1e-2, 100)])
def test_skipping_converged_blocks_is_bitwise_the_full_loop(tol: float, max_iter: int) -> None:
    """Many blocks of 16 videos, some converging at once, some slowly (overlapping blobs), one-
    and two-point videos (empty clusters): skipping converged blocks changes nothing."""
    rng = np.random.default_rng(4)
    sizes = [int(s) for s in rng.integers(1, 300, 70)] + [1, 2, 1]
    videos = _videos(rng, [max(s, 2) for s in sizes[:-3]], dim=24, gap=1.5) + [
        np.ones((1, 24), np.float32), np.zeros((2, 24), np.float32), np.ones((1, 24), np.float32)]
    points = torch.from_numpy(np.concatenate(videos))
    counts = torch.tensor([len(v) for v in videos])
    full = batched_kmeans(points, counts, seed=5, tol=tol, max_iter=max_iter, skip_converged=False)
    fast = batched_kmeans(points, counts, seed=5, tol=tol, max_iter=max_iter)
    _assert_same(fast, full)


def test_skipping_computes_fewer_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the block of the slow video is still computed after the first iterations."""
    import claws.model.kmeans as kmeans

    rng = np.random.default_rng(5)
    # 3 blocks; the separated videos converge at once, the long overlapping one (block 3) late
    videos = _videos(rng, [40] * 47, dim=8, gap=8.0) + _videos(rng, [3000], dim=8, gap=0.3)
    points, counts = torch.from_numpy(np.concatenate(videos)), torch.tensor([len(v) for v in videos])
    calls = []
    block_distances = kmeans._block_distances
    monkeypatch.setattr(kmeans, "_block_distances", lambda *a: calls.append(a[-1]) or block_distances(*a))
    result = batched_kmeans(points, counts, seed=0, tol=0.0)
    lloyd = calls[2 * 3 : -3]  # less the seeding's 2 passes and the final one, 3 blocks each
    assert result.iterations > 6 and len(lloyd) < 1.5 * result.iterations


def test_stopping_at_the_fixed_point_gives_the_clusters_of_more_iterations() -> None:
    """tol=0 stops when no point moved; the clusters are those more iterations would keep."""
    rng = np.random.default_rng(6)
    videos = _videos(rng, [120, 80, 300, 33], dim=6, gap=1.0)
    points, counts = torch.from_numpy(np.concatenate(videos)), torch.tensor([len(v) for v in videos])
    converged = batched_kmeans(points, counts, seed=2, tol=0.0, max_iter=1000)
    assert converged.iterations < 1000
    again = batched_kmeans(points, counts, seed=2, tol=0.0, max_iter=converged.iterations + 50,
                           skip_converged=False)
    _assert_same(converged, again)
    # the centres are the means of the clusters: one more Lloyd update would not move them
    for v, rows in enumerate(converged.assignments.split(counts.tolist())):
        video = points[int(counts[:v].sum()) : int(counts[: v + 1].sum())]
        for c in (0, 1):
            if (rows == c).any():
                torch.testing.assert_close(converged.centres[v, c], video[rows == c].mean(0))
