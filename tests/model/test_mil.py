"""MIL baseline: Sultani's 32-segment rule, the scorer, the ranking loss by hand."""

from __future__ import annotations

import pytest
import torch

from claws.model.mil import MilNet, clip_segments, mil_ranking_losses, segment_bounds, segment_features


def test_segment_bounds_follow_sultani_rule() -> None:
    starts, ends = segment_bounds(65)  # round(linspace(1, 65, 33)) = 1, 3, 5, ..., 65
    assert starts.tolist() == list(range(0, 64, 2)) and ends.tolist() == list(range(2, 66, 2))
    starts, ends = segment_bounds(1)
    assert starts.tolist() == [0] * 32 and ends.tolist() == [1] * 32


@pytest.mark.parametrize("clips", [1, 5, 31, 32, 33, 100, 1000])
def test_segments_average_their_clips(clips: int) -> None:
    features = torch.randn(clips, 3, dtype=torch.float64)
    segments = segment_features(features)
    starts, ends = segment_bounds(clips)
    assert segments.shape == (32, 3)
    for s in range(32):
        torch.testing.assert_close(segments[s], features[starts[s] : ends[s]].mean(0))
    owner = clip_segments(clips)
    assert owner.shape == (clips,)
    for c in range(clips):  # a clip lies in its owner segment; the uncovered last clip gets 31
        covered = bool(starts[owner[c]] <= c < ends[owner[c]])
        assert covered or (c == clips - 1 and owner[c] == 31)
        assert not (starts[: owner[c]] <= c).logical_and(c < ends[: owner[c]]).any()


def test_ranking_loss_by_hand() -> None:
    anomalous = torch.tensor([[0.1, 0.9, 0.3], [0.2, 0.2, 0.2]])
    normal = torch.tensor([[0.4, 0.0, 0.0], [0.5, 0.1, 0.9]])
    out = mil_ranking_losses(anomalous, normal, smoothness=0.5, sparsity=0.25)
    ranking = (max(0, 1 - 0.9 + 0.4) + max(0, 1 - 0.2 + 0.9)) / 2
    smooth = ((0.8**2 + 0.6**2) + 0.0) / 2
    sparse = (1.3 + 0.6) / 2
    assert out["ranking"].item() == pytest.approx(ranking)
    assert out["smoothness"].item() == pytest.approx(smooth)
    assert out["sparsity"].item() == pytest.approx(sparse)
    assert out["total"].item() == pytest.approx(ranking + 0.5 * smooth + 0.25 * sparse)


def test_scorer_shapes_and_gradients() -> None:
    torch.manual_seed(0)
    model = MilNet(feature_dim=12, hidden1=8, hidden2=4)
    scores = model(torch.randn(6, 32, 12)).scores
    assert scores.shape == (6, 32) and ((scores >= 0) & (scores <= 1)).all()
    mil_ranking_losses(scores[:3], scores[3:], 8e-5, 8e-5)["total"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with pytest.raises(ValueError, match=r"\(V, S, 12\)"):
        model(torch.randn(2, 12))
