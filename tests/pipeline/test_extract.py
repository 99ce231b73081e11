"""`claws extract` and `claws shards info` end to end with the real random-weight C3D
(few clips: each costs ~0.1-0.4 s on this CPU), and the 2-process torchrun run."""

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torchvision.io import write_png

from claws.data.shards import ShardSet
from claws.extract.synthetic import synthetic_frames, write_fake_shanghaitech, write_fake_ucf_crime, write_video
from claws.pipeline.cli import main

from .conftest import flip_weights

COMMON = ["--weights", "random", "--workers", "1", "--batch-size", "4", "--no-progress"]


@pytest.mark.slow
def test_ucf_crime_tree_to_shards_and_info(tmp_path, shared_data, capsys):
    train = (shared_data / "ucf_crime" / "Anomaly_Train.txt").read_text().splitlines()
    test = (shared_data / "ucf_crime" / "Temporal_Anomaly_Annotation.txt").read_text().splitlines()
    tr, te = write_fake_ucf_crime(tmp_path / "ucf", [train[0], train[-1]], [next(t for t in test if "  Normal  " in t)], num_frames=12)
    out = tmp_path / "out"
    args = ["extract", "ucf-crime", "--root", str(tmp_path / "ucf"), "--train-list", str(tr),
            "--test-annotation", str(te), "--out", str(out)] + COMMON
    assert main(args) == 0
    shards = ShardSet(out)
    assert shards.video_ids == ["Abuse001_x264", "Normal_Videos_003_x264", "Vandalism050_x264"]
    info = shards.videos["Normal_Videos_003_x264"]
    assert (info.num_frames, info.num_clips, info.fps, info.label, info.split) == (12, 1, 30.0, 0, "test")
    assert info.extractor["random"] is True and info.extractor["feature_dim"] == 2048
    assert shards.stats.num_videos == 2  # training videos only
    assert main(args) == 0  # a rerun does nothing
    capsys.readouterr()
    assert main(["shards", "info", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["totals"]["videos"] == 3 and d["random_weights"] is True
    assert main(["shards", "info", str(out)]) == 0
    assert "RANDOM C3D WEIGHTS" in capsys.readouterr().out


@pytest.mark.slow
def test_shanghaitech_tree_frame_folders(tmp_path):
    tr, te = write_fake_shanghaitech(tmp_path / "sht", ["01_0014", "01_001"], ["01_0015"], 10)
    out = tmp_path / "out"
    assert main(["extract", "shanghaitech", "--root", str(tmp_path / "sht"), "--train-list", str(tr),
                 "--test-list", str(te), "--out", str(out), "--feature-dim", "4096"] + COMMON) == 0
    shards = ShardSet(out)
    assert shards.feature_dim == 4096 and len(shards) == 3
    assert shards.videos["01_0015"].fps == 24.0 and shards.videos["01_0015"].label == 1


def test_corrupt_video_fails_the_exit_code_not_the_job(tmp_path, shared_data):
    folder = tmp_path / "cams"
    folder.mkdir()
    write_video(folder / "good.mp4", synthetic_frames(10, 40, 48))
    (folder / "cut.mp4").write_bytes((shared_data / "videos" / "wannaworktogether.mp4").read_bytes()[:40_000])
    out = tmp_path / "out"
    assert main(["extract", "footage", str(folder), "--split", "train", "--out", str(out)] + COMMON) == 1
    assert ShardSet(out).video_ids == ["good"]
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert failures[0]["video_id"] == "cut" and "unreadable" in failures[0]["reason"]


def test_bad_arguments_fail_before_any_work(tmp_path):
    assert main(["extract", "ucf-crime", "--root", str(tmp_path / "nope"), "--train-list",
                 str(tmp_path / "missing.txt"), "--out", str(tmp_path / "o")] + COMMON) == 2
    assert main(["extract", "footage", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]
                + COMMON) == 2
    assert not (tmp_path / "o").exists()


@pytest.mark.slow  # two ranks each load C3D; ~20-40 s on the shared 2-core CPU
def test_torchrun_two_ranks_cover_every_video_once(tmp_path):
    folder = tmp_path / "cams"
    folder.mkdir()
    lengths = [40, 10, 20, 12, 16]  # sizes differ: the split balances them
    for i, n in enumerate(lengths):
        write_video(folder / f"cam{i}.mp4", synthetic_frames(n, 40, 48, seed=i))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "claws.pipeline.cli", "extract", "footage", str(folder), "--split", "train",
           "--out", str(out), "--weights", "random", "--workers", "0", "--no-progress"]
    subprocess.run(cmd, check=True, timeout=300, capture_output=True)
    shards = ShardSet(out)  # one dataset, one set of statistics
    assert shards.video_ids == [f"cam{i}" for i in range(5)]
    ranks = {f.name.split("-")[1] for f in shards.files}
    assert ranks == {"r000", "r001"}
    assert shards.stats.num_videos == 5 and shards.stats.num_clips == sum(-(-n // 16) for n in lengths)
    # the same videos extracted by one process give the same features
    single = tmp_path / "single"
    assert main(["extract", "footage", str(folder), "--split", "train", "--out", str(single)]
                + COMMON) == 0
    one = ShardSet(single)
    np.testing.assert_allclose(one.stats.mean, shards.stats.mean, rtol=1e-5)
    for vid in one.video_ids:
        np.testing.assert_allclose(one.features(vid), shards.features(vid), atol=1e-4)


def test_test_only_footage_needs_statistics_before_any_work(tmp_path, caplog):
    write_video(tmp_path / "new.mp4", synthetic_frames(12, seed=3), fps=10)
    out = tmp_path / "out"
    args = ["extract", "footage", str(tmp_path / "new.mp4"), "--split", "test", "--out", str(out)]
    assert main(args + COMMON) == 2
    assert "--stats-from" in caplog.text and not out.exists()


def _checkpoint(run, stats, step=1):
    """A real checkpoint of a tiny model in `run`/checkpoints/step-`step`.pt, holding `stats`."""
    from claws.model.claws import ClawsNet
    from claws.pipeline.training.checkpoint import save_checkpoint

    args = {"feature_dim": stats.feature_dim, "hidden1": 4, "hidden2": 2}
    model = ClawsNet(**args)
    file = save_checkpoint(run / "checkpoints" / f"step-{step}.pt", model=model, model_name="claws",
                           model_args=args, config={}, norm_stats=stats,
                           feature_meta={"feature_dim": stats.feature_dim}, step=step, seed=0)
    return file, model


def test_stats_from_a_run_folder_checkpoint(tmp_path):
    """`--stats-from RUN` finds the run's checkpoint as `--run` does (here only a step-N.pt, which
    the reader of extract/ used to miss) and takes the statistics it was trained with."""
    from claws.data.shards import NormStats
    from claws.pipeline.training.checkpoint import stats_from

    stats = NormStats(np.arange(3.0), np.full(3, 2.0), 4, 40, "train shards")
    file, _ = _checkpoint(tmp_path / "run", stats, step=7)
    for source in (tmp_path / "run", tmp_path / "run" / "checkpoints", file):
        loaded = stats_from(source)
        np.testing.assert_array_equal(loaded.mean, stats.mean)
        np.testing.assert_array_equal(loaded.range, stats.range)
        assert (loaded.num_videos, loaded.source) == (4, "train shards")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt: not a readable checkpoint"):
        stats_from(tmp_path / "bad.pt")


def test_stats_from_a_corrupted_checkpoint_is_refused_by_name(tmp_path, caplog):
    """A checkpoint damaged on disk (its checksum no longer matches) gives no statistics: the job
    stops before any work, naming the run and the file."""
    from claws.data.shards import NormStats

    file, model = _checkpoint(tmp_path / "run", NormStats.identity(2048))
    flip_weights(file, model)
    write_video(tmp_path / "new.mp4", synthetic_frames(12, seed=3), fps=10)
    out = tmp_path / "out"
    assert main(["extract", "footage", str(tmp_path / "new.mp4"), "--split", "test",
                 "--stats-from", str(tmp_path / "run"), "--out", str(out)] + COMMON) == 2
    assert f"--stats-from {tmp_path / 'run'} gives no normalization statistics" in caplog.text
    assert f"{file}: checkpoint damaged" in caplog.text and not out.exists()


@pytest.mark.slow  # loads C3D: ~5-10 s on the shared CPU
def test_non_utf8_video_name_is_extracted_under_a_printable_id(tmp_path):
    folder = tmp_path / "cams"
    folder.mkdir()
    odd = os.fsdecode(os.fsencode(folder) + b"/caf\xe9.avi")  # Latin-1: not UTF-8
    write_video(tmp_path / "x.avi", synthetic_frames(20, 40, 48), codec="mpeg4").rename(odd)
    out = tmp_path / "out"
    assert main(["extract", "footage", str(folder), "--split", "train", "--out", str(out)] + COMMON) == 0
    info = ShardSet(out).videos["caf\\xe9"]
    assert info.num_frames == 20 and info.source_path.endswith("/cams/caf\\xe9.avi")


def test_allow_missing_skips_manifest_entries_not_on_disk(tmp_path, caplog):
    from claws.pipeline.cli import build_parser
    from claws.pipeline.commands.extract import dataset_items

    (tmp_path / "here.mp4").write_bytes(b"x")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,split\nhere.mp4,normal,train\ngone.mp4,normal,train\n")
    args = ["extract", "footage", str(manifest), "--out", str(tmp_path / "out")] + COMMON
    assert main(args) == 2
    assert "m.csv:3" in caplog.text and "--allow-missing" in caplog.text
    assert not (tmp_path / "out").exists()
    caplog.clear()
    items = dataset_items(build_parser().parse_args(args + ["--allow-missing"]))
    assert [i.video_id for i in items] == ["here"]
    assert "gone.mp4" in caplog.text and "skipped" in caplog.text


def test_stats_from_is_checked_before_the_first_frame(tmp_path, caplog):
    """Unreadable statistics, or statistics of another feature dim, stop the job before any
    video is decoded (they used to fail after every video, the latter as a numpy broadcast)."""
    from claws.data.shards import NormStats, VideoRecord, write_shard
    from claws.extract.resume import work_files

    write_video(tmp_path / "new.mp4", synthetic_frames(12, seed=3), fps=10)
    narrow = tmp_path / "narrow"
    narrow.mkdir()
    write_shard(narrow / "s.h5", [VideoRecord("x", np.zeros((1, 8), np.float32), 16, 25.0, 0, "train")],
                NormStats.identity(8))
    (tmp_path / "junk.h5").write_bytes(b"not a shard")
    for source, words in ((narrow, "feature dim 8, this job's features have dim 2048"),
                          (tmp_path / "junk.h5", "gives no normalization statistics")):
        out = tmp_path / f"out_{source.stem}"
        caplog.clear()
        assert main(["extract", "footage", str(tmp_path / "new.mp4"), "--split", "test",
                     "--stats-from", str(source), "--out", str(out)] + COMMON) == 2
        assert f"--stats-from {source}" in caplog.text and words in caplog.text
        assert not work_files(out) and not (out / "failures.jsonl").exists()



@pytest.mark.slow  # loads C3D twice: ~10 s on the shared CPU
def test_a_stray_image_and_the_output_folder_are_not_videos(tmp_path, caplog):
    """Issue 20.1: `f/cover.png` beside `f/normal/n.mp4` and `f/anomalous/a.mp4` gave ONE
    1-frame video `f`; `--out f/feats` inside the footage is never read as footage."""
    f = tmp_path / "f"
    write_video(f / "normal" / "n.mp4", synthetic_frames(10, 40, 48, seed=1))
    write_video(f / "anomalous" / "a.mp4", synthetic_frames(12, 40, 48, seed=2))
    write_png(torch.from_numpy(synthetic_frames(1, 40, 48)[0]).permute(2, 0, 1), str(f / "cover.png"))
    caplog.set_level(logging.INFO)
    out = f / "feats"
    args = ["extract", "footage", str(f), "--split", "train", "--out", str(out)] + COMMON
    assert main(args) == 0
    shards = ShardSet(out)
    assert shards.video_ids == ["a", "n"]
    assert {v: shards.videos[v].label for v in shards.video_ids} == {"a": 1, "n": 0}
    assert f"skipped {f}: its 1 image (cover.png)" in caplog.text
    caplog.clear()
    assert main(args) == 0  # the rerun reads neither its shards nor its work folder
    assert ShardSet(out).video_ids == ["a", "n"] and "feats" not in caplog.text.replace(str(out), "")


@pytest.mark.slow  # loads C3D: ~10 s on the shared CPU
def test_every_input_video_ends_in_the_shards_or_the_failure_log(tmp_path, caplog):
    """Issue 20.2: MPEG-TS and 3GP files and a dangling .mp4 link vanished from the job without
    a line. Now they are extracted or failed by name; other files are skipped by name."""
    import av

    folder = tmp_path / "cams"
    write_video(folder / "rec.ts", synthetic_frames(20, 48, 64, seed=1))  # mpegts, H.264
    with av.open(str(folder / "phone.3gp"), "w", format="3gp") as container:
        stream = container.add_stream("h263", rate=15)
        stream.width, stream.height, stream.pix_fmt = 176, 144, "yuv420p"
        for frame in synthetic_frames(18, 144, 176, seed=2):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    (folder / "gone.mp4").symlink_to(tmp_path / "deleted.mp4")
    (folder / "notes.txt").write_text("camera 3 faces north\n")
    caplog.set_level(logging.INFO)
    out = tmp_path / "out"
    assert main(["extract", "footage", str(folder), "--split", "train", "--out", str(out)] + COMMON) == 1
    shards = ShardSet(out)
    assert shards.video_ids == ["phone", "rec"]
    assert (shards.videos["rec"].num_frames, shards.videos["phone"].num_frames) == (20, 18)
    assert shards.videos["phone"].fps == 15.0
    [failure] = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert failure["video_id"] == "gone" and "deleted.mp4, which does not exist" in failure["reason"]
    assert f"skipped {folder / 'notes.txt'}: not a video" in caplog.text


def test_a_video_with_non_finite_features_fails_alone(tmp_path, monkeypatch):
    """Issue 20.5 / 22.5: a non-finite network output (an fp16 overflow) fails that video alone,
    found by the device-side check fetched with the features: failures.jsonl, exit 1 at the end,
    the other video in the shards. C3D is replaced by a cheap fc6 that overflows on black clips."""
    from claws.extract.c3d import C3D

    def forward(self, clips):
        black = (clips.flatten(1) <= -90).all(1, keepdim=True)  # black minus the channel means
        return torch.where(black, float("inf"), 1.0).expand(-1, 4096).clone()

    monkeypatch.setattr(C3D, "forward", forward)
    folder = tmp_path / "cams"
    write_video(folder / "street.mp4", synthetic_frames(20, 40, 48, seed=3))
    write_video(folder / "dark.mp4", np.zeros((20, 40, 48, 3), np.uint8))
    out = tmp_path / "out"
    assert main(["extract", "footage", str(folder), "--split", "train", "--out", str(out)] + COMMON) == 1
    assert ShardSet(out).video_ids == ["street"]
    [failure] = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert failure["video_id"] == "dark" and "non-finite" in failure["reason"]
