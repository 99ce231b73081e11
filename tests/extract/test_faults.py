"""Faults of an extraction job (issue 9): resume keyed by what made each work file, video ids that
look like temporary files, a full disk, and settings that can only fail late unless checked first.

The fake network of conftest.py keeps these at milliseconds; the real-tmpfs case runs a short
script in a subprocess, because a full disk under h5py could take the interpreter down with it.
"""

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import claws.extract.job as job
from claws.data.shards import NormStats, ShardSet, VideoRecord, write_shard
from claws.data.videos import VideoItem
from claws.extract.job import JobConfig, run_job
from claws.extract.resume import work_files
from claws.extract.synthetic import synthetic_frames, write_video

EXTRACTOR = {"network": "fake", "feature_dim": 48, "random": True, "precision": "fp32"}


def _videos(folder: Path, lengths: dict[str, int], seed: int = 0, split: str = "train"):
    """Videos named by the keys of `lengths` in `folder`, and their frames."""
    folder.mkdir(parents=True, exist_ok=True)
    items, frames = [], {}
    for k, (vid, n) in enumerate(lengths.items()):
        frames[vid] = synthetic_frames(n, 24, 32, seed=seed + k)
        path = write_video(folder / f"{vid}.mp4", frames[vid])
        items.append(VideoItem(vid, path, label=k % 2, split=split))
    return items, frames


def _job(items, out, fake, net=None, **kw):
    net = net or fake.Network()
    config = JobConfig(out=out, workers=0, batch_size=4, shard_size=2, progress=False, **kw)
    return run_job(items, net, fake.frame_means, EXTRACTOR, config), net


def _extract_only(items, out, fake, monkeypatch):
    """Phase 1 alone: the work files of `items`, as a job killed before its shards leaves them."""
    with monkeypatch.context() as m:
        m.setattr(job, "finish_job", lambda *args, **kwargs: [])
        _job(items, out, fake)
    assert set(work_files(out)) == {i.video_id for i in items}


def _assert_raw(shards: ShardSet, frames: dict, fake) -> None:
    for vid, f in frames.items():
        np.testing.assert_allclose(shards.features(vid, raw=True), fake.expected_features(f),
                                   rtol=1e-5, atol=1e-3)


# --- item 2: a work file is reused only for the video that produced it -----------------------

@pytest.mark.parametrize("change", ["moved", "rewritten"])
def test_a_work_file_of_another_source_is_extracted_again(tmp_path, fake, monkeypatch, caplog, change):
    out = tmp_path / "out"
    old, _ = _videos(tmp_path / "a", {"cam": 20, "other": 30})
    _extract_only(old, out, fake, monkeypatch)
    folder = tmp_path / ("b" if change == "moved" else "a")
    new, frames = _videos(folder, {"cam": 40, "other": 30}, seed=7)  # same ids, other footage
    result, net = _job(new, out, fake)
    assert result.extracted == 2 and result.skipped == 0 and net.clips == 3 + 2
    _assert_raw(ShardSet(out), frames, fake)
    assert "cam: its work file was made from" in caplog.text and "extracting it again" in caplog.text


def test_work_files_of_videos_not_in_the_job_stay_out_of_shards_and_statistics(
        tmp_path, fake, monkeypatch, caplog):
    out = tmp_path / "out"
    items, frames = _videos(tmp_path / "a", {"cam0": 20, "cam1": 30, "cam2": 40})
    _extract_only(items, out, fake, monkeypatch)
    result, net = _job(items[:1], out, fake)
    assert net.calls == 0 and result.skipped == 1
    shards = ShardSet(out)
    assert shards.video_ids == ["cam0"]
    assert (shards.stats.num_videos, shards.stats.num_clips) == (1, 2)
    np.testing.assert_allclose(shards.stats.mean, fake.expected_features(frames["cam0"]).mean(0),
                               rtol=1e-5)
    assert set(work_files(out)) == {"cam1", "cam2"}  # left alone, and reported
    assert "2 work files" in caplog.text and "cam1, cam2" in caplog.text


