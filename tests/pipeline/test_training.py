"""`claws train` end to end on small weak-label shards: errors, learning, run folder, resume."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import pytest
import torch

from claws.model.inference import clip_scores
from claws.pipeline.training.checkpoint import load_checkpoint
from claws.pipeline.cli import main
from claws.pipeline.training.config import load_config
from claws.pipeline.training.loop import train
from claws.model.windows import video_windows
from claws.pipeline.training.steps import epoch_clusters
from claws.pipeline.training.data import VideoSet, load_training_data

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


@pytest.mark.slow
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


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("preset", ["claws", "claws-literal", "mil"])
def test_resume_reproduces_uninterrupted_run(tmp_path: Path, preset: str, device: str) -> None:
    """Bitwise on the same device; on CUDA under deterministic algorithms (issue 22 item 2)."""
    shards = write_weak_label_shards(tmp_path / "shards", num_videos=10)
    extra = {"windows_per_iteration": 2, "mil_videos_per_class": 3, "checkpoint_every": 35,
             "device": device}
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


def test_resume_of_a_finished_run_trains_nothing_and_keeps_its_files(tmp_path: Path, caplog) -> None:
    shards = write_weak_label_shards(tmp_path / "shards", num_videos=6)
    run = train(_config(tmp_path, shards, iterations=20, checkpoint_every=10))
    files = sorted((run / "checkpoints").glob("*.pt")) + [run / "metrics.jsonl"]
    before = [(p.name, p.read_bytes()) for p in files]
    with caplog.at_level(logging.INFO, logger="claws"):
        assert train(load_config(yaml_path=run / "config.yaml"), resume=True) == run
    assert [(p.name, p.read_bytes()) for p in files] == before
    assert "nothing to train" in caplog.text and "step 20 of 20" in caplog.text


class _Killed(Exception):
    """Stands for a kill -9 at a chosen point of the loop."""


@pytest.mark.slow  # three short runs, a checkpoint every other step: ~5-7 s
def test_resume_after_a_kill_logs_exactly_the_lines_of_an_uninterrupted_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An epoch's clustering line is logged with the step of the checkpoint before it; a kill
    after it must not leave it twice in metrics.jsonl once the run is resumed."""
    from claws.pipeline.training.run_dir import RunDir

    shards = write_weak_label_shards(tmp_path / "shards", num_videos=6)
    extra = {"iterations": 14, "log_every": 4, "checkpoint_every": 2, "windows_per_iteration": 4}
    full = train(_config(tmp_path, shards, name="full", **extra))
    write = RunDir.write_metrics

    def killed_after_second_clustering(self, record):
        write(self, record)
        if record["kind"] == "clustering" and record["epoch"] == 1:
            assert record["step"] % extra["checkpoint_every"] == 0  # a checkpoint just before
            raise _Killed  # after the checkpoint of this step, before the epoch's first step

    monkeypatch.setattr(RunDir, "write_metrics", killed_after_second_clustering)
    with pytest.raises(_Killed):
        train(_config(tmp_path, shards, name="cut", **extra))
    monkeypatch.setattr(RunDir, "write_metrics", write)
    cut = tmp_path / "runs" / "cut"
    with (cut / "metrics.jsonl").open("a") as f:
        f.write('{"kind": "train", "st')  # and a line the kill cut short
    train(load_config(yaml_path=cut / "config.yaml"), resume=True)

    def lines(run: Path) -> list[dict]:  # without the timings
        timing = ("iterations_per_s", "representation_s", "kmeans_s")
        return [{k: v for k, v in json.loads(line).items() if k not in timing}
                for line in (run / "metrics.jsonl").read_text().splitlines()]

    assert [m["kind"] for m in lines(full)].count("clustering") == 2  # epochs 0 and 1
    assert lines(cut) == lines(full)


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


def _resume_argv(*extra: str) -> list[str]:
    return ["train", "--resume", "--iterations", "60", *extra]


