"""One job per output folder: a second job is refused by name (exit 2), a killed holder's lock is
taken over, and extract, import-features, train and score all take it."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from claws.extract.synthetic import synthetic_frames, write_video
from claws.pipeline.cli import main
from claws.pipeline.lock import LOCK_NAME, FolderLocked, folder_lock

sys.path.insert(0, str(Path(__file__).parent))  # the fixture module beside this file
from train_fixtures import DIM, write_weak_label_shards  # noqa: E402

HOLD = r"""
import os, sys, time
from pathlib import Path
from claws.pipeline.lock import folder_lock
with folder_lock(Path(sys.argv[1]), "claws score"):
    if sys.argv[2] == "fork" and os.fork() == 0:  # a worker that lives on for a while
        os.write(1, b"worker\n")  # running: what it does at fork is done (one atomic write)
        time.sleep(20)
        os._exit(0)
    os.write(1, b"held\n")
    time.sleep(120)
"""


@pytest.fixture
def holder():
    """Start another process holding a folder's lock; yields a function folder -> Popen."""
    started = []

    def hold(folder: Path, fork_worker: bool = False) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(folder), "fork" if fork_worker else "-"],
            stdout=subprocess.PIPE, text=True, start_new_session=True)
        started.append(process)
        expected = {"held", "worker"} if fork_worker else {"held"}
        assert {process.stdout.readline().strip() for _ in expected} == expected
        return process

    yield hold
    for process in started:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # the holder and any worker it forked
        except ProcessLookupError:
            pass
        process.wait()


def test_second_job_is_refused_naming_the_holder(tmp_path: Path, holder) -> None:
    process = holder(tmp_path / "out")
    with pytest.raises(FolderLocked) as refused:
        with folder_lock(tmp_path / "out", "claws score"):
            pass
    message = str(refused.value)
    assert str(tmp_path / "out") in message and f"pid {process.pid}" in message
    assert socket.gethostname() in message and "claws score" in message
    assert "another folder" in message
    assert isinstance(refused.value, OSError)  # the CLI's bad-input path: exit 2


def test_lock_of_a_killed_job_is_taken_over(tmp_path: Path, holder, caplog) -> None:
    process = holder(tmp_path / "out")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert (tmp_path / "out" / LOCK_NAME).is_file()  # left behind by kill -9
    with caplog.at_level(logging.WARNING), folder_lock(tmp_path / "out", "claws extract"):
        assert f"pid {process.pid}" in caplog.text and "taking over" in caplog.text
    assert not (tmp_path / "out" / LOCK_NAME).exists()  # released: the file is gone
    with folder_lock(tmp_path / "out", "claws extract"):  # and taken again at once
        pass


def test_lock_is_released_on_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with folder_lock(tmp_path / "out", "claws train"):
            raise RuntimeError("job failed")
    with folder_lock(tmp_path / "out", "claws train"):
        pass


def test_workers_of_a_killed_job_do_not_keep_the_lock(tmp_path: Path, holder, caplog) -> None:
    """A decoding worker forked while the lock was held outlives its killed parent."""
    process = holder(tmp_path / "out", fork_worker=True)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with caplog.at_level(logging.WARNING), folder_lock(tmp_path / "out", "claws extract"):
        assert "taking over" in caplog.text


def test_every_writing_command_refuses_a_held_folder(tmp_path: Path, holder, caplog, tiny_run,
                                                    tiny_shards) -> None:
    """score, train, extract and import-features: exit 2 naming the holder, nothing written."""
    out = tmp_path / "scores"
    process = holder(out)
    assert main(["score", "--run", str(tiny_run), "--shards", str(tiny_shards), "--out", str(out),
                 "--no-progress"]) == 2
    assert f"pid {process.pid}" in caplog.text and not list(out.glob("*.npy"))

    runs = tmp_path / "runs"
    holder(runs / "claws")
    caplog.clear()
    assert main(["train", "--shards", str(write_weak_label_shards(tmp_path / "train", 4)),
                 "--runs-dir", str(runs), "--feature-dim", str(DIM), "--iterations", "2"]) == 2
    assert "in use by another job" in caplog.text
    assert not (runs / "claws" / "config.yaml").exists()

    (tmp_path / "cams").mkdir()
    write_video(tmp_path / "cams" / "cam.mp4", synthetic_frames(8, 32, 32, seed=0))
    holder(tmp_path / "feats")
    caplog.clear()
    assert main(["extract", "footage", str(tmp_path / "cams"), "--split", "train", "--out",
                 str(tmp_path / "feats"), "--weights", "random", "--workers", "0",
                 "--no-progress"]) == 2
    assert "in use by another job" in caplog.text and not (tmp_path / "feats" / ".work").exists()

    (tmp_path / "npy").mkdir()
    np.save(tmp_path / "npy" / "v1.npy", np.zeros((2, 8), np.float32))
    (tmp_path / "list.csv").write_text("video,label,split\nv1,0,train\n")
    (tmp_path / "counts.csv").write_text("video,num_frames,fps\nv1,32,10\n")
    holder(tmp_path / "imported")
    caplog.clear()
    assert main(["import-features", "manifest", str(tmp_path / "list.csv"), "--features",
                 str(tmp_path / "npy"), "--frame-counts", str(tmp_path / "counts.csv"), "--out",
                 str(tmp_path / "imported"), "--no-progress"]) == 2
    assert "in use by another job" in caplog.text
    assert not list((tmp_path / "imported").glob("*.h5"))


@pytest.mark.slow  # two ranks each load C3D; ~20-60 s on the shared 2-core CPU
def test_torchrun_job_takes_one_lock_and_all_ranks_refuse_a_held_folder(tmp_path: Path, holder):
    (tmp_path / "cams").mkdir()
    for i in range(2):
        write_video(tmp_path / "cams" / f"cam{i}.mp4", synthetic_frames(8, 32, 32, seed=i))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "claws.pipeline.cli", "extract", "footage", str(tmp_path / "cams"), "--split",
               "train", "--out", str(tmp_path / "out"), "--weights", "random", "--workers", "0",
               "--no-progress"]
    process = holder(tmp_path / "out")
    refused = subprocess.run(command, timeout=300, capture_output=True, text=True)
    assert refused.returncode != 0 and f"pid {process.pid}" in refused.stderr
    assert "rank 0 of this job found it in use" in refused.stderr  # rank 1 refuses too, no hang
    assert not (tmp_path / "out" / ".work").exists()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = subprocess.run(command, timeout=300, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "out" / LOCK_NAME).exists()
