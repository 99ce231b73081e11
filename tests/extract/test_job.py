"""A whole job with the fake network: statistics, shards, resume, adding videos, kill -9, and
phase 2 on its own (which statistics win, a crash between a shard and its cleanup)."""

import json
import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from claws.data.shards import NormStats, ShardSet, normalization_range
from claws.data.videos import VideoItem
from claws.extract.job import JobConfig, run_job, video_key
from claws.extract.resume import work_files, write_work
from claws.extract.synthetic import synthetic_frames, write_video

EXTRACTOR = {"network": "fake", "feature_dim": 48, "random": True, "precision": "fp32"}


def _items(tmp_path, lengths, split="train"):
    items = []
    for i, n in enumerate(lengths):
        path = write_video(tmp_path / f"v{split}{i}.mp4", synthetic_frames(n, 24, 32, seed=i))
        items.append(VideoItem(f"v{split}{i}", path, label=i % 2, split=split))
    return items


def _job(items, out, fake, **kw):
    net = fake.Network()
    config = JobConfig(out=out, workers=0, batch_size=4, shard_size=2, progress=False, **kw)
    return run_job(items, net, fake.frame_means, EXTRACTOR, config), net


def test_statistics_equal_numpy_and_raw_recoverable(tmp_path, fake):
    train = _items(tmp_path, [20, 40, 17])
    test = _items(tmp_path, [33], split="test")
    result, _ = _job(train + test, tmp_path / "out", fake)
    assert result.extracted == 4 and len(result.shards) == 2 and not work_files(tmp_path / "out")
    shards = ShardSet(tmp_path / "out")
    raw = {i.video_id: fake.expected_features(synthetic_frames(n, 24, 32, seed=k))
           for k, (i, n) in enumerate(zip(train, [20, 40, 17]))}
    clips = np.concatenate(list(raw.values()))  # TRAINING clips only
    span = normalization_range(clips.max(0) - clips.min(0))
    np.testing.assert_allclose(shards.stats.mean, clips.mean(0), rtol=1e-6)
    np.testing.assert_allclose(shards.stats.range, span, rtol=1e-6)
    assert shards.stats.num_videos == 3 and shards.stats.num_clips == len(clips)
    for vid, r in raw.items():
        np.testing.assert_allclose(shards.features(vid, raw=True), r, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(shards.features(vid), (r - clips.mean(0)) / span, atol=1e-4)


def test_rerun_does_nothing_and_new_videos_keep_stored_stats(tmp_path, fake):
    out = tmp_path / "out"
    first = _items(tmp_path, [20, 30])
    _job(first, out, fake)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.h5")}
    result, net = _job(first, out, fake)
    assert net.calls == 0 and result.skipped == 2 and result.shards == []
    added = _items(tmp_path, [50], split="test")
    result, net = _job(first + added, out, fake)
    assert result.extracted == 1 and net.clips == 4
    shards = ShardSet(out)  # would raise if the new shard had other statistics
    assert len(shards) == 3
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.h5") if p.name in before} == before


def test_stats_from_earlier_run_and_extractor_mismatch(tmp_path, fake):
    _job(_items(tmp_path, [20, 30]), tmp_path / "a", fake)
    new = _items(tmp_path, [25], split="test")
    _job(new, tmp_path / "b", fake, stats=ShardSet(tmp_path / "a").stats)  # --stats-from a
    a, b = ShardSet(tmp_path / "a"), ShardSet(tmp_path / "b")
    np.testing.assert_array_equal(a.stats.mean, b.stats.mean)
    with pytest.raises(ValueError, match="another extractor"):
        run_job(new, fake.Network(), fake.frame_means, {**EXTRACTOR, "precision": "bf16"},
                JobConfig(out=tmp_path / "b", workers=0, progress=False))


def test_stored_statistics_win_over_given_ones(tmp_path, fake, caplog):
    out = tmp_path / "out"
    _job(_items(tmp_path, [20, 30]), out, fake)
    stored = ShardSet(out).stats
    caplog.set_level(logging.INFO, logger="claws")
    result, _ = _job(_items(tmp_path, [25], split="test"), out, fake, stats=NormStats.identity(48))
    assert result.extracted == 1 and ShardSet(out).stats.source == stored.source
    assert "with its stored statistics" in caplog.text and "normalizing with the statistics" \
        not in caplog.text


def test_a_work_file_already_in_a_shard_is_removed_not_written_again(tmp_path, fake):
    """A crash after a shard was written but before its work files were deleted."""
    out = tmp_path / "out"
    items = _items(tmp_path, [20, 30])
    _job(items, out, fake)
    write_work(out, ShardSet(out).record("vtrain0", raw=True), video_key(items[0], EXTRACTOR))
    assert set(work_files(out)) == {"vtrain0"}
    again, net = _job(items, out, fake)
    assert net.calls == 0 and again.skipped == 2 and again.shards == []
    assert not work_files(out) and not (out / ".work").exists()
    assert ShardSet(out).video_ids == ["vtrain0", "vtrain1"] and len(ShardSet(out).files) == 1


def test_no_training_video_is_a_clear_error(tmp_path, fake):
    with pytest.raises(ValueError, match="no training videos"):
        _job(_items(tmp_path, [20], split="test"), tmp_path / "out", fake)


KILL_SCRIPT = """
import sys, time, numpy as np, torch
from pathlib import Path
from claws.data.videos import VideoItem
from claws.extract.job import JobConfig, run_job
out, log = Path(sys.argv[1]), Path(sys.argv[2])
paths = sorted(Path(sys.argv[3]).glob("*.mp4"))
items = [VideoItem(p.stem, p, 0, "train") for p in paths]
def pre(frames):
    return torch.from_numpy(frames.astype(np.float32).mean(axis=(2, 3)).reshape(len(frames), -1))
def net(clips):
    time.sleep(float(sys.argv[4]))
    return clips * 2 + 1
import claws.extract.job as job
original = job.write_work
def write_work(out, record, key):
    original(out, record, key)
    with open(log, "a") as f:
        f.write(record.video_id + "\\n")
job.write_work = write_work
run_job(items, net, pre, {"network": "fake", "feature_dim": 48}, JobConfig(
    out=out, workers=1, batch_size=2, chunk_clips=1, shard_size=3, progress=False))
"""


@pytest.mark.slow  # three interpreter start-ups with torch: ~15-30 s on the shared 2-core CPU
def test_kill_9_then_resume_equals_uninterrupted(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(6):
        write_video(videos / f"k{i}.mp4", synthetic_frames(48, 24, 32, seed=i))
    script = tmp_path / "job.py"
    script.write_text(KILL_SCRIPT)

    def start(out, log, delay):
        return subprocess.Popen([sys.executable, str(script), str(out), str(log), str(videos),
                                 str(delay)], stderr=subprocess.DEVNULL)

    proc = start(tmp_path / "killed", tmp_path / "log1", 0.2)
    deadline = time.time() + 60
    while not work_files(tmp_path / "killed") and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = set(work_files(tmp_path / "killed"))
    assert 1 <= len(finished_before) < 6 and not list((tmp_path / "killed").glob("*.h5"))
    assert start(tmp_path / "killed", tmp_path / "log2", 0).wait() == 0
    assert start(tmp_path / "clean", tmp_path / "log3", 0).wait() == 0
    recomputed = set((tmp_path / "log2").read_text().split())
    assert recomputed.isdisjoint(finished_before) and len(recomputed) == 6 - len(finished_before)
    killed, clean = ShardSet(tmp_path / "killed"), ShardSet(tmp_path / "clean")
    assert killed.video_ids == clean.video_ids == [f"k{i}" for i in range(6)]
    np.testing.assert_array_equal(killed.stats.mean, clean.stats.mean)
    for vid in clean.video_ids:
        np.testing.assert_array_equal(killed.features(vid), clean.features(vid))


LONG = "night_camera_" + "x" * 237  # a 250-character file stem: + ".npz" fits, + "~tmp..." did not


def test_a_250_character_name_is_extracted_under_its_full_id(tmp_path, fake):
    """Issue 20.3: the work file `.work/<id>.npz` of a 250-character name (its temporary name
    `.<id>.tmp<pid>.npz` longer still) stopped the whole job with [Errno 36] File name too long."""
    items = _items(tmp_path, [20, 18])
    path = write_video(tmp_path / "long.mp4", synthetic_frames(17, 24, 32, seed=5))
    path = path.rename(tmp_path / f"{LONG}.mp4")  # (its temporary name would be too long)
    items.append(VideoItem(LONG, path, label=1, split="train"))
    out = tmp_path / "out"
    result, _ = _job(items, out, fake)
    assert result.failed == [] and result.extracted == 3
    shards = ShardSet(out)
    assert LONG in shards.video_ids and shards.videos[LONG].num_frames == 17
    again, net = _job(items, out, fake)  # the rerun finds it done
    assert net.calls == 0 and again.skipped == 3


def test_a_work_file_that_cannot_be_written_fails_its_video_alone(tmp_path, fake, monkeypatch):
    """A video whose work file cannot be written (a file-system limit, not a full disk) fails
    alone, in failures.jsonl; the other videos finish."""
    import claws.extract.job as job

    write = job.write_work

    def refuse_one(out, record, key):
        if record.video_id == "vtrain1":
            raise OSError(36, "File name too long", str(out / ".work" / "vtrain1.npz"))
        return write(out, record, key)

    monkeypatch.setattr(job, "write_work", refuse_one)
    out = tmp_path / "out"
    result, _ = _job(_items(tmp_path, [20, 18, 17]), out, fake)
    assert [vid for vid, _ in result.failed] == ["vtrain1"] and "File name too long" in result.failed[0][1]
    assert ShardSet(out).video_ids == ["vtrain0", "vtrain2"]
    assert "vtrain1" in (out / "failures.jsonl").read_text()


def test_a_rotated_video_is_extracted_upright_and_its_rotation_recorded(tmp_path, fake):
    """A phone video stored sideways with a display matrix of 90 degrees gives the features of
    the same picture stored upright; the shard records the turn; other videos record 0."""
    import av

    shown = synthetic_frames(20, 32, 24, seed=4)  # as a player shows it: 32 high, 24 wide
    stored = np.rot90(shown, -1, axes=(1, 2))  # what the phone wrote: turned clockwise
    with av.open(str(tmp_path / "phone.mp4"), "w") as container:
        stream = container.add_stream("libx264rgb", rate=25, options={"crf": "0"})
        stream.height, stream.width, stream.pix_fmt = 24, 32, "rgb24"
        stream.set_display_rotation(90)
        for frame in stored:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(
                np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode(None))
    upright = write_video(tmp_path / "upright.mp4", shown)
    items = [VideoItem("phone", tmp_path / "phone.mp4", split="train"),
             VideoItem("upright", upright, split="train")]
    _job(items, tmp_path / "out", fake)
    shards = ShardSet(tmp_path / "out")
    np.testing.assert_array_equal(shards.features("phone", raw=True),
                                  shards.features("upright", raw=True))
    assert (shards.videos["phone"].rotation, shards.videos["phone"].mirrored) == (90, False)
    assert (shards.videos["upright"].rotation, shards.videos["upright"].mirrored) == (0, False)


def test_a_rerun_never_repeats_a_failure(tmp_path, fake):
    """Issue 20 (also noticed): failures.jsonl gained the same lines on every rerun. It holds one
    line per video whose last attempt failed: a rerun replaces the lines of the videos it
    retries, and a video that now succeeds leaves it."""
    items = _items(tmp_path, [20, 18])
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    (tmp_path / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    items += [VideoItem("broken", tmp_path / "broken.mp4", split="train"),
              VideoItem("gone", tmp_path / "gone.mp4", split="train")]
    out = tmp_path / "out"
    log = out / "failures.jsonl"
    for _ in range(3):
        result, _ = _job(items, out, fake)
        assert sorted(vid for vid, _ in result.failed) == ["broken", "gone"]
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        assert sorted(line["video_id"] for line in lines) == ["broken", "gone"]
    write_video(tmp_path / "broken.mp4", synthetic_frames(17, 24, 32, seed=9))  # mended
    (tmp_path / "gone.mp4").unlink()
    result, _ = _job(items[:3], out, fake)
    assert result.failed == [] and "broken" in ShardSet(out).video_ids
    assert [json.loads(line)["video_id"] for line in log.read_text().splitlines()] == ["gone"]
