"""`claws score` under torchrun (claws.pipeline.scoring.job): the ranks split the videos, each
scores its share into the same folder, rank 0 alone writes index.jsonl and failures.jsonl, and
the folder equals a one-process run's. The torchrun tests launch real `torchrun --nproc_per_node 2`
(loopback gloo, CPU); raw footage goes through random-weights C3D in fp32 on every rank.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from claws.data.shards import NormStats, VideoInfo
from claws.extract.distributed import Rank
from claws.extract.synthetic import synthetic_frames, write_video
from claws.model.claws import ClawsNet
from claws.pipeline.cli import main
from claws.pipeline.lock import folder_lock
from claws.pipeline.scoring.job import rank_share
from claws.pipeline.training.checkpoint import save_checkpoint

DIM = 2048
RANDOM_C3D = {"random": True, "seed": 0, "weights_sha256": "", "feature_dim": DIM}
C3D = ["--weights", "random", "--precision", "fp32", "--workers", "0"]  # the same C3D on any CPU
# `--`: torchrun's own parser would take `--run` for an abbreviation of its --run-path and stop
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "-m", "claws.pipeline.cli", "--"]


def _info(video_id: str, clips: int) -> VideoInfo:
    return VideoInfo(video_id, Path("shard.h5"), clips * 16, clips, 25.0, 16, "pad", 0, "test",
                     "", "", 0, {})


def test_ranks_split_the_videos_by_clips_each_once():
    videos = [_info(f"v{i}", clips) for i, clips in enumerate([40, 10, 20, 12, 16, 1, 1])]
    for world in (1, 2, 3, 4, 9):
        shares = [rank_share(videos, Rank(r, world)) for r in range(world)]
        ids = [v.video_id for share in shares for v in share]
        assert sorted(ids) == sorted(v.video_id for v in videos)  # each exactly once
        assert shares == [rank_share(list(videos), Rank(r, world)) for r in range(world)]
    # greedy longest first on clips: 40 | 20 16 12, then 10 to the lighter rank 0, 1 and 1 to 1
    two = [[v.video_id for v in rank_share(videos, Rank(r, 2))] for r in range(2)]
    assert two == [["v0", "v1"], ["v2", "v4", "v3", "v5", "v6"]]


@pytest.fixture
def random_c3d_run(tmp_path: Path) -> Path:
    """A checkpoint of a small CLAWS Net over random-weights C3D features (seed 0), b = 2, with
    statistics near those of the synthetic videos' features (raw values 0 to about 200), so that
    the curves vary instead of sitting at 0."""
    torch.manual_seed(0)
    args = {"feature_dim": DIM, "hidden1": 8, "hidden2": 4}
    rng = np.random.default_rng(0)
    stats = NormStats(25 + 5 * rng.random(DIM), 150 + 100 * rng.random(DIM), 2, 20, "train")
    save_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", model=ClawsNet(**args),
                    model_name="claws", model_args=args, config={"window": 2}, norm_stats=stats,
                    feature_meta={"feature_dim": DIM, "clip_len": 16, "extractor": RANDOM_C3D},
                    step=1, seed=0, version="test")
    return tmp_path / "run"


def test_an_explicit_gpu_under_torchrun_is_refused(random_c3d_run, tmp_path, monkeypatch, caplog):
    """As in `claws extract`: every rank would take that one GPU; refused before joining."""
    write_video(tmp_path / "cam.mp4", synthetic_frames(3, 16, 16), fps=8.0)
    for name, value in (("WORLD_SIZE", "2"), ("RANK", "0"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(name, value)
    out = tmp_path / "scores"
    assert main(["score", str(tmp_path / "cam.mp4"), "--run", str(random_c3d_run), *C3D,
                 "--device", "cuda:1", "--out", str(out), "--no-progress"]) == 2
    assert "--device cuda:1 under torchrun" in caplog.text and not out.exists()


def _outputs(out: Path) -> dict[str, Path]:
    """The folder's files by name, the extraction's work folder and the lock aside."""
    return {p.relative_to(out).as_posix(): p for p in out.rglob("*")
            if p.is_file() and not p.relative_to(out).as_posix().startswith(".")}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _close(got: object, want: object, atol: float, where: str) -> None:
    """JSON values equal, their floats to `atol`."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), where
        for key in want:
            _close(got[key], want[key], atol, f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            _close(g, w, atol, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=0, abs=atol), where
    else:
        assert got == want, where


def _same_folders(one: Path, ranks: Path, atol: float) -> None:
    """The two scores folders hold the same files with the same values (curves to `atol`)."""
    a, b = _outputs(one), _outputs(ranks)
    assert sorted(a) == sorted(b)
    for name in a:
        if name.endswith(".npy"):
            np.testing.assert_allclose(np.load(b[name]), np.load(a[name]), rtol=0, atol=atol)
        elif name.endswith(".json"):
            _close(json.loads(b[name].read_text()), json.loads(a[name].read_text()), atol, name)
        elif name.endswith(".jsonl"):
            _close(_rows(b[name]), _rows(a[name]), atol, name)
        elif name.endswith(".csv"):
            np.testing.assert_allclose(np.loadtxt(b[name], delimiter=",", skiprows=1, ndmin=2),
                                       np.loadtxt(a[name], delimiter=",", skiprows=1, ndmin=2),
                                       rtol=0, atol=atol + 1e-6)  # written to 6 decimals
        if atol == 0:  # the same arithmetic: every file the same, bit for bit
            assert b[name].read_bytes() == a[name].read_bytes(), name


def _summary_lines(stdout: str, video_ids: list[str]) -> dict[str, int]:
    """How many per-video summary lines (`<id>: 1.2 s, ...`) each video got over all ranks."""
    return {vid: len(re.findall(rf"^{vid}: [0-9.]+ s, ", stdout, re.M)) for vid in video_ids}


@pytest.mark.slow  # two ranks each build C3D; ~30-60 s on the shared 2-core CPU
def test_torchrun_two_ranks_score_raw_footage_like_one_process(random_c3d_run, tmp_path):
    folder = tmp_path / "cams"
    lengths = {"cam0": 40, "cam1": 12, "cam2": 24, "cam3": 17}  # sizes differ: the split balances
    for i, (vid, n) in enumerate(lengths.items()):
        write_video(folder / f"{vid}.mp4", synthetic_frames(n, 40, 48, seed=i), fps=8.0)
    (folder / "broken.mp4").write_bytes(b"not a video at all")  # fails on one rank only
    common = ["--run", str(random_c3d_run), *C3D, "--no-progress", "--min-duration", "0",
              "--threshold", "0.494"]  # the curves lie about 0.49-0.497: events on some videos
    ranks = tmp_path / "ranks"
    done = subprocess.run([*TORCHRUN, "score", str(folder), "--out", str(ranks), *common],
                          timeout=600, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr[-3000:]  # the broken video
    for rank in (0, 1):  # every rank knows of the failure on the other (its exit code is 1)
        assert re.search(rf"rank {rank} of 2: .*; 1 failed over all ranks", done.stderr)
    assert _summary_lines(done.stdout, [*lengths, "broken"]) == {**dict.fromkeys(lengths, 1),
                                                                 "broken": 0}
    assert re.search(r"rank 1 of 2: scoring [1-9]", done.stderr), done.stderr[-3000:]
    shards = sorted(p.name.split("-")[1] for p in (ranks / ".features" / "shards").glob("*.h5"))
    assert set(shards) == {"r000", "r001"}  # the extraction was split too
    assert [f["video_id"] for f in _rows(ranks / "failures.jsonl")] == ["broken"]
    assert [row["video_id"] for row in _rows(ranks / "index.jsonl")] == sorted(lengths)
    assert not (ranks / ".claws.lock").exists()

    one = tmp_path / "one"
    assert main(["score", str(folder), "--out", str(one), *common]) == 1
    curves = [np.load(one / f"{vid}.npy") for vid in lengths]
    assert max(float(c.max() - c.min()) for c in curves) > 1e-3  # curves that vary, and events:
    assert sum(row["num_events"] for row in _rows(one / "index.jsonl")) > 0  # a real comparison
    _same_folders(one, ranks, atol=1e-5)  # C3D may round with the clips of a call: measured 0


@pytest.mark.slow  # two torchrun launches of two ranks each; ~20-40 s on the shared 2-core CPU
def test_torchrun_two_ranks_split_shards_and_share_the_lock(tiny_run, tiny_shards, tmp_path):
    from .conftest import VIDEOS

    common = ["--run", str(tiny_run), "--shards", str(tiny_shards), "--no-progress"]
    ranks = tmp_path / "ranks"
    done = subprocess.run([*TORCHRUN, "score", "--out", str(ranks), *common],
                          timeout=300, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    ids = [v[0] for v in VIDEOS]
    assert _summary_lines(done.stdout, ids) == dict.fromkeys(ids, 1)
    one = tmp_path / "one"
    assert main(["score", "--out", str(one), *common]) == 0
    _same_folders(one, ranks, atol=0)  # no C3D: the same arithmetic, bit for bit
    # a folder another job holds: both ranks refuse (exit 2), nothing is written
    with folder_lock(tmp_path / "held", "another claws score"):
        done = subprocess.run([*TORCHRUN, "score", "--out", str(tmp_path / "held"), *common],
                              timeout=300, capture_output=True, text=True)
    assert done.returncode != 0 and "in use by another job" in done.stderr, done.stderr[-3000:]
    assert not (tmp_path / "held").exists()  # no rank wrote anything
