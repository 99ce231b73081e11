"""Fixtures for the scoring and evaluation tests: a tiny trained-looking run and its shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from claws.data.clips import num_clips
from claws.data.shards import NormStats, VideoRecord, write_shard
from claws.model.claws import ClawsNet
from claws.pipeline.training.checkpoint import save_checkpoint

FEATURE_DIM = 8
WINDOW = 4  # clips per scoring window in the tiny run's config
EXTRACTOR = {"weights_sha256": "a" * 64, "random": False, "feature_dim": FEATURE_DIM}
STATS = NormStats(np.linspace(0.2, 0.9, FEATURE_DIM), np.full(FEATURE_DIM, 2.0), 3, 30, "train")
# (video id, num_frames, fps, label, class): tails of 1, 15 and 16 frames, a 1-frame video
VIDEOS = [("cam_a", 100, 10.0, 1, "Arson"), ("cam_b", 17, 25.0, 0, "Normal"),
          ("cam_c", 1, 30.0, 0, "Normal"), ("cam_d", 79, 10.0, 1, "Shooting")]


def raw_features(video_id: str, num_frames: int) -> np.ndarray:
    """Deterministic raw features of one fake video (T, D)."""
    rng = np.random.default_rng(sum(map(ord, video_id)))
    return rng.random((num_clips(num_frames), FEATURE_DIM)).astype(np.float32)


def write_tiny_shards(
    folder: Path, stats: NormStats = STATS, extractor: dict | None = None, split: str = "test"
) -> Path:
    """The VIDEOS as one shard, normalized with `stats`."""
    records = [
        VideoRecord(vid, stats.normalize(raw_features(vid, n)), n, fps, label, split, cls,
                    f"/footage/{vid}.mp4", 1000, extractor=extractor or EXTRACTOR)
        for vid, n, fps, label, cls in VIDEOS
    ]
    folder.mkdir(parents=True, exist_ok=True)
    write_shard(folder / "shard-r000-00000.h5", records, stats)
    return folder


def flip_weights(file: Path, model: torch.nn.Module) -> None:
    """Flip bytes inside a stored weight tensor (found by its bytes), as a bad disk or copy would."""
    weight = next(iter(model.state_dict().values())).numpy().tobytes()
    data = bytearray(file.read_bytes())
    start = data.find(weight)
    assert start > 0
    for i in range(start, start + 64, 4):
        data[i] ^= 0xFF
    file.write_bytes(bytes(data))


@pytest.fixture
def tiny_run(tmp_path: Path) -> Path:
    """A run directory holding a checkpoint of a small untrained CLAWS Net."""
    torch.manual_seed(0)
    args = {"feature_dim": FEATURE_DIM, "hidden1": 6, "hidden2": 4}
    run = tmp_path / "tiny-run"
    save_checkpoint(
        run / "checkpoints" / "last.pt", model=ClawsNet(**args), model_name="claws",
        model_args=args, config={"window": WINDOW}, norm_stats=STATS,
        feature_meta={"feature_dim": FEATURE_DIM, "clip_len": 16, "extractor": EXTRACTOR},
        step=3, seed=0, version="test",
    )
    return run


@pytest.fixture
def tiny_shards(tmp_path: Path) -> Path:
    return write_tiny_shards(tmp_path / "shards")
