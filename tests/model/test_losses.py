"""Each loss term against a hand-computed value; gradients reach what they should."""

from __future__ import annotations

import math

import pytest
import torch

from claws.model.claws import ClawsNet
from claws.model.losses import (
    WindowClusters, claws_losses, cluster_distance, clustering_loss, regression_loss,
    smoothness_loss, sparsity_loss, unit_rows, video_cluster_distance,
)

SCORES = torch.tensor([[0.2, 0.4, 0.9, 0.1], [0.5, 0.5, 0.0, 1.0]])
VALID = torch.tensor([[True, True, True, True], [True, True, False, False]])
LABELS = torch.tensor([1, 0])


def test_regression_by_hand() -> None:
    first = (0.8**2 + 0.6**2 + 0.1**2 + 0.9**2) / 4
    second = (0.25 + 0.25) / 2  # padded positions dropped
    assert regression_loss(SCORES, LABELS, VALID).item() == pytest.approx((first + second) / 2)


def test_smoothness_and_sparsity_by_hand() -> None:
    smooth = ((0.2**2 + 0.5**2 + 0.8**2) + 0.0) / 2
    assert smoothness_loss(SCORES, VALID).item() == pytest.approx(smooth)
    assert sparsity_loss(SCORES, VALID).item() == pytest.approx((1.6 + 1.0) / 2)


def test_cluster_distance_by_hand() -> None:
    rep = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [3.0, 4.0], [3.0, 4.0]]])
    assignments = torch.tensor([[0, 0, 1, 1]])
    valid = torch.ones(1, 4, dtype=torch.bool)
    distance, usable = cluster_distance(rep, assignments, valid, torch.tensor([10]))
    # literal distance: centres (1, 0) and (3, 4): |(2, 4)| = sqrt(20), over m_i = 10 clips
    assert distance.item() == pytest.approx(math.sqrt(20) / 10)
    assert usable.tolist() == [True]
    valid[0, 2:] = False  # the padded positions would have made the second cluster
    _, usable = cluster_distance(rep, assignments, valid, torch.tensor([10]))
    assert usable.tolist() == [False]


def scale_free_clusters(assignments: torch.Tensor, epoch_units: torch.Tensor,
                        video_units: list[torch.Tensor], video_assignments: list[torch.Tensor]
                        ) -> WindowClusters:
    """WindowClusters of one window per video from the videos' full epoch-start unit vectors."""
    sums = torch.stack([torch.stack([u[a == c].sum(0) for c in (0, 1)])
                        for u, a in zip(video_units, video_assignments)])
    sizes = torch.stack([torch.stack([(a == c).sum() for c in (0, 1)]) for a in video_assignments])
    counts = torch.tensor([len(a) for a in video_assignments])
    return WindowClusters(assignments, counts, epoch_units, sums, sizes)


def test_video_cluster_distance_by_hand() -> None:
    # A video of 4 clips; the window holds clips 0 and 2 (live), clips 1 and 3 stay at their
    # epoch-start unit vectors. Clusters: {0, 1} and {2, 3}.
    epoch = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [1.0, 0.0]])
    video_assignments = torch.tensor([0, 0, 1, 1])
    live = torch.tensor([[[3.0, 0.0], [0.0, 5.0]]])  # clip 0 -> (1, 0); clip 2 -> (0, 1)
    clusters = scale_free_clusters(torch.tensor([[0, 1]]), epoch[[0, 2]].unsqueeze(0), [epoch],
                                   [video_assignments])
    distance, usable = video_cluster_distance(live, clusters, torch.ones(1, 2, dtype=torch.bool))
    # c1 = ((1, 0) live + (0, 1) epoch) / 2 = (0.5, 0.5); c2 = ((0, 1) live + (1, 0) epoch) / 2
    assert distance.item() == pytest.approx(0.0, abs=1e-7)
    live = torch.tensor([[[3.0, 0.0], [3.0, 4.0]]])  # clip 2 live equals its epoch value
    distance, _ = video_cluster_distance(live, clusters, torch.ones(1, 2, dtype=torch.bool))
    # c1 = (0.5, 0.5), c2 = ((0.6, 0.8) + (1, 0)) / 2 = (0.8, 0.4): |(-0.3, 0.1)| = sqrt(0.1)
    assert distance.item() == pytest.approx(math.sqrt(0.1))
    assert usable.tolist() == [True]
    # a padded position repeating clip 0 changes nothing
    padded = torch.tensor([[[3.0, 0.0], [3.0, 4.0], [3.0, 0.0]]])
    padded_clusters = clusters._replace(assignments=torch.tensor([[0, 1, 0]]),
                                        epoch_units=epoch[[0, 2, 0]].unsqueeze(0))
    again, _ = video_cluster_distance(padded, padded_clusters, torch.tensor([[True, True, False]]))
    assert again.item() == pytest.approx(math.sqrt(0.1))
    one = clusters._replace(video_sizes=torch.tensor([[4, 0]]))
    assert video_cluster_distance(live, one, torch.ones(1, 2, dtype=torch.bool))[1].tolist() == [False]


