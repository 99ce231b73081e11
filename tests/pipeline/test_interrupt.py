"""Ctrl-C and SIGTERM (claws.pipeline.interrupt): the handler's rules in process, and `claws
extract` with decoding workers in its own process group, signalled as a terminal does it.

The training and scoring cases (checkpoint saved on the way out, resumed runs equal to
uninterrupted ones) are in test_training.py and test_scoring.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from claws.data.shards import ShardSet
from claws.extract.synthetic import synthetic_frames, write_video
from claws.pipeline.interrupt import Interrupted, deferred_interrupts, interrupt_handling


def test_a_signal_raises_interrupted_with_its_exit_code_and_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    for signum in (signal.SIGINT, signal.SIGTERM):
        with pytest.raises(Interrupted) as caught, interrupt_handling() as outermost:
            assert outermost
            os.kill(os.getpid(), signum)
        assert caught.value.signum == signum and caught.value.exit_code == 128 + signum
        assert isinstance(caught.value, KeyboardInterrupt)  # what DataLoader workers swallow
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_deferred_records_the_first_signal_and_raises_on_the_second() -> None:
    with interrupt_handling(), deferred_interrupts() as pending:
        assert pending.signum is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert pending.signum == signal.SIGTERM  # recorded, not raised: the work goes on
        with pytest.raises(Interrupted) as caught:
            os.kill(os.getpid(), signal.SIGINT)
    assert caught.value.signum == signal.SIGINT


def test_deferred_alone_installs_its_handler_and_the_summary_travels() -> None:
    with pytest.raises(Interrupted) as caught, deferred_interrupts() as pending:
        os.kill(os.getpid(), signal.SIGINT)
        raise pending.interrupted("interrupted at step 3: saved")
    assert caught.value.summary == "interrupted at step 3: saved" and caught.value.exit_code == 130


def test_an_ignored_signal_stays_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `nohup` or `cmd &` start one
    try:
        with interrupt_handling():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, previous)


SCRIPT = """
import os, sys
import claws.extract.job as job
from claws.pipeline.cli import main
signum = int(sys.argv[1])
if signum:
    write = job.write_work
    def write_then_signal(out, record, key):
        path = write(out, record, key)
        os.killpg(0, signum)  # the whole process group, as a terminal's Ctrl-C: workers too
        return path
    job.write_work = write_then_signal
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("footage")
    for i in range(2):  # one clip each: C3D's time, not the videos', is what the test waits for
        write_video(folder / f"cam{i}.mp4", synthetic_frames(16, 32, 40, seed=i))
    (folder / "job.py").write_text(SCRIPT)
    return folder


def _extract(footage: Path, out: Path, signum: int = 0) -> subprocess.CompletedProcess:
    """`claws extract` in a session of its own (its decoding worker in the same process group),
    signalled with `signum` by the whole group right after its first finished video."""
    argv = ["extract", "footage", str(footage), "--out", str(out), "--split", "train",
            "--weights", "random", "--seed", "0", "--precision", "fp32", "--workers", "1",
            "--batch-size", "1", "--no-progress"]
    return subprocess.run([sys.executable, str(footage / "job.py"), str(signum), *argv],
                          capture_output=True, text=True, timeout=600, start_new_session=True)


@pytest.fixture(scope="module")
def reference(footage: Path, tmp_path_factory: pytest.TempPathFactory) -> ShardSet:
    """The shards of an uninterrupted extraction."""
    out = tmp_path_factory.mktemp("reference") / "out"
    assert _extract(footage, out).returncode == 0
    return ShardSet(out)


@pytest.mark.slow  # five interpreter start-ups with torch and C3D: 1-4 min on the shared 2-core CPU
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_extraction_with_workers_says_one_line_and_resumes(
        footage: Path, reference: ShardSet, tmp_path: Path, signum: int) -> None:
    """Once: SIGINT gave a KeyboardInterrupt traceback (exit 130), SIGTERM ended without a word.
    Now both say one line naming what is kept, no traceback from the job or its worker, exit 130
    or 143, and the rerun gives the features of an uninterrupted run."""
    out = tmp_path / "out"
    stopped = _extract(footage, out, signum)
    assert stopped.returncode == 128 + signum, stopped.stderr[-3000:]
    assert stopped.stderr.strip().splitlines()[-1] == (
        f"interrupted: 1 video done in {out}, rerun the same command to resume")
    assert "Traceback" not in stopped.stderr and "Error" not in stopped.stderr
    assert _extract(footage, out).returncode == 0
    resumed = ShardSet(out)
    assert resumed.video_ids == reference.video_ids == ["cam0", "cam1"]
    for vid in reference.video_ids:
        np.testing.assert_array_equal(resumed.features(vid, raw=True),
                                      reference.features(vid, raw=True))
