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
