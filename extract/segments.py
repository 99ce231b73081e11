"""Segment arithmetic: which frames each segment of a segment-pooled feature file covers, and
which segment each 16-frame clip takes its feature from.

Frame ranges are 1-based and INCLUSIVE (as UCF-Crime annotations and the ucf_c3d32 pack's
segments.npz); clip k (0-based) covers frames clip_len*k + 1 .. clip_len*(k + 1)
(DESIGN.md "Clips"). Two published rules give a segment's frames:

- Sultani et al. (CVPR 2018, the MATLAB feature script): n = floor(num_frames / 16) clips,
  edges = round(linspace(1, n, N + 1)) with MATLAB rounding (halves away from zero); segment s
  averages clips edges[s] .. edges[s+1] - 1 (1-based), or clip edges[s] alone when that range is
  empty. The last clip n and a tail shorter than 16 frames are in no segment.
  claws.model.mil.segment_bounds is the torch version of the same rule in clip units.
- Segment width (vantage-vision CSV files, first line w): the clip starting at 1-based frame
  k = 16c + 1 went to segment k // w; checked against the exact bounds of all 290 videos in
  segments.npz (the 0-based reading, 16c // w, disagrees on 150 of them).

Shapes: N segments, T clips.
"""

from __future__ import annotations

import numpy as np

from claws.data.clips import CLIP_LEN, num_clips


def sultani_clip_ranges(total_clips: int, num_segments: int) -> tuple[np.ndarray, np.ndarray]:
    """0-based [start, end) clip ranges of Sultani's segments over `total_clips` clips.

    Args:
        total_clips: n >= 1, the clips the features were averaged from.
        num_segments: N >= 1.

    Returns:
        starts (N,), ends (N,) int64 with start < end <= n (an empty range becomes one clip).
    """
    if total_clips < 1 or num_segments < 1:
        raise ValueError(f"need >= 1 clip and segment, got {total_clips} clips, {num_segments} segments")
    s = np.arange(num_segments + 1, dtype=np.int64)
    # round(1 + (n-1) s / N) with halves up, in integers so that no float error moves an edge
    edges = (3 * num_segments + 2 * (total_clips - 1) * s) // (2 * num_segments) - 1
    starts = edges[:-1]
    return starts, np.maximum(edges[1:], starts + 1)


def sultani_segment_bounds(num_frames: int, num_segments: int, clip_len: int = CLIP_LEN) -> np.ndarray:
    """Frame bounds of Sultani's N segments of a video of `num_frames` frames.

    Args:
        num_frames: frames of the video, >= 1.
        num_segments: N.
        clip_len: frames per clip (16).

    Returns:
        (N, 2) int64, 1-based inclusive frame ranges.
    """
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got num_frames={num_frames}")
    starts, ends = sultani_clip_ranges(max(num_frames // clip_len, 1), num_segments)
    return np.stack([clip_len * starts + 1, clip_len * ends], axis=1)


def width_segment_bounds(width: int, num_segments: int, clip_len: int = CLIP_LEN) -> np.ndarray:
    """Frame bounds of N segments of `width` frames (clip c went to segment (clip_len c + 1) // w).

    Args:
        width: w >= 1, from the CSV's first line.
        num_segments: N, the file's rows.
        clip_len: frames per clip (16).

    Returns:
        (N, 2) int64, 1-based inclusive frame ranges.

    Raises:
        ValueError: a segment holds no clip (w smaller than clip_len).
    """
    if width < 1:
        raise ValueError(f"segment width must be >= 1, got {width}")
    s = np.arange(num_segments + 1, dtype=np.int64)
    # first clip c with clip_len c + 1 >= s w
    first = np.maximum(-(-(s * width - 1) // clip_len), 0)
    starts, ends = first[:-1], first[1:]  # clips [start, end) of each segment
    if (ends <= starts).any():
        empty = int(np.argmax(ends <= starts))
        raise ValueError(f"segment {empty} of width {width} holds no {clip_len}-frame clip; "
                         f"widths below {clip_len} cannot come from this rule")
    return np.stack([clip_len * starts + 1, clip_len * ends], axis=1)


def check_bounds(bounds: np.ndarray, where: str) -> np.ndarray:
    """`bounds` as (N, 2) int64 with 1 <= start <= end; ValueError naming `where` otherwise."""
    array = np.asarray(bounds)
    if array.ndim != 2 or array.shape[1] != 2 or len(array) == 0 or not np.issubdtype(
            array.dtype, np.number):
        raise ValueError(f"{where}: segment bounds of shape {array.shape}, expected (N, 2) frame ranges")
    if not np.array_equal(array, np.round(array)):
        raise ValueError(f"{where}: segment bounds are not whole frame numbers")
    array = array.astype(np.int64)
    if (array[:, 0] < 1).any() or (array[:, 1] < array[:, 0]).any():
        raise ValueError(f"{where}: segment bounds need 1 <= start <= end (1-based, inclusive)")
    return array


def clip_segments(num_frames: int, bounds: np.ndarray, clip_len: int = CLIP_LEN) -> np.ndarray:
    """The segment each clip of a video takes its feature from.

    A clip takes the segment with the largest frame overlap (a tie goes to the earlier segment);
    a clip that overlaps no segment (the tail after the last segment, or a gap) takes the segment
    nearest to its centre (a tie again goes to the earlier one).

    Args:
        num_frames: frames of the video (T = ceil(num_frames / clip_len) clips).
        bounds: (N, 2) 1-based inclusive frame ranges of the segments.
        clip_len: frames per clip.

    Returns:
        (T,) int64 segment index per clip.
    """
    bounds = check_bounds(bounds, "clip_segments")
    k = np.arange(num_clips(num_frames, clip_len), dtype=np.int64)[:, None]  # (T, 1)
    clip_start, clip_end = clip_len * k + 1, clip_len * (k + 1)
    seg_start, seg_end = bounds[None, :, 0], bounds[None, :, 1]  # (1, N)
    # Frames in common; for a segment that a clip misses it is negative and equals
    # (clip_len + 1) / 2 minus the distance from the clip's centre to the segment, so the largest
    # value is also the nearest segment. argmax takes the first maximum: the earlier segment.
    overlap = np.minimum(clip_end, seg_end) - np.maximum(clip_start, seg_start) + 1  # (T, N)
    return overlap.argmax(axis=1)
