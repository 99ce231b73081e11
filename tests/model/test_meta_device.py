"""Every model entry point keeps its work on the input's device (issue 22, item 1).

The meta device stands in for a GPU: a tensor made on the CPU by default and mixed with the
input ("Tensor on device cpu is not on the expected device meta"), or a result whose size depends
on data (boolean-mask indexing, bincount: a host sync on CUDA), is an error there. So a model
function that passes here makes no CPU tensor behind the caller's back and waits for no value
it does not say it copies. What meta cannot run (values) the other model tests cover on the CPU.
"""

from __future__ import annotations

import pytest
import torch

import claws.model.kmeans as kmeans
from claws.model.claws import ClawsNet
from claws.model.inference import clip_scores
from claws.model.kmeans import batched_kmeans
from claws.model.losses import WindowClusters, claws_losses
from claws.model.mil import MilNet, mil_ranking_losses, segment_bounds, segment_features

META = torch.device("meta")


@pytest.mark.parametrize("clips", [1, 31, 100])
def test_mil_segments_on_the_features_device(clips: int) -> None:
    segments = segment_features(torch.empty(clips, 8, device=META))
    assert segments.device == META and segments.shape == (32, 8)
    starts, ends = segment_bounds(clips, device=META)
    assert starts.device == META and ends.device == META


def test_mil_net_and_loss_on_meta() -> None:
    model = MilNet(feature_dim=8, hidden1=4, hidden2=2).to(META)
    scores = model(torch.empty(4, 32, 8, device=META)).scores
    terms = mil_ranking_losses(scores[:2], scores[2:], 8e-5, 8e-5)
    assert scores.device == META and all(t.device == META for t in terms.values())


@pytest.mark.parametrize("scale_free", [False, True])
def test_claws_net_and_losses_on_meta(scale_free: bool) -> None:
    model = ClawsNet(feature_dim=8, hidden1=4, hidden2=2).to(META)
    out = model(torch.empty(3, 5, 8, device=META))
    valid = torch.ones(3, 5, dtype=torch.bool, device=META)
    labels = torch.tensor([0, 1, 1], device=META)
    assignments = torch.zeros(3, 5, dtype=torch.int64, device=META)
    clips = torch.full((3,), 5, dtype=torch.int64, device=META)
    clusters = WindowClusters(assignments, clips) if not scale_free else WindowClusters(
        assignments, clips, torch.empty(3, 5, 4, device=META), torch.empty(3, 2, 4, device=META),
        torch.ones(3, 2, dtype=torch.int64, device=META))
    result = claws_losses(out.scores, out.representation, labels, valid, clusters, lambda1=0.9,
                          lambda2=8e-5, alpha=1.0, min_distance=0.05)
    assert all(t.device == META for t in (*result.terms.values(), *result.guards.values()))
    assert model.representation(torch.empty(3, 5, 8, device=META)).device == META


@pytest.mark.parametrize("model", [ClawsNet(feature_dim=8, hidden1=4, hidden2=2),
                                   MilNet(feature_dim=8, hidden1=4, hidden2=2)], ids=["claws", "mil"])
@pytest.mark.parametrize("clips", [1, 64, 130])
def test_clip_scores_on_meta(model: torch.nn.Module, clips: int) -> None:
    scores = clip_scores(model.to(META), torch.empty(clips, 8, device=META), window=64)
    assert scores.device == META and scores.shape == (clips,)


@pytest.mark.parametrize("skip_converged", [True, False])
def test_kmeans_on_meta_crosses_to_the_host_only_through_host_ints(
    monkeypatch: pytest.MonkeyPatch, skip_converged: bool
) -> None:
    """The counts once, then one small copy per Lloyd iteration: nothing else leaves the device.

    Meta tensors have no values, so `_host_ints` answers for them: the counts the test gave,
    then "one point moved" per video until the third iteration, then none (converged).
    """
    sizes = [3, 40, 1, 17] * 5  # 20 videos: two blocks of VIDEOS_PER_BLOCK
    copies: list[tuple[int, ...]] = []

    def host_ints(tensor: torch.Tensor) -> list[int]:
        assert tensor.device == META
        copies.append(tuple(tensor.shape))
        if len(copies) == 1:
            return list(sizes)
        return [1 if len(copies) < 4 else 0] * tensor.numel()

    monkeypatch.setattr(kmeans, "_host_ints", host_ints)
    points = torch.empty(sum(sizes), 6, device=META)
    counts = torch.tensor(sizes).to(META)
    result = batched_kmeans(points, counts, k=2, max_iter=10, tol=0.0, skip_converged=skip_converged)
    assert {t.device for t in result[:3]} == {META}
    assert result.centres.shape == (20, 2, 6) and result.inertia.shape == (20,)
    assert result.iterations == 3 and len(copies) == 4  # the counts, then one per iteration