def test_a_finished_video_of_another_source_is_refused(tmp_path, fake):
    out = tmp_path / "out"
    first, _ = _videos(tmp_path / "a", {"cam": 20})
    _job(first, out, fake)
    elsewhere, _ = _videos(tmp_path / "b", {"cam": 33}, seed=3)
    with pytest.raises(ValueError, match=r"cam.*shard-r000-00000\.h5.*new output directory") as err:
        _job(elsewhere, out, fake)
    assert str(tmp_path / "a" / "cam.mp4") in str(err.value)
    assert str(tmp_path / "b" / "cam.mp4") in str(err.value)
    result, net = _job(first, out, fake)  # the same footage still resumes
    assert net.calls == 0 and result.skipped == 1


# --- item 3: temporary files live where no video id can reach -------------------------------

def test_a_video_whose_id_starts_with_a_dot_is_extracted_once(tmp_path, fake):
    out = tmp_path / "out"
    items, frames = _videos(tmp_path / "a", {".hidden": 20, "plain": 17, ".tmp": 16})
    result, _ = _job(items, out, fake)
    assert result.extracted == 3 and not result.failed
    shards = ShardSet(out)
    assert shards.video_ids == [".hidden", ".tmp", "plain"]
    _assert_raw(shards, frames, fake)
    result, net = _job(items, out, fake)
    assert net.calls == 0 and result.skipped == 3 and not (out / ".work").exists()


def test_a_video_whose_id_cannot_name_a_shard_group_fails_alone(tmp_path, fake):
    """`..mp4` has the id '.', which no HDF5 group can have: it is failed before any work,
    instead of failing the shard write after every video."""
    out = tmp_path / "out"
    items, frames = _videos(tmp_path / "a", {".": 20, "plain": 17})
    result, net = _job(items, out, fake)
    assert [vid for vid, _ in result.failed] == ["."] and "rename" in result.failed[0][1]
    assert result.extracted == 1 and net.clips == 2
    assert ShardSet(out).video_ids == ["plain"]


def test_a_temporary_file_left_by_a_crash_is_not_taken_as_done(tmp_path, fake):
    out = tmp_path / "out"
    items, frames = _videos(tmp_path / "a", {"cam": 20})
    (out / ".work" / "tmp").mkdir(parents=True)
    (out / ".work" / "tmp" / "cam.npz").write_bytes(b"half a work file")
    result, _ = _job(items, out, fake)
    assert result.extracted == 1
    _assert_raw(ShardSet(out), frames, fake)
    assert not (out / ".work").exists()


# --- item 4: out of space is a clean error, and a rerun finishes ----------------------------

def _fail_fsync(monkeypatch, when) -> None:
    """os.fsync raises ENOSPC whenever `when()` is true (what a full disk or quota reports)."""
    real = os.fsync

    def fsync(fd):
        if when():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def _no_temporary_files(out: Path) -> None:
    names = [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()]
    assert all(n.endswith(".h5") or (n.startswith(".work/") and n.count("/") == 1 and
                                     n.endswith(".npz")) for n in names), names


@pytest.mark.parametrize("errno_code", [errno.ENOSPC, errno.EDQUOT])
def test_disk_full_while_writing_a_work_file(tmp_path, fake, monkeypatch, errno_code):
    out = tmp_path / "out"
    items, frames = _videos(tmp_path / "a", {"cam0": 20, "cam1": 30, "cam2": 17})
    calls = []
    real = os.fsync

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno_code, os.strerror(errno_code))
        return real(fd)

    with monkeypatch.context() as m:
        m.setattr(os, "fsync", fsync)
        with pytest.raises(OSError, match=r"no space left in .*out.*needs .*free") as err:
            _job(items, out, fake)
    assert "rerun" in str(err.value)
    assert len(work_files(out)) == 1 and not list(out.glob("*.h5"))
    _no_temporary_files(out)
    result, net = _job(items, out, fake)  # space freed: the rerun finishes the other two
    assert result.extracted == 2 and result.skipped == 1
    _assert_raw(ShardSet(out), frames, fake)


