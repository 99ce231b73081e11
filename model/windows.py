"""Batch windows (DESIGN.md "Batches and NSM windows") and the random batch selector (paper 3.1).

A video of T clips is cut into ceil(T / b) windows of b consecutive clips: window k holds clips
kb .. kb+b-1. The last window is padded cyclically with the video's own clips (clip T wraps to
clip 0, T+1 to 1, ...; a video shorter than b repeats itself), and a mask marks the padded
positions so losses and scores can drop them. Training and scoring use exactly these windows.

The random batch selector (RBS) shuffles all windows of all training videos each epoch. Its
switched-off form (BBN without RBS, Table 3) keeps each video's windows consecutive and in
temporal order, video after video; the order of the videos is still shuffled each epoch (a fixed
order would feed all normal videos before all anomalous ones). Both orders are a pure function of
(seed, epoch), so a resumed run sees the same windows as an uninterrupted one.

Shapes: W windows, b clips per window.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor


class VideoWindows(NamedTuple):
    """The windows of one video: which clips fill each position, and which are real."""

    clip_index: Tensor  # (W, b) int64 clip index into the video, padded positions wrap around
    valid: Tensor  # (W, b) bool, False at the cyclic padding of the last window


SEED_STRIDE = 1_000_003  # a prime larger than any epoch or step count a run reaches


def derived_seed(seed: int, index: int) -> int:
    """The seed of a run's `index`-th random stream (an epoch's window order, its clustering, a
    MIL step's draw): distinct for every (seed, index) of a run, the same on every machine."""
    return int(seed) * SEED_STRIDE + int(index)


def num_windows(num_clips: int, window: int) -> int:
    """ceil(num_clips / window): how many windows a video of num_clips clips makes."""
    if num_clips < 1:
        raise ValueError(f"a video needs at least one clip, got {num_clips}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    return -(-num_clips // window)


def video_windows(num_clips: int, window: int) -> VideoWindows:
    """All windows of one video with cyclic padding of the last one.

    Args:
        num_clips: T, clips in the video (>= 1).
        window: b, clips per window.

    Returns:
        VideoWindows with clip_index and valid of shape (ceil(T / b), b).
    """
    count = num_windows(num_clips, window)
    positions = torch.arange(count * window, dtype=torch.int64).view(count, window)
    return VideoWindows(positions % num_clips, positions < num_clips)


def window_order(
    windows_per_video: Sequence[int], shuffle: bool, seed: int, epoch: int
) -> Tensor:
    """One epoch's order of all windows of all videos.

    Args:
        windows_per_video: number of windows of each video, V entries.
        shuffle: True for the random batch selector (all windows shuffled); False for the
            in-order form (videos shuffled, each video's windows consecutive and in order).
        seed: run seed.
        epoch: epoch number; with the seed it fixes the order.

    Returns:
        (K, 2) int64 rows (video index, window index), K = sum(windows_per_video); every window
        appears exactly once.
    """
    counts = torch.as_tensor(list(windows_per_video), dtype=torch.int64)
    if len(counts) == 0:
        raise ValueError("no videos to draw windows from")
    if (counts < 1).any():
        raise ValueError("every video has at least one window")
    generator = torch.Generator().manual_seed(derived_seed(seed, epoch))
    videos = torch.repeat_interleave(torch.arange(len(counts)), counts)
    starts = torch.cumsum(counts, 0) - counts
    windows = torch.arange(int(counts.sum())) - torch.repeat_interleave(starts, counts)
    pairs = torch.stack([videos, windows], dim=1)  # (K, 2) video after video, in order
    if shuffle:
        return pairs[torch.randperm(len(pairs), generator=generator)]
    video_perm = torch.randperm(len(counts), generator=generator)
    return torch.cat([pairs[starts[v] : starts[v] + counts[v]] for v in video_perm.tolist()])
