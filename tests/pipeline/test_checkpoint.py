"""Checkpoints: atomic save, load from a file or a run directory, model rebuilt in eval mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from claws.data.shards import NormStats, VideoRecord, write_shard
from claws.model.claws import ClawsNet
from claws.model.mil import MilNet
from claws.pipeline.training.checkpoint import (
    load_checkpoint, resolve_checkpoint, save_checkpoint, stats_from,
)

from .conftest import flip_weights

META = {"feature_dim": 6, "clip_len": 16, "extractor": {"weights_sha256": "ab", "random": True}}


def _save(path: Path, model: torch.nn.Module, name: str, args: dict, step: int) -> Path:
    stats = NormStats(np.arange(6.0), np.full(6, 2.0), 3, 30, "shards")
    return save_checkpoint(
        path, model=model, model_name=name, model_args=args, config={"lr": 1e-4, "name": "x"},
        norm_stats=stats, feature_meta=META, step=step, seed=5,
        training_state={"optimizer": {"lr": 0.1}},
    )


@pytest.mark.parametrize(
    "name,cls,args",
    [("claws", ClawsNet, {"feature_dim": 6, "hidden1": 4, "hidden2": 2, "nsm2": False}),
     ("mil", MilNet, {"feature_dim": 6, "hidden1": 4, "hidden2": 2})],
)
def test_round_trip(tmp_path: Path, name: str, cls: type, args: dict) -> None:
    torch.manual_seed(0)
    model = cls(**args)
    file = _save(tmp_path / "run" / "checkpoints" / "last.pt", model, name, args, step=12)
    ckpt = load_checkpoint(file)
    assert isinstance(ckpt.model, cls) and not ckpt.model.training
    for key, value in model.state_dict().items():
        assert torch.equal(ckpt.model.state_dict()[key], value)
    assert (ckpt.model_name, ckpt.model_args, ckpt.step, ckpt.seed) == (name, args, 12, 5)
    assert ckpt.config == {"lr": 1e-4, "name": "x"} and ckpt.feature_meta == META
    np.testing.assert_array_equal(ckpt.norm_stats.mean, np.arange(6.0))
    assert ckpt.norm_stats.num_clips == 30
    assert ckpt.code_version.startswith("0.1.0")
    assert ckpt.training_state == {"optimizer": {"lr": 0.1}}
    assert not any(p.name.startswith(".") for p in file.parent.iterdir())  # no temp file left


def test_run_directory_gives_latest(tmp_path: Path) -> None:
    args = {"feature_dim": 6, "hidden1": 4, "hidden2": 2}
    folder = tmp_path / "run" / "checkpoints"
    _save(folder / "step-10.pt", ClawsNet(**args), "claws", args, 10)
    _save(folder / "step-200.pt", ClawsNet(**args), "claws", args, 200)
    _save(folder / "step-30.pt", ClawsNet(**args), "claws", args, 30)
    assert resolve_checkpoint(tmp_path / "run").name == "step-200.pt"
    _save(folder / "last.pt", ClawsNet(**args), "claws", args, 250)
    assert load_checkpoint(tmp_path / "run").step == 250
    assert load_checkpoint(folder).step == 250


def test_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such"):
        load_checkpoint(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="claws train"):
        load_checkpoint(tmp_path / "empty")
    torch.save({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a claws checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")


def test_corrupted_checkpoint_is_refused_by_name(tmp_path: Path) -> None:
    args = {"feature_dim": 6, "hidden1": 4, "hidden2": 2}
    model = ClawsNet(**args)
    file = _save(tmp_path / "last.pt", model, "claws", args, step=3)
    flip_weights(file, model)
    with pytest.raises(ValueError, match=r"last\.pt.*damaged"):
        load_checkpoint(file)


def test_checkpoint_without_checksum_loads_unverified(tmp_path: Path, caplog) -> None:
    args = {"feature_dim": 6, "hidden1": 4, "hidden2": 2}
    file = _save(tmp_path / "old.pt", ClawsNet(**args), "claws", args, step=3)
    payload = torch.load(file, weights_only=True)
    payload.pop("payload_sha256")  # as written before checkpoints carried one
    torch.save(payload, file)
    assert load_checkpoint(file).step == 3
    assert "old.pt" in caplog.text and "unverified" in caplog.text


def test_a_save_that_fails_midway_keeps_the_old_checkpoint(tmp_path: Path, monkeypatch) -> None:
    args = {"feature_dim": 6, "hidden1": 4, "hidden2": 2}
    file = _save(tmp_path / "last.pt", ClawsNet(**args), "claws", args, step=3)
    before = file.read_bytes()

    def half_then_fail(payload, target):  # target: the in-memory buffer
        target.write(b"half a checkpoint")
        raise RuntimeError("killed while writing")

    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(RuntimeError, match="killed"):
        _save(file, ClawsNet(**args), "claws", args, step=4)
    assert file.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_stats_from_shards_a_shard_file_or_a_checkpoint(tmp_path: Path) -> None:
    """`--stats-from`: the statistics stored with shards (a folder or one file), or those a
    checkpoint was trained with; `source` says where they were computed."""
    stats = NormStats(np.arange(8.0), np.full(8, 3.0), 1, 2, "")
    shards = tmp_path / "shards"
    record = VideoRecord("x", np.zeros((2, 8), np.float32), 20, 25.0, 0, "train")
    write_shard(shards / "s.h5", [record], stats)
    for source in (shards, shards / "s.h5"):
        loaded = stats_from(source)
        np.testing.assert_array_equal(loaded.range, stats.range)
        assert loaded.num_clips == 2 and loaded.source == str(source)  # none stored: the path
    args = {"feature_dim": 6, "hidden1": 4, "hidden2": 2}
    file = _save(tmp_path / "run" / "checkpoints" / "last.pt", ClawsNet(**args), "claws", args, 1)
    for source in (tmp_path / "run", file):
        loaded = stats_from(source)
        np.testing.assert_array_equal(loaded.mean, np.arange(6.0))
        assert loaded.source == "shards"


def test_stats_from_names_a_source_that_gives_none(tmp_path: Path) -> None:
    args = {"feature_dim": 6, "hidden1": 4, "hidden2": 2}
    model = ClawsNet(**args)
    damaged = _save(tmp_path / "run" / "checkpoints" / "last.pt", model, "claws", args, step=3)
    flip_weights(damaged, model)
    (tmp_path / "junk.h5").write_bytes(b"not a shard")
    (tmp_path / "empty").mkdir()
    for source, cause in ((tmp_path / "run", rf"{damaged}: checkpoint damaged"),
                          (tmp_path / "junk.h5", "not a readable HDF5 file"),
                          (tmp_path / "empty", "no checkpoint found")):
        with pytest.raises(ValueError, match=rf"--stats-from {source} gives no normalization "
                           rf"statistics \(.*{cause}") as err:
            stats_from(source)
        assert "shard folder" in str(err.value)  # what to pass instead
