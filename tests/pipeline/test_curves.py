"""`claws score` on raw footage: the same curve as scoring the video's shard; frame folders too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from claws.data.shards import NormStats, write_shard
from claws.extract.synthetic import synthetic_frames, write_frame_folder, write_video
from claws.model.claws import ClawsNet
from claws.pipeline.training.checkpoint import payload_checksum, save_checkpoint
from claws.pipeline.cli import main

DIM = 2048  # C3D fc6 pairs, the default feature
RANDOM_C3D = {"random": True, "seed": 0, "weights_sha256": "", "feature_dim": DIM}


@pytest.fixture
def random_feature_run(tmp_path: Path) -> Path:
    """A checkpoint of a small CLAWS Net over random-weights C3D features (seed 0)."""
    torch.manual_seed(0)
    args = {"feature_dim": DIM, "hidden1": 8, "hidden2": 4}
    rng = np.random.default_rng(0)
    stats = NormStats(rng.random(DIM) * 0.1, 0.5 + rng.random(DIM), 2, 20, "train")
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints" / "last.pt", model=ClawsNet(**args), model_name="claws",
                    model_args=args, config={"window": 64}, norm_stats=stats,
                    feature_meta={"feature_dim": DIM, "clip_len": 16, "extractor": RANDOM_C3D},
                    step=1, seed=0, version="test")
    return run


@pytest.mark.slow
def test_raw_footage_equals_its_shard(random_feature_run, tmp_path):
    video = tmp_path / "footage" / "cam.mp4"
    video.parent.mkdir()
    write_video(video, synthetic_frames(17, seed=3, event=(4, 12)), fps=8.0)
    # the shard: extracted on its own, normalized with statistics other than the checkpoint's
    other = NormStats(np.full(DIM, 0.3), np.full(DIM, 4.0), 5, 50, "another run")
    write_shard(tmp_path / "other-stats.h5", [], other)
    assert main(["extract", "footage", str(video), "--weights", "random", "--split", "test",
                 "--stats-from", str(tmp_path / "other-stats.h5"), "--out", str(tmp_path / "sh"),
                 "--workers", "0", "--no-progress"]) == 0
    common = ["--run", str(random_feature_run), "--no-progress"]
    assert main(["score", "--shards", str(tmp_path / "sh"), "--out", str(tmp_path / "a"),
                 *common]) == 0
    assert main(["score", str(video.parent), "--weights", "random", "--workers", "0",
                 "--out", str(tmp_path / "b"), *common]) == 0
    from_shard, from_raw = (np.load(tmp_path / d / "cam.npy") for d in "ab")
    assert from_raw.shape == (17,)
    np.testing.assert_allclose(from_raw, from_shard, atol=1e-5)
    info = json.loads((tmp_path / "b" / "cam.events.json").read_text())
    assert info["fps"] == 8.0 and info["source"].endswith("cam.mp4") and info["random_features"]
    # rerun: extraction and scoring both resume, nothing recomputed
    before = (tmp_path / "b" / "cam.npy").stat().st_mtime_ns
    assert main(["score", str(video.parent), "--weights", "random", "--workers", "0",
                 "--out", str(tmp_path / "b"), *common]) == 0
    assert (tmp_path / "b" / "cam.npy").stat().st_mtime_ns == before


@pytest.mark.slow
def test_frame_folder_and_failures(random_feature_run, tmp_path, caplog):
    footage = tmp_path / "footage"
    write_frame_folder(footage / "door", synthetic_frames(5, seed=1))
    (footage / "broken.mp4").write_bytes(b"not a video at all")
    out = tmp_path / "scores"
    code = main(["score", str(footage), "--run", str(random_feature_run), "--weights", "random",
                 "--fps", "5", "--workers", "0", "--out", str(out), "--no-progress"])
    assert code == 1
    assert json.loads((out / "door.events.json").read_text())["fps"] == 5.0
    assert np.load(out / "door.npy").shape == (5,)
    failures = [json.loads(x) for x in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["video_id"] for f in failures] == ["broken"]
    assert failures[0]["reason"].startswith("extraction:")


def test_weights_must_be_known(random_feature_run, tmp_path, caplog):
    """A run trained on real features whose weights file is gone needs --weights."""
    ckpt = torch.load(random_feature_run / "checkpoints" / "last.pt", weights_only=True)
    ckpt["feature_meta"]["extractor"] = {**RANDOM_C3D, "random": False,
                                         "weights_path": str(tmp_path / "gone.pickle")}
    ckpt["payload_sha256"] = payload_checksum(ckpt)  # edited on purpose: checksum it again
    torch.save(ckpt, tmp_path / "real.pt")
    video = tmp_path / "cam.mp4"
    write_video(video, synthetic_frames(3, seed=1), fps=8.0)
    assert main(["score", str(video), "--run", str(tmp_path / "real.pt"),
                 "--out", str(tmp_path / "s"), "--no-progress"]) == 2
    assert "gone.pickle" in caplog.text and "pass --weights" in caplog.text


@pytest.mark.slow
def test_scores_written_into_the_input_folder_are_not_read_as_footage(random_feature_run, tmp_path):
    """Issue 20.1: `claws score D --out D` scored its own plot PNGs (D became a frame folder) and
    its review previews (review/previews/cam.mp4, a second `cam`) on the next run."""
    folder = tmp_path / "D"
    write_video(folder / "cam.mp4", synthetic_frames(17, seed=3), fps=8.0)
    argv = ["score", str(folder), "--run", str(random_feature_run), "--weights", "random",
            "--workers", "0", "--out", str(folder), "--no-progress", "--review"]
    assert main(argv) == 0
    assert (folder / "cam.png").is_file() and list((folder / "review").rglob("*.mp4"))
    curve = np.load(folder / "cam.npy")
    assert main(argv) == 0
    index = [json.loads(line) for line in (folder / "index.jsonl").read_text().splitlines()]
    assert [row["video_id"] for row in index] == ["cam"]
    np.testing.assert_array_equal(np.load(folder / "cam.npy"), curve)


@pytest.mark.slow
def test_raw_footage_with_a_250_character_name(random_feature_run, tmp_path):
    """Issue 20.3: extraction's work file and then the scores of a 250-character name exceeded
    the 255 bytes a file name may have, and the whole run stopped with exit 2."""
    from claws.data.videos import file_stem

    long_id = "entrance_" + "w" * 241
    folder = tmp_path / "footage"
    write_video(folder / "short.mp4", synthetic_frames(17, seed=3), fps=8.0)
    (folder / "short.mp4").rename(folder / f"{long_id}.mp4")
    write_video(folder / "cam.mp4", synthetic_frames(9, seed=4), fps=8.0)
    out = tmp_path / "scores"
    assert main(["score", str(folder), "--run", str(random_feature_run), "--weights", "random",
                 "--workers", "0", "--out", str(out), "--no-progress"]) == 0
    index = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert [row["video_id"] for row in index] == ["cam", long_id]
    assert np.load(out / f"{file_stem(long_id)}.npy").shape == (17,)