def test_disk_full_while_writing_a_shard(tmp_path, fake, monkeypatch):
    out = tmp_path / "out"
    items, frames = _videos(tmp_path / "a", {"cam0": 20, "cam1": 30, "cam2": 17})
    in_shards = []
    real_finalize = job.finish_job

    def finalize(*args, **kwargs):
        in_shards.append(True)
        return real_finalize(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(job, "finish_job", finalize)
        _fail_fsync(m, lambda: bool(in_shards))
        with pytest.raises(OSError, match=r"no space left in .*out.*shard-r000-00000\.h5 needs"):
            _job(items, out, fake)
    assert not list(out.glob("*.h5")) and len(work_files(out)) == 3
    _no_temporary_files(out)
    result, net = _job(items, out, fake)
    assert net.calls == 0 and result.skipped == 3 and len(result.shards) == 2
    _assert_raw(ShardSet(out), frames, fake)


TMPFS_SCRIPT = """
import os, sys, numpy as np, torch
from pathlib import Path
import claws.extract.job as job
from claws.data.videos import VideoItem
out, videos, ballast = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
items = [VideoItem(p.stem, p, 0, "train") for p in sorted(videos.glob("*.mp4"))]
def pre(frames):
    return torch.from_numpy(frames.astype(np.float32).mean(axis=(2, 3)).reshape(len(frames), -1))
real = job.finish_job
def finalize(*args):  # fill the disk between the work files and the shards
    if sys.argv[4] == "fill":
        with open(ballast, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\\0" * 4096)
            except OSError:
                pass
    return real(*args)
job.finish_job = finalize
try:
    job.run_job(items, lambda clips: clips * 2 + 1, pre, {"network": "fake", "feature_dim": 48},
                job.JobConfig(out=out, workers=0, batch_size=4, shard_size=8, progress=False))
except OSError as err:  # what `claws` does with it: the message, exit 2
    print(err)
    sys.exit(2)
"""


@pytest.mark.slow  # two interpreter start-ups with torch: ~10-20 s on the shared 2-core CPU
def test_a_real_full_disk_during_the_shard_write_exits_2_then_resumes(tmp_path, tmpfs):
    items, _ = _videos(tmp_path / "videos", {"cam0": 20, "cam1": 36})
    script = tmp_path / "job.py"
    script.write_text(TMPFS_SCRIPT)
    out, ballast = tmpfs / "out", tmpfs / "ballast"

    def run(mode):
        return subprocess.run([sys.executable, str(script), str(out), str(tmp_path / "videos"),
                               str(ballast), mode], capture_output=True, text=True, timeout=120)

    full = run("fill")
    assert full.returncode == 2, full.stderr[-2000:]
    assert "no space left in" in full.stdout and str(out) in full.stdout and "needs" in full.stdout
    assert not list(out.glob("*.h5")) and len(work_files(out)) == 2
    _no_temporary_files(out)
    ballast.unlink()
    freed = run("free")
    assert freed.returncode == 0, freed.stderr[-2000:]
    assert ShardSet(out).video_ids == ["cam0", "cam1"]


# --- item 7: settings that can be checked are checked before the first frame ----------------

def test_stats_from_of_another_feature_dim_fails_before_any_work(tmp_path, fake):
    stats_dir = tmp_path / "stats"
    stats_dir.mkdir()
    feats = np.zeros((2, 8), np.float32)
    write_shard(stats_dir / "s.h5", [VideoRecord("x", feats, 20, 25.0, 0, "train")],
                NormStats.identity(8))
    items, _ = _videos(tmp_path / "a", {"cam": 20}, split="test")
    net = fake.Network()
    with pytest.raises(ValueError, match=rf"{re.escape(str(stats_dir))}.*feature dim 8.*48") as err:
        _job(items, tmp_path / "out", fake, net=net, stats=ShardSet(stats_dir).stats,
             stats_origin=f"--stats-from {stats_dir}")
    assert "--stats-from" in str(err.value)
    assert net.calls == 0 and not work_files(tmp_path / "out")


def test_an_output_folder_that_cannot_be_written_fails_before_any_work(tmp_path, tmpfs, fake):
    items, _ = _videos(tmp_path / "a", {"cam": 20})
    out = tmpfs / "out"
    out.mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    net = fake.Network()
    with pytest.raises(OSError, match=rf"output folder {re.escape(str(out))} is not writable.*--out"):
        _job(items, out, fake, net=net)
    assert net.calls == 0
