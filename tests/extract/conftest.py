"""A cheap stand-in for C3D so engine tests take milliseconds: per-frame channel means."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from claws.data.clips import clip_frame_indices, num_clips


def frame_means(frames: np.ndarray) -> torch.Tensor:
    """(c, 16, H, W, 3) uint8 -> (c, 48) float32: the mean of every frame's channels."""
    return torch.from_numpy(frames.astype(np.float32).mean(axis=(2, 3)).reshape(len(frames), -1))


class CountingNetwork:
    """features = 2 * input + 1, counting calls and clips."""

    preprocess = staticmethod(frame_means)

    def __init__(self) -> None:
        self.calls = 0
        self.clips = 0

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.clips += len(clips)
        return clips * 2 + 1


def expected_features(frames: np.ndarray) -> np.ndarray:
    """What the engine must produce for a whole video, computed directly with clips.py."""
    n = len(frames)
    clips = np.stack([frames[clip_frame_indices(k, n)] for k in range(num_clips(n))])
    return (frame_means(clips) * 2 + 1).numpy()


class Fake:
    """The stand-in's parts, handed to tests as one fixture (conftest is not importable)."""

    frame_means = staticmethod(frame_means)
    expected_features = staticmethod(expected_features)
    Network = CountingNetwork


@pytest.fixture
def fake() -> type[Fake]:
    return Fake
