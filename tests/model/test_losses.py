"""Each loss term against a hand-computed value; gradients reach what they should."""

from __future__ import annotations

import math

import pytest
import torch

from claws.model.claws import ClawsNet
from claws.model.losses import (
    claws_losses, cluster_distance, clustering_loss, regression_loss, smoothness_loss,
    sparsity_loss,
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
    # centres (1, 0) and (3, 4): |(2, 4)| = sqrt(20), over m_i = 10 clips
    assert distance.item() == pytest.approx(math.sqrt(20) / 10)
    assert usable.tolist() == [True]
    valid[0, 2:] = False  # the padded positions would have made the second cluster
    _, usable = cluster_distance(rep, assignments, valid, torch.tensor([10]))
    assert usable.tolist() == [False]


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
    out = claws_losses(
        SCORES, rep, LABELS, VALID, torch.tensor([[0, 1, 0, 1], [0, 1, 0, 0]]),
        torch.tensor([4, 2]), lambda1=0.9, lambda2=8e-5, alpha=1.0, min_distance=1e-6,
    )
    t = out.terms
    expected = 0.9 * t["regression"] + 0.1 * t["clustering"] + 8e-5 * (t["sparsity"] + t["smoothness"])
    assert t["total"].item() == pytest.approx(expected.item())
    assert t["clustering"].item() > 0
    assert {k: int(v) for k, v in out.guards.items()} == {
        "cluster_windows": 2, "cluster_single_cluster": 0, "cluster_clamped": 0}
    off = claws_losses(SCORES, rep, LABELS, VALID, None, torch.tensor([4, 2]), lambda1=0.9,
                       lambda2=8e-5, alpha=1.0, min_distance=1e-6, smooth_sparsity=False)
    assert off.terms["clustering"].item() == off.terms["smoothness"].item() == 0.0
    assert off.terms["total"].item() == pytest.approx(0.9 * t["regression"].item())


def _grads(term: str) -> dict[str, bool]:
    torch.manual_seed(0)
    model = ClawsNet(feature_dim=10, hidden1=8, hidden2=4, dropout=0.0)
    out = model(torch.randn(3, 16, 10))
    assignments = (torch.arange(16) % 2).repeat(3, 1)
    losses = claws_losses(
        out.scores, out.representation, torch.tensor([1, 0, 1]), torch.ones(3, 16, dtype=torch.bool),
        assignments, torch.tensor([16, 16, 16]), lambda1=0.9, lambda2=8e-5, alpha=1.0,
        min_distance=1e-9,
    )
    losses.terms[term].backward()
    return {n: p.grad is not None and bool(p.grad.abs().sum() > 0) for n, p in model.named_parameters()}


@pytest.mark.parametrize("term", ["regression", "smoothness", "sparsity", "total"])
def test_score_terms_reach_every_parameter(term: str) -> None:
    assert all(_grads(term).values())


def test_clustering_reaches_fc1_and_nsm1_only() -> None:
    grads = _grads("clustering")
    assert all(v for n, v in grads.items() if n.startswith("module1."))
    assert not any(v for n, v in grads.items() if not n.startswith("module1."))
