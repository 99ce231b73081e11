"""Small weak-label shards written with the real shard writer, for the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from claws.data.shards import NormStats, VideoRecord, write_shard

DIM = 16


def write_weak_label_shards(
    folder: Path, num_videos: int = 24, seed: int = 0, split: str = "train",
    labels: list[int] | None = None, dim: int = DIM,
) -> Path:
    """Half normal, half anomalous videos; an anomalous video has one contiguous anomalous stretch
    (a quarter to a half of it) whose features are shifted along a few dimensions."""
    rng = np.random.default_rng(seed)
    labels = labels if labels is not None else [i % 2 for i in range(num_videos)]
    records = []
    for index, label in enumerate(labels):
        clips = int(rng.integers(20, 140))
        features = rng.normal(0.0, 0.3, size=(clips, dim)).astype(np.float32)
        if label == 1:
            length = int(rng.integers(clips // 4, clips // 2 + 1))
            start = int(rng.integers(0, clips - length + 1))
            features[start : start + length, :4] += 1.5
        records.append(VideoRecord(
            video_id=f"video{index:03d}", features=features, num_frames=clips * 16 - 3, fps=30.0,
            label=label, split=split, extractor={"weights_sha256": "0" * 64, "random": True},
        ))
    folder.mkdir(parents=True, exist_ok=True)
    write_shard(folder / "part-000.h5", records, NormStats.identity(dim))
    return folder
