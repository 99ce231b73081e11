"""One training step's parts: validation figures (video AUC through claws.pipeline.metrics)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from sklearn.metrics import roc_auc_score

from claws.model.claws import ClawsNet
from claws.model.inference import clip_scores
from claws.pipeline.training.config import load_config
from claws.pipeline.training.data import load_training_data
from claws.pipeline.training.steps import validate

sys.path.insert(0, str(Path(__file__).parent))  # the fixture module beside this file
from train_fixtures import DIM, write_weak_label_shards  # noqa: E402


def test_validation_video_auc_is_the_max_clip_score_auc(tmp_path: Path) -> None:
    """video_auc is the AUC of each video's top clip score against its label (our roc_auc, the
    one `claws evaluate` uses; scikit-learn agrees), and the validation losses are reported."""
    shards = write_weak_label_shards(tmp_path / "shards", num_videos=12)
    data = load_training_data(shards, DIM, 16, 0.0, 0, torch.float32, torch.device("cpu"))
    config = load_config("claws", None, {"feature_dim": DIM, "hidden1": 32, "hidden2": 8,
                                         "window": 16, "shards": str(shards)})
    torch.manual_seed(0)
    model = ClawsNet(feature_dim=DIM, hidden1=32, hidden2=8).train()
    figures = validate(model, data.train, config, seed=3)
    assert model.training  # validate restores the mode it found
    with torch.no_grad():
        model.eval()
        top = [clip_scores(model, data.train.video_features(v), 16).max().item()
               for v in range(len(data.train.counts))]
    expected = roc_auc_score(data.train.labels.numpy(), top)
    assert abs(figures["video_auc"] - expected) < 1e-12
    assert any(key.startswith("val_") for key in figures)
