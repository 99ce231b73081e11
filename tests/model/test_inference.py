"""Whole-video scoring: the training windows, padded positions dropped, alone == in a batch."""

from __future__ import annotations

import pytest
import torch

from claws.model.claws import ClawsNet
from claws.model.inference import clip_scores
from claws.model.mil import MilNet, clip_segments, segment_features
from claws.model.windows import video_windows


@pytest.mark.parametrize("clips", [1, 5, 64, 65, 130])
def test_claws_scores_equal_windowed_forward(clips: int) -> None:
    torch.manual_seed(0)
    model = ClawsNet(feature_dim=20, hidden1=8, hidden2=4)
    features = torch.randn(clips, 20)
    scores = clip_scores(model, features, window=64)
    assert scores.shape == (clips,)
    assert not model.training
    w = video_windows(clips, 64)
    for k in range(len(w.clip_index)):
        expected = model(features[w.clip_index[k]].unsqueeze(0)).scores[0][w.valid[k]]
        torch.testing.assert_close(scores[k * 64 : k * 64 + len(expected)], expected)


def test_window_size_matters() -> None:
    torch.manual_seed(0)
    model = ClawsNet(feature_dim=20, hidden1=8, hidden2=4)
    features = torch.randn(100, 20)
    assert not torch.allclose(clip_scores(model, features, 64), clip_scores(model, features, 32))


def test_float16_features_are_accepted() -> None:
    torch.manual_seed(0)
    model = ClawsNet(feature_dim=20, hidden1=8, hidden2=4)
    features = torch.randn(70, 20)
    torch.testing.assert_close(
        clip_scores(model, features.half(), 64),
        clip_scores(model, features.half().float(), 64),
    )


@pytest.mark.parametrize("clips", [1, 10, 32, 33, 100])
def test_mil_clip_gets_its_segment_score(clips: int) -> None:
    torch.manual_seed(0)
    model = MilNet(feature_dim=20, hidden1=8, hidden2=4)
    features = torch.randn(clips, 20)
    scores = clip_scores(model, features)
    segment_scores = model(segment_features(features).unsqueeze(0)).scores[0]
    torch.testing.assert_close(scores, segment_scores[clip_segments(clips)])


def test_rejects_other_models_and_shapes() -> None:
    with pytest.raises(TypeError, match="ClawsNet or MilNet"):
        clip_scores(torch.nn.Linear(3, 1), torch.randn(4, 3))
    with pytest.raises(ValueError, match="clip features"):
        clip_scores(ClawsNet(feature_dim=3), torch.randn(0, 3))