def test_video_cluster_distance_is_scale_free() -> None:
    torch.manual_seed(1)
    rep = torch.rand(1, 6, 5)
    assignments = torch.tensor([[0, 0, 1, 1, 0, 1]])
    clusters = scale_free_clusters(assignments, unit_rows(rep), [unit_rows(rep[0])], [assignments[0]])
    valid = torch.ones(1, 6, dtype=torch.bool)
    small, _ = video_cluster_distance(rep * 1e-4, clusters, valid)
    large, _ = video_cluster_distance(rep * 1e4, clusters, valid)
    assert small.item() == pytest.approx(large.item(), rel=1e-5)
    assert 0 < small.item() <= math.sqrt(2)


@pytest.mark.parametrize("label", [0, 1])
def test_a_step_moves_the_centres_the_right_way(label: int) -> None:
    """Normal video: one gradient step on L_c shrinks d_i; anomalous: it grows d_i."""
    torch.manual_seed(label)
    model = ClawsNet(feature_dim=12, hidden1=16, hidden2=4, dropout=0.0)
    features = torch.randn(1, 32, 12)
    rep = model.representation(features)
    assignments = (torch.arange(32) % 2).unsqueeze(0)
    window = torch.arange(8, 24)  # the batch: 16 of the video's 32 clips
    clusters = scale_free_clusters(assignments[:, window], unit_rows(rep)[:, window],
                                   [unit_rows(rep[0])], [assignments[0]])
    valid = torch.ones(1, 16, dtype=torch.bool)
    labels = torch.tensor([label])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)

    def distance() -> torch.Tensor:
        out = model(features[:, window])
        return video_cluster_distance(out.representation, clusters, valid)[0]

    before = distance()
    loss, _ = clustering_loss(before, torch.tensor([True]), labels, alpha=1.0, min_distance=0.05)
    loss.backward()
    optimizer.step()
    after = distance().item()
    assert after < before.item() if label == 0 else after > before.item()


def test_clustering_loss_by_hand() -> None:
    distance = torch.tensor([0.5, 2.0, 0.25, 1e-9, 0.3])
    usable = torch.tensor([True, True, True, True, False])
    labels = torch.tensor([0, 0, 1, 1, 1])
    loss, clamped = clustering_loss(distance, usable, labels, alpha=1.0, min_distance=1e-6)
    # normal: min(1, 0.5) + min(1, 2); anomalous: 1/0.25 + 1/1e-6 (clamped); last unusable
    assert loss.item() == pytest.approx((0.5 + 1.0 + 4.0 + 1e6) / 4)
    assert clamped.tolist() == [False, False, False, True, False]
    none, _ = clustering_loss(distance, torch.zeros(5, dtype=torch.bool), labels, 1.0, 1e-6)
    assert none.item() == 0.0


def test_total_is_equation_3() -> None:
    rep = torch.randn(2, 4, 3)
    clusters = WindowClusters(torch.tensor([[0, 1, 0, 1], [0, 1, 0, 0]]), torch.tensor([4, 2]))
    out = claws_losses(SCORES, rep, LABELS, VALID, clusters, lambda1=0.9, lambda2=8e-5, alpha=1.0,
                       min_distance=1e-6)
    t = out.terms
    expected = 0.9 * t["regression"] + 0.1 * t["clustering"] + 8e-5 * (t["sparsity"] + t["smoothness"])
    assert t["total"].item() == pytest.approx(expected.item())
    assert t["clustering"].item() > 0
    assert {k: int(v) for k, v in out.guards.items()} == {
        "cluster_windows": 2, "cluster_single_cluster": 0, "cluster_clamped": 0}
    off = claws_losses(SCORES, rep, LABELS, VALID, None, lambda1=0.9, lambda2=8e-5, alpha=1.0,
                       min_distance=1e-6, smooth_sparsity=False)
    assert off.terms["clustering"].item() == off.terms["smoothness"].item() == 0.0
    assert off.terms["total"].item() == pytest.approx(0.9 * t["regression"].item())


def _grads(term: str, scale_free: bool = True) -> dict[str, bool]:
    torch.manual_seed(0)
    model = ClawsNet(feature_dim=10, hidden1=8, hidden2=4, dropout=0.0)
    features = torch.randn(3, 16, 10)
    out = model(features)
    assignments = (torch.arange(16) % 2).repeat(3, 1)
    clusters = WindowClusters(assignments, torch.tensor([16, 16, 16]))
    if scale_free:  # each window is a whole video here
        units = unit_rows(model.representation(features))
        clusters = scale_free_clusters(assignments, units, list(units), list(assignments))
    losses = claws_losses(
        out.scores, out.representation, torch.tensor([1, 0, 1]), torch.ones(3, 16, dtype=torch.bool),
        clusters, lambda1=0.9, lambda2=8e-5, alpha=1.0, min_distance=1e-9,
    )
    losses.terms[term].backward()
    return {n: p.grad is not None and bool(p.grad.abs().sum() > 0) for n, p in model.named_parameters()}


@pytest.mark.parametrize("term", ["regression", "smoothness", "sparsity", "total"])
def test_score_terms_reach_every_parameter(term: str) -> None:
    assert all(_grads(term).values())


@pytest.mark.parametrize("scale_free", [True, False])
def test_clustering_reaches_fc1_and_nsm1_only(scale_free: bool) -> None:
    grads = _grads("clustering", scale_free)
    assert all(v for n, v in grads.items() if n.startswith("module1."))
    assert not any(v for n, v in grads.items() if not n.startswith("module1."))