def test_resume_writes_the_folder_it_names(tmp_path: Path) -> None:
    """A copied run continues in the copy (the original is untouched); a renamed one resumes."""
    import shutil

    shards = write_weak_label_shards(tmp_path / "shards", num_videos=8)
    original = train(_config(tmp_path, shards, iterations=30, checkpoint_every=30))
    before = {p.name: p.read_bytes() for p in (original / "checkpoints").iterdir()}
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(original, copy)
    assert main(_resume_argv("--runs-dir", str(copy.parent), "--name", "copy")) == 0
    assert {p.name: p.read_bytes() for p in (original / "checkpoints").iterdir()} == before
    assert load_checkpoint(copy).step == 60 and (copy / "checkpoints" / "step-60.pt").is_file()
    saved = load_config(yaml_path=copy / "config.yaml")
    assert Path(saved.runs_dir) / saved.name == copy and load_checkpoint(copy).config["name"] == "copy"
    renamed = tmp_path / "renamed"
    original.rename(renamed)
    assert main(["train", "--resume", str(renamed), "--iterations", "45"]) == 0  # RUN_DIR form
    assert load_checkpoint(renamed).step == 45 and not original.exists()


def test_resume_same_shards_by_another_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_weak_label_shards(tmp_path / "shards", num_videos=8)
    run = train(_config(tmp_path, Path("shards"), iterations=30, checkpoint_every=30))
    assert main(_resume_argv("--runs-dir", str(run.parent), "--name", run.name,
                             "--shards", str(tmp_path / "shards"))) == 0  # absolute = relative
    assert load_checkpoint(run).step == 60
    assert main(["train", "--resume", str(run), "--shards", str(tmp_path), "--iterations", "70"]) == 2


