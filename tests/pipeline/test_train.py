"""`claws train` end to end on small weak-label shards: errors, learning, run folder, resume."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from claws.model.inference import clip_scores
from claws.pipeline.checkpoint import load_checkpoint
from claws.pipeline.cli import main
from claws.pipeline.config import load_config
from claws.pipeline.train import train
from claws.model.windows import video_windows
from claws.pipeline.train_steps import epoch_clusters
from claws.pipeline.training_data import VideoSet, load_training_data

sys.path.insert(0, str(Path(__file__).parent))  # the fixture module beside this file
from train_fixtures import DIM, write_weak_label_shards  # noqa: E402

SMALL = {"feature_dim": DIM, "hidden1": 32, "hidden2": 8, "window": 16, "lr": 1e-3,
         "log_every": 25, "checkpoint_every": 50}


def _config(tmp_path: Path, shards: Path, preset: str = "claws", **extra):
    return load_config(preset, None, {**SMALL, "shards": str(shards), "runs_dir": str(tmp_path / "runs"),
                                      "name": preset, **extra})


def _metrics(run: Path, kind: str) -> list[dict]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if line["kind"] == kind]


@pytest.mark.parametrize(
    "labels,split,dim,match",
    [([0, 1] * 3, "test", DIM, "no videos with split 'train'"),
     ([0] * 6, "train", DIM, "every training video is normal"),
     ([1] * 6, "train", DIM, "every training video is anomalous"),
     ([0, 1, -1, 0, 1, 0], "train", DIM, "label -1"),
     ([0, 1] * 3, "train", 8, "8-d features but the config expects 16")],
)
def test_errors_before_training(tmp_path: Path, labels, split, dim, match) -> None:
    shards = write_weak_label_shards(tmp_path / "shards", labels=labels, split=split, dim=dim)
    with pytest.raises(ValueError, match=match):
        train(_config(tmp_path, shards, iterations=5))
    assert not list((tmp_path / "runs").rglob("*.pt"))


def test_validation_split_is_stratified_training_videos(tmp_path: Path) -> None:
    shards = write_weak_label_shards(tmp_path / "shards", num_videos=20)
    data = load_training_data(shards, DIM, 16, 0.25, 3, torch.float16, torch.device("cpu"))
    assert data.val is not None and data.train.features.dtype == torch.float16
    assert data.val.labels.tolist().count(1) == 2 and data.val.labels.tolist().count(0) == 2
    assert not set(data.val.video_ids) & set(data.train.video_ids)
    assert data.feature_meta["val_video_ids"] == data.val.video_ids


@pytest.mark.parametrize("preset", ["claws", "bbn", "claws-rbs"])
def test_training_drives_loss_down_and_separates(tmp_path: Path, preset: str) -> None:
    shards = write_weak_label_shards(tmp_path / "shards", num_videos=24)
    run = train(_config(tmp_path, shards, preset, iterations=300, val_fraction=0.25, val_every=150))
    logged = _metrics(run, "train")
    assert logged[-1]["regression"] < logged[0]["regression"]
    assert _metrics(run, "val")[-1]["video_auc"] == 1.0
    ckpt = load_checkpoint(run)
    data = load_training_data(shards, DIM, 16, 0.0, 0, torch.float32, torch.device("cpu"))
    normal = torch.cat([clip_scores(ckpt.model, data.train.video_features(v), 16)
                        for v in range(len(data.train.counts)) if data.train.labels[v] == 0])
    anomalous_top = [clip_scores(ckpt.model, data.train.video_features(v), 16).max()
                     for v in range(len(data.train.counts)) if data.train.labels[v] == 1]
    assert min(anomalous_top) > normal.max()


def test_claws_run_folder_and_clustering_metrics(tmp_path: Path) -> None:
    shards = write_weak_label_shards(tmp_path / "shards", num_videos=12)
    run = train(_config(tmp_path, shards, iterations=60))
    assert {p.name for p in run.iterdir()} >= {"config.yaml", "metrics.jsonl", "train.log", "checkpoints"}
    assert {p.name for p in (run / "checkpoints").iterdir()} == {"last.pt", "step-50.pt", "step-60.pt"}
    train_lines = _metrics(run, "train")
    assert set(train_lines[0]) >= {"regression", "clustering", "smoothness", "sparsity", "total",
                                   "cluster_windows", "cluster_single_cluster", "cluster_clamped", "lr"}
    assert train_lines[0]["clustering"] > 0
    assert _metrics(run, "clustering")[0]["kmeans_iterations"] >= 1
    ckpt = load_checkpoint(run)
    assert ckpt.step == 60 and ckpt.model_name == "claws" and ckpt.config["window"] == 16
    assert ckpt.feature_meta["extractor"]["random"] is True and ckpt.norm_stats.feature_dim == DIM
    with pytest.raises(FileExistsError, match="--resume"):
        train(_config(tmp_path, shards, iterations=60))


@pytest.mark.parametrize("preset", ["claws", "claws-literal", "mil"])
def test_resume_reproduces_uninterrupted_run(tmp_path: Path, preset: str) -> None:
    shards = write_weak_label_shards(tmp_path / "shards", num_videos=10)
    extra = {"windows_per_iteration": 2, "mil_videos_per_class": 3, "checkpoint_every": 35}
    full = train(_config(tmp_path, shards, preset, iterations=90, **extra))
    cut = load_config(preset, None, {**SMALL, **extra, "shards": str(shards), "iterations": 35,
                                     "runs_dir": str(tmp_path / "runs"), "name": "cut"})
    part = train(cut)
    (part / "config.yaml").write_text((part / "config.yaml").read_text().replace("iterations: 35", "iterations: 90"))
    train(load_config(yaml_path=part / "config.yaml"), resume=True)
    a, b = load_checkpoint(full).model.state_dict(), load_checkpoint(part).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the cut run logged a partial interval at its end (35); intervals after 50 are whole in both
    def later(run: Path) -> list[tuple[int, float]]:
        return [(m["step"], m["total"]) for m in _metrics(run, "train") if m["step"] > 50]
    assert later(full) == later(part) and len(later(full)) == 2


def test_cli_mil_run(tmp_path: Path, capsys: pytest.CaptureFixture,
                     caplog: pytest.LogCaptureFixture) -> None:
    shards = write_weak_label_shards(tmp_path / "shards", num_videos=12)
    argv = ["train", "--preset", "mil", "--shards", str(shards), "--runs-dir", str(tmp_path / "runs"),
            "--feature-dim", str(DIM), "--iterations", "40", "--mil-videos-per-class", "4",
            "--log-every", "20"]
    assert main(argv) == 0
    run = tmp_path / "runs" / "mil"
    assert "run folder" in capsys.readouterr().out
    ckpt = load_checkpoint(run)
    assert ckpt.model_name == "mil" and ckpt.step == 40 and ckpt.config["optimizer"] == "adagrad"
    assert set(_metrics(run, "train")[0]) >= {"ranking", "smoothness", "sparsity", "total"}
    # --resume needs no --shards: the run's config.yaml names them
    assert main(["train", "--resume", "--preset", "mil", "--runs-dir", str(tmp_path / "runs"),
                 "--iterations", "60"]) == 0
    assert load_checkpoint(run).step == 60
    assert main(argv + ["--resume", "--lr", "0.1"]) == 2  # bad input: one clear line, exit 2
    assert "cannot change lr" in caplog.text


class _Identity(torch.nn.Module):
    """A stand-in whose representation is its input, to test the epoch's clustering alone."""

    def representation(self, features: torch.Tensor) -> torch.Tensor:
        return features


