"""CLAWS Net: shapes, NSM softmax columns, switches, gradients, no NaNs."""

from __future__ import annotations

import pytest
import torch

from claws.model.claws import ClawsNet


@pytest.mark.parametrize("batch,clips", [(1, 1), (1, 64), (3, 64), (2, 7), (5, 33)])
@pytest.mark.parametrize("nsm1,nsm2", [(True, True), (False, True), (True, False), (False, False)])
def test_forward_shapes(batch: int, clips: int, nsm1: bool, nsm2: bool) -> None:
    torch.manual_seed(0)
    model = ClawsNet(feature_dim=40, hidden1=16, hidden2=8, nsm1=nsm1, nsm2=nsm2).eval()
    out = model(torch.randn(batch, clips, 40))
    assert out.scores.shape == (batch, clips)
    assert out.representation.shape == (batch, clips, 16)
    assert ((out.scores >= 0) & (out.scores <= 1)).all()
    assert torch.isfinite(out.scores).all()
    assert (out.suppression1 is None) != nsm1 and (out.suppression2 is None) != nsm2
    assert (model.module1.nsm is None) != nsm1


def test_suppression_columns_sum_to_one_over_time() -> None:
    torch.manual_seed(0)
    out = ClawsNet(feature_dim=24, hidden1=12, hidden2=6).eval()(torch.randn(4, 64, 24))
    for weights, z in ((out.suppression1, 12), (out.suppression2, 6)):
        assert weights.shape == (4, 64, z)
        torch.testing.assert_close(weights.sum(dim=1), torch.ones(4, z))
        assert (weights > 0).all()


def test_window_scaled_suppression_sums_to_the_window_length() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 16, 24)
    plain = ClawsNet(feature_dim=24, hidden1=12, hidden2=6).eval()
    scaled = ClawsNet(feature_dim=24, hidden1=12, hidden2=6, nsm_window_scaled=True).eval()
    scaled.load_state_dict(plain.state_dict())
    a, b = plain(x), scaled(x)
    torch.testing.assert_close(b.suppression1, 16 * a.suppression1)
    torch.testing.assert_close(b.suppression2.sum(dim=1), torch.full((2, 6), 16.0))
    torch.testing.assert_close(b.representation, 16 * a.representation)
    with torch.no_grad():  # an even suppression (all NSM logits equal) is then the identity
        for module in (scaled.module1, scaled.module2):
            module.nsm.weight.zero_()
    hidden = torch.relu(scaled.module1.fc(x))
    torch.testing.assert_close(scaled(x).representation, hidden)


def test_representation_is_fc1_times_nsm1_and_matches_forward() -> None:
    torch.manual_seed(0)
    model = ClawsNet(feature_dim=24, hidden1=12, hidden2=6).eval()
    x = torch.randn(2, 10, 24)
    out = model(x)
    expected = torch.relu(model.module1.fc(x)) * out.suppression1
    torch.testing.assert_close(out.representation, expected)
    torch.testing.assert_close(model.representation(x), expected)


def test_windows_are_independent() -> None:
    """A window scored alone equals the same window inside a batch (softmax is per window)."""
    torch.manual_seed(0)
    model = ClawsNet(feature_dim=24, hidden1=12, hidden2=6).eval()
    x = torch.randn(3, 16, 24)
    torch.testing.assert_close(model(x[1:2]).scores, model(x).scores[1:2])


def test_every_parameter_gets_a_gradient() -> None:
    torch.manual_seed(0)
    model = ClawsNet(feature_dim=24, hidden1=12, hidden2=6, dropout=0.5).train()
    model(torch.randn(2, 16, 24)).scores.sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("init", ["xavier_uniform", "xavier_normal", "kaiming_uniform"])
def test_inits_zero_biases(init: str) -> None:
    model = ClawsNet(feature_dim=24, hidden1=12, hidden2=6, init=init)
    assert all((p == 0).all() for n, p in model.named_parameters() if n.endswith("bias"))


def test_bad_arguments_are_errors() -> None:
    with pytest.raises(ValueError, match="init"):
        ClawsNet(init="orthogonal")
    with pytest.raises(ValueError, match="dropout"):
        ClawsNet(dropout=1.0)
    with pytest.raises(ValueError, match=r"\(B, T, 2048\)"):
        ClawsNet()(torch.randn(2, 3, 100))
