"""Clip arithmetic: which frames make each 16-frame clip, and clip scores back to frame curves.

DESIGN.md "Clips": native frame rate, clip k covers frames [16k, 16k+16) (0-based); a tail of
1..15 frames becomes one more clip padded by repeating its last frame; a video shorter than
16 frames is one padded clip. Every frame belongs to exactly one clip, so a frame curve is the
clip scores repeated clip_len times and cut to num_frames. This module is the ONE place that
rule lives; extraction, scoring, evaluation and plots all call it.
"""

from __future__ import annotations

import numpy as np

CLIP_LEN = 16
TAIL_POLICY = "pad_repeat_last"  # recorded in every shard: how the last partial clip was filled


def num_clips(num_frames: int, clip_len: int = CLIP_LEN) -> int:
    """Number of clips a video of `num_frames` frames is cut into (ceil division).

    Args:
        num_frames: frames actually decoded, >= 1.
        clip_len: frames per clip.

    Returns:
        ceil(num_frames / clip_len).
    """
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got num_frames={num_frames}")
    if clip_len < 1:
        raise ValueError(f"clip_len must be >= 1, got {clip_len}")
    return -(-num_frames // clip_len)


def clip_frame_indices(clip_index: int, num_frames: int, clip_len: int = CLIP_LEN) -> np.ndarray:
    """Frame indices (0-based) that make up one clip, the tail padded with the last frame.

    Args:
        clip_index: k in [0, num_clips).
        num_frames: frames in the video.
        clip_len: frames per clip.

    Returns:
        int64 array of length clip_len.
    """
    total = num_clips(num_frames, clip_len)
    if not 0 <= clip_index < total:
        raise IndexError(f"clip {clip_index} out of range for {num_frames} frames ({total} clips)")
    start = clip_index * clip_len
    return np.minimum(np.arange(start, start + clip_len, dtype=np.int64), num_frames - 1)


def pad_clip_frames(frames: np.ndarray, clip_len: int = CLIP_LEN) -> np.ndarray:
    """Pad a run of 1..clip_len frames (T, H, W, C) to clip_len by repeating the last one."""
    if len(frames) == 0:
        raise ValueError("cannot pad an empty clip")
    if len(frames) > clip_len:
        raise ValueError(f"a clip holds at most {clip_len} frames, got {len(frames)}")
    if len(frames) == clip_len:
        return frames
    pad = np.repeat(frames[-1:], clip_len - len(frames), axis=0)
    return np.concatenate([frames, pad], axis=0)


def clip_scores_to_frame_scores(
    clip_scores: np.ndarray, num_frames: int, clip_len: int = CLIP_LEN
) -> np.ndarray:
    """Expand per-clip scores to a per-frame curve of exactly `num_frames` values.

    Args:
        clip_scores: (T,) one score per clip, T == num_clips(num_frames, clip_len).
        num_frames: frames in the video.
        clip_len: frames per clip.

    Returns:
        (num_frames,) float array; frame f gets the score of clip f // clip_len.
    """
    clip_scores = np.asarray(clip_scores)
    if clip_scores.ndim != 1:
        raise ValueError(f"clip scores must be 1-D, got shape {clip_scores.shape}")
    expected = num_clips(num_frames, clip_len)
    if len(clip_scores) != expected:
        raise ValueError(
            f"{len(clip_scores)} clip scores do not fit {num_frames} frames: "
            f"expected {expected} clips of {clip_len} frames"
        )
    return np.repeat(clip_scores, clip_len)[:num_frames]