def _one_video(points: torch.Tensor) -> VideoSet:
    windows = video_windows(len(points), 8)
    return VideoSet(["v"], points, torch.tensor([len(points)]), torch.tensor([0]), torch.tensor([1]),
                    windows.clip_index, windows.valid, torch.zeros(len(windows.valid), dtype=torch.int64),
                    [len(windows.valid)])


def test_epoch_clusters_raw_or_unit_vectors() -> None:
    """Raw 2-means splits these clips by length, 2-means on unit vectors by direction; the
    scale-free distance and its per-cluster sums are those of the unit vectors either way."""
    lengths = torch.tensor([1.0, 1.0, 1.0, 20.0, 20.0, 20.0, 1.0, 20.0])
    directions = torch.tensor([[1.0, 0.0], [0.8, 0.6]])[torch.tensor([0, 0, 1, 0, 1, 1, 0, 1])]
    videos = _one_video(lengths[:, None] * directions)
    raw, figures = epoch_clusters(_Identity(), videos, max_iter=20, seed=0)
    unit, _ = epoch_clusters(_Identity(), videos, max_iter=20, seed=0, on_units=True)
    by_length = (lengths > 5).long()
    by_direction = (directions[:, 1] > 0).long()
    assert raw.assignments.tolist() in (by_length.tolist(), (1 - by_length).tolist())
    assert unit.assignments.tolist() in (by_direction.tolist(), (1 - by_direction).tolist())
    torch.testing.assert_close(unit.units, directions)
    centres = unit.sums / unit.sizes.unsqueeze(2)
    assert (centres[0, 0] - centres[0, 1]).norm().item() == pytest.approx(0.4 ** 0.5)
    assert figures["videos_single_cluster"] == 0 and figures["distance_anomalous"] is not None
    literal, _ = epoch_clusters(_Identity(), videos, max_iter=20, seed=0, scale_free=False)
    assert literal.units is None and literal.sums is None