def test_resume_from_damaged_last_names_intact_step_checkpoints(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    shards = write_weak_label_shards(tmp_path / "shards", num_videos=8)
    run = train(_config(tmp_path, shards, iterations=60, checkpoint_every=25))
    folder = run / "checkpoints"
    for name in ("last.pt", "step-60.pt"):  # bytes flipped in the middle of the file
        data = bytearray((folder / name).read_bytes())
        for i in range(len(data) // 2, len(data) // 2 + 400, 2):
            data[i] ^= 0xFF
        (folder / name).write_bytes(bytes(data))
    assert main(["train", "--resume", str(run), "--iterations", "70"]) == 2
    message = caplog.records[-1].getMessage()
    assert str(folder / "last.pt") in message and "step-50.pt" in message and "step-25.pt" in message
    assert "step-60.pt" not in message.split("instead")[-1] and "cp " in message
    (folder / "step-50.pt").replace(folder / "last.pt")  # what the message says to do
    assert main(["train", "--resume", str(run), "--iterations", "70"]) == 0
    assert load_checkpoint(run).step == 70


def test_kmeans_skipping_converged_blocks_trains_bitwise_like_the_full_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13: the epoch's k-means skipping converged blocks and videos changes the speed of a
    run, not its results: the same run with the full Lloyd loop (the code before the change) ends
    with bitwise the same weights, optimizer state and metrics, clustering lines included."""
    import functools

    import claws.pipeline.training.steps as steps_module
    from claws.model.kmeans import batched_kmeans

    shards = write_weak_label_shards(tmp_path / "shards", num_videos=40)  # 3 k-means blocks
    extra = {"iterations": 90, "log_every": 10, "windows_per_iteration": 8}
    new = train(_config(tmp_path, shards, name="new", **extra))
    monkeypatch.setattr(steps_module, "batched_kmeans",
                        functools.partial(batched_kmeans, skip_converged=False))
    old = train(_config(tmp_path, shards, name="old", **extra))
    a, b = load_checkpoint(new), load_checkpoint(old)
    assert all(torch.equal(a.model.state_dict()[k], b.model.state_dict()[k]) for k in a.model.state_dict())
    states = a.training_state["optimizer"]["state"], b.training_state["optimizer"]["state"]
    assert all(torch.equal(states[0][i]["square_avg"], states[1][i]["square_avg"]) for i in states[1])
    assert torch.equal(a.training_state["assignments"], b.training_state["assignments"])

    def lines(run: Path) -> list[dict]:
        timing = ("iterations_per_s", "representation_s", "kmeans_s")
        return [{k: v for k, v in json.loads(line).items() if k not in timing}
                for line in (run / "metrics.jsonl").read_text().splitlines()]

    assert lines(new) == lines(old) and [m["kind"] for m in lines(new)].count("clustering") >= 3


def test_cuda_run_turns_deterministic_algorithms_on_before_any_cuda_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 22 item 2: on CUDA, index_add_/cumsum (cluster sums, k-means, MIL segments) are
    repeatable only under torch.use_deterministic_algorithms(True) with CUBLAS_WORKSPACE_CONFIG
    set before cuBLAS starts. No GPU here: the data loading (the run's first CUDA work) is
    replaced by a probe that records the settings and stops the run; the settings are restored."""
    import claws.pipeline.training.loop as training

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    seen = {}

    def probe(*args, **kwargs):
        seen.update(deterministic=torch.are_deterministic_algorithms_enabled(),
                    workspace=os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
        raise RuntimeError("stop: no GPU here")

    monkeypatch.setattr(training, "load_training_data", probe)
    shards = write_weak_label_shards(tmp_path / "shards", num_videos=4)
    with pytest.raises(RuntimeError, match="stop"):
        train(_config(tmp_path, shards, device="cuda"))
    assert seen == {"deterministic": True, "workspace": ":4096:8"}
    assert not torch.are_deterministic_algorithms_enabled()  # restored after the run
    with pytest.raises(RuntimeError, match="stop"):
        train(_config(tmp_path, shards, device="cpu", name="cpu"))
    assert seen["deterministic"] is False  # the CPU is repeatable without it


# --- a full disk at a checkpoint (issue 20 item 9) ------------------------------------------------

def _train_argv(tmp_path: Path, shards: Path, name: str, *extra: str) -> list[str]:
    """`claws train` on the small shards with SMALL's model and a checkpoint every 10 steps."""
    return ["train", "--shards", str(shards), "--runs-dir", str(tmp_path / "runs"), "--name", name,
            "--feature-dim", str(DIM), "--hidden1", "32", "--hidden2", "8", "--window", "16",
            "--lr", "1e-3", "--log-every", "100", "--checkpoint-every", "10", *extra]


def _same_weights(a: Path, b: Path) -> bool:
    x, y = load_checkpoint(a).model.state_dict(), load_checkpoint(b).model.state_dict()
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def _full_disk_at_step(monkeypatch: pytest.MonkeyPatch, step: int, fill) -> None:
    """Call `fill()` just before the checkpoint of `step` is written."""
    from claws.pipeline.training.loop import Trainer

    save = Trainer.save

    def save_on_a_full_disk(self, final=False):
        if self.step == step:
            fill()
        return save(self, final)

    monkeypatch.setattr(Trainer, "save", save_on_a_full_disk)


def _resumes_like_an_uninterrupted_run(tmp_path: Path, shards: Path, run: Path) -> None:
    assert main(_train_argv(tmp_path, shards, "full", "--iterations", "30")) == 0
    assert main(["train", "--resume", str(run), "--iterations", "30"]) == 0
    assert load_checkpoint(run).step == 30
    assert _same_weights(run, tmp_path / "runs" / "full")


def test_a_full_disk_at_a_checkpoint_exits_2_naming_the_folder_and_keeps_last_pt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A write that reports ENOSPC (faked at fsync, as a full disk or quota reports it) while the
    step-20 checkpoint is saved: exit 2 with the folder and the size, last.pt of step 10 intact,
    no temporary left, and the resumed run equals an uninterrupted one."""
    import errno
    import os

    shards = write_weak_label_shards(tmp_path / "shards", num_videos=6)
    full = []
    real_fsync = os.fsync

    def fsync(fd):
        if full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    with monkeypatch.context() as m:
        _full_disk_at_step(m, 20, lambda: full.append(True))
        m.setattr(os, "fsync", fsync)
        assert main(_train_argv(tmp_path, shards, "r", "--iterations", "30")) == 2
    run = tmp_path / "runs" / "r"
    message = caplog.records[-1].getMessage()
    assert f"no space left in {run / 'checkpoints'}" in message and "step-20.pt needs" in message
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt", "step-10.pt"]
    assert load_checkpoint(run).step == 10
    _resumes_like_an_uninterrupted_run(tmp_path, shards, run)


def test_a_real_full_disk_at_a_checkpoint_exits_2_and_resumes(
        tmp_path: Path, tmpfs: Path, fill_disk, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture) -> None:
    """The same on a full tmpfs (root only): torch.save once ended here in a RuntimeError."""
    shards = write_weak_label_shards(tmp_path / "shards", num_videos=6)
    argv = _train_argv(tmp_path, shards, "r", "--iterations", "30", "--runs-dir", str(tmpfs))
    with monkeypatch.context() as m:
        _full_disk_at_step(m, 20, lambda: fill_disk(tmpfs))
        assert main(argv) == 2
    run = tmpfs / "r"
    assert f"no space left in {run / 'checkpoints'}" in caplog.records[-1].getMessage()
    assert "Traceback" not in capsys.readouterr().err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt", "step-10.pt"]
    assert load_checkpoint(run).step == 10
    (tmpfs / "ballast").unlink()
    _resumes_like_an_uninterrupted_run(tmp_path, shards, run)


# --- non-finite training features (issue 20 item 5) -----------------------------------------------

def test_features_that_overflow_float16_are_an_error_naming_the_video(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """7e4 is a finite float32 but beyond float16 (65504): a float16 run once trained on inf
    features without a word (exit 0); now exit 2 before training, naming the video and what to
    do."""
    import numpy as np

    from claws.data.shards import NormStats, VideoRecord, write_shard

    shards = write_weak_label_shards(tmp_path / "shards", num_videos=6)
    big = VideoRecord("video_big", np.full((30, DIM), 7e4, np.float32), 30 * 16, 30.0, 1, "train",
                      extractor={"weights_sha256": "0" * 64, "random": True})
    write_shard(shards / "part-001.h5", [big], NormStats.identity(DIM))
    assert main(_train_argv(tmp_path, shards, "r", "--iterations", "10",
                            "--feature-dtype", "float16")) == 2
    message = caplog.records[-1].getMessage()
    assert "video_big" in message and "float16" in message and "--feature-dtype float32" in message
    assert not list((tmp_path / "runs").rglob("*.pt"))


# --- resume checks its data (issue 20 item 4) ------------------------------------------------------

def _extra_video(shards: Path, name: str = "video_new", label: int = 1, stats=None) -> None:
    """One more training video in a shard file of its own."""
    import numpy as np

    from claws.data.shards import NormStats, VideoRecord, write_shard

    features = np.random.default_rng(7).normal(0.0, 0.3, size=(40, DIM)).astype(np.float32)
    write_shard(shards / f"{name}.h5", [VideoRecord(
        name, features, 40 * 16, 30.0, label, "train",
        extractor={"weights_sha256": "0" * 64, "random": True})], stats or NormStats.identity(DIM))


def _rewritten(shards: Path, scale: float = 1.0, stats=None) -> None:
    """The shards written again with the same videos and clip counts: features x `scale`,
    statistics `stats` (default: as they were)."""
    from claws.data.shards import ShardSet, write_shard

    old = ShardSet(shards)
    records = [old.record(v) for v in old.video_ids]
    for record in records:
        record.features = record.features * scale
    for path in old.files:
        path.unlink()
    write_shard(shards / "part-000.h5", records, stats or old.stats)


def _new_contents(shards: Path) -> str:
    _rewritten(shards, scale=1.1)  # the same ids and clip counts, other features
    return "6 training videos changed contents (video000, video001, video002, video003, video004, ..."


def _added(shards: Path) -> str:
    _extra_video(shards)
    return "1 training video added (video_new)"


def _removed(shards: Path) -> str:
    (shards / "video_new.h5").unlink()
    return "1 training video removed (video_new)"


def _other_stats(shards: Path) -> str:
    import numpy as np

    from claws.data.shards import NormStats

    _rewritten(shards, stats=NormStats(np.full(DIM, 0.5), np.full(DIM, 2.0), 6, 300, "elsewhere"))
    return "other normalization statistics (stats_sha256"


@pytest.mark.parametrize("change", [_new_contents, _added, _removed, _other_stats])
def test_resume_on_other_data_is_refused_naming_what_changed(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, change) -> None:
    """Train on S, change S, --resume: once exit 0 on the new features (or a RuntimeError for an
    added video); now exit 2 before any step, naming what changed, the run untouched."""
    shards = write_weak_label_shards(tmp_path / "shards", num_videos=6)
    if change is _removed:
        _extra_video(shards)
    assert main(_train_argv(tmp_path, shards, "r", "--iterations", "20")) == 0
    run = tmp_path / "runs" / "r"
    before = {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()}
    expected = change(shards)
    assert main(["train", "--resume", str(run), "--iterations", "30"]) == 2
    message = caplog.records[-1].getMessage()
    assert expected in message and "--resume-other-data" in message and str(run) in message
    assert {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()} == before


def test_resume_other_data_continues_loudly_and_records_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Asked for explicitly, a resume on shards with one more video (once a RuntimeError), in
    another folder, goes on from a new epoch, says so in a warning and records it in the
    checkpoint and the metrics."""
    import shutil

    shards = write_weak_label_shards(tmp_path / "shards", num_videos=6)
    assert main(_train_argv(tmp_path, shards, "r", "--iterations", "20")) == 0
    run = tmp_path / "runs" / "r"
    more = tmp_path / "more"
    shutil.copytree(shards, more)
    _extra_video(more)
    resume = ["train", "--resume", str(run), "--iterations", "30", "--shards", str(more)]
    assert main(resume) == 2  # another folder: only with the flag
    with caplog.at_level(logging.WARNING, logger="claws"):
        assert main([*resume, "--resume-other-data"]) == 0
    assert load_config(yaml_path=run / "config.yaml").shards == str(more)
    assert "OTHER DATA" in caplog.text and "1 training video added (video_new)" in caplog.text
    ckpt = load_checkpoint(run)
    assert ckpt.step == 30 and "video_new" in ckpt.feature_meta["training_data"]["videos"]
    [record] = ckpt.feature_meta["resumed_on_other_data"]
    assert record["step"] == 20 and "1 training video added (video_new)" in record["changes"]
    [line] = _metrics(run, "resume_other_data")
    assert line["step"] == 20 and line["changes"] == record["changes"]
    # the same data again needs no flag, and the record is kept
    assert main(["train", "--resume", str(run), "--iterations", "40"]) == 0
    assert load_checkpoint(run).feature_meta["resumed_on_other_data"] == [record]
    with pytest.raises(SystemExit) as usage:  # the flag alone is a usage error
        main(_train_argv(tmp_path, shards, "new", "--resume-other-data"))
    assert usage.value.code == 2


def test_resume_of_a_checkpoint_without_a_data_record_warns_and_continues(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Checkpoints written before the record: the data cannot be checked; said once, then on."""
    from claws.pipeline.training.checkpoint import CHECKSUM, payload_checksum

    shards = write_weak_label_shards(tmp_path / "shards", num_videos=6)
    assert main(_train_argv(tmp_path, shards, "r", "--iterations", "20")) == 0
    run = tmp_path / "runs" / "r"
    last = run / "checkpoints" / "last.pt"
    payload = torch.load(last, weights_only=True)
    del payload["feature_meta"]["training_data"]
    payload[CHECKSUM] = payload_checksum(payload)
    torch.save(payload, last)
    with caplog.at_level(logging.WARNING, logger="claws"):
        assert main(["train", "--resume", str(run), "--iterations", "30"]) == 0
    assert "records no training data" in caplog.text and load_checkpoint(run).step == 30


# --- Ctrl-C and SIGTERM (issue 20 item 7) -----------------------------------------------------------

@pytest.mark.parametrize("signum", [2, 15])  # SIGINT, SIGTERM
def test_an_interrupted_run_saves_its_step_and_resumes_like_an_uninterrupted_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
        signum: int) -> None:
    """A signal during step 13 (checkpoints every 10): once a KeyboardInterrupt traceback (SIGINT)
    or a silent end (SIGTERM) losing steps 11-13; now the step ends, last.pt holds step 13, one
    line says so, exit 128 + signal, and the resumed run equals an uninterrupted one, metrics
    lines included."""
    import os

    from claws.pipeline.training.loop import Trainer

    shards = write_weak_label_shards(tmp_path / "shards", num_videos=6)
    accumulate = Trainer._accumulate

    def signalled_in_step_13(self, terms, guards):
        if self.step == 13:
            os.kill(os.getpid(), signum)
        accumulate(self, terms, guards)

    with monkeypatch.context() as m:
        m.setattr(Trainer, "_accumulate", signalled_in_step_13)
        code = main(_train_argv(tmp_path, shards, "r", "--iterations", "30", "--log-every", "5"))
    assert code == 128 + signum
    run = tmp_path / "runs" / "r"
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (f"interrupted at step 13: checkpoint saved to "
                                            f"{run / 'checkpoints' / 'last.pt'}, rerun with --resume")
    assert "Traceback" not in err
    assert load_checkpoint(run).step == 13
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt", "step-10.pt"]
    assert main(["train", "--resume", str(run), "--iterations", "30"]) == 0
    assert main(_train_argv(tmp_path, shards, "full", "--iterations", "30", "--log-every", "5")) == 0
    assert _same_weights(run, tmp_path / "runs" / "full")

    def lines(folder: Path) -> list[dict]:  # without the timings
        timing = ("iterations_per_s", "representation_s", "kmeans_s")
        return [{k: v for k, v in json.loads(line).items() if k not in timing}
                for line in (folder / "metrics.jsonl").read_text().splitlines()]

    assert lines(run) == lines(tmp_path / "runs" / "full")
