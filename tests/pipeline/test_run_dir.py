"""The run folder: preparing it, and cutting metrics.jsonl back to a checkpoint on resume."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from claws.pipeline.training.run_dir import RunDir


def _run(tmp_path: Path, records: list[dict]) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.prepare(resume=False)
    for record in records:
        run.write_metrics(record)
    return run


def test_prepare_refuses_to_overwrite_or_resume_nothing(tmp_path: Path) -> None:
    run = _run(tmp_path, [])
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        run.prepare(resume=True)
    run.last.write_bytes(b"a checkpoint")
    with pytest.raises(FileExistsError, match="--resume"):
        run.prepare(resume=False)
    run.prepare(resume=True)


def test_truncate_metrics_keeps_what_came_before_the_checkpoint(tmp_path: Path) -> None:
    run = _run(tmp_path, [{"kind": "train", "step": 10}, {"kind": "clustering", "step": 20},
                          {"kind": "val", "step": 20}, {"kind": "train", "step": 30}])
    with run.metrics.open("a") as handle:
        handle.write('{"kind": "train", "st')  # cut short by the kill
    run.truncate_metrics(20)
    kept = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    assert kept == [{"kind": "train", "step": 10}, {"kind": "val", "step": 20}]
    assert sorted(p.name for p in run.path.iterdir()) == ["checkpoints", "metrics.jsonl"]


def test_truncate_metrics_that_fails_midway_keeps_the_old_file_and_no_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run(tmp_path, [{"kind": "train", "step": 10}, {"kind": "train", "step": 30}])
    before = run.metrics.read_text()

    def fsync(fd: int) -> None:  # the bytes are in the temporary file, the disk refuses them
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="Input/output error"):
        run.truncate_metrics(20)
    assert run.metrics.read_text() == before
    assert sorted(p.name for p in run.path.iterdir()) == ["checkpoints", "metrics.jsonl"]


def test_a_line_that_is_not_json_is_named(tmp_path: Path) -> None:
    run = _run(tmp_path, [{"kind": "train", "step": 10}])
    with run.metrics.open("a") as handle:
        handle.write("garbage\n")
    with pytest.raises(ValueError, match=r"metrics\.jsonl:2: not a JSON line"):
        run.truncate_metrics(20)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a disk that is always full)")
def test_a_metrics_line_on_a_full_disk_names_the_folder(tmp_path: Path) -> None:
    run = _run(tmp_path, [])
    run.metrics = Path("/dev/full")  # every write there reports ENOSPC
    with pytest.raises(OSError, match=rf"no space left in {run.path} .*writing full needs"):
        run.write_metrics({"kind": "train", "step": 10})
