"""Events: contiguous stretches of a frame curve at or above a threshold.

A stretch of frames scoring >= threshold is a candidate; candidates separated by a gap of at most
`merge_gap_s` seconds are merged into one event (the gap frames belong to it), then events shorter
than `min_duration_s` are dropped. Frames are 0-based; an event covers [start_frame, end_frame),
end exclusive; times are frame / fps in seconds.

Shapes: N frames.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Event(NamedTuple):
    """One detected anomalous stretch of a video."""

    start_frame: int  # first frame, 0-based
    end_frame: int  # one past the last frame
    start_s: float  # start_frame / fps
    end_s: float  # end_frame / fps
    peak: float  # highest score inside the event
    peak_frame: int  # frame of the highest score (first one on ties)
    mean: float  # mean score over all frames of the event, merged gaps included

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self._asdict().items()}


def above_threshold_runs(frame_scores: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Maximal runs [start, end) of frames with score >= threshold."""
    above = np.asarray(frame_scores).reshape(-1) >= threshold
    edges = np.flatnonzero(np.diff(np.r_[0, above.astype(np.int8), 0]))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def merged_runs(frame_scores: np.ndarray, threshold: float, max_gap: int) -> list[tuple[int, int]]:
    """Runs [start, end) of frames >= threshold, those at most `max_gap` frames apart merged:
    the candidates of events before the shortest-duration rule."""
    merged: list[list[int]] = []
    for start, end in above_threshold_runs(frame_scores, threshold):
        if merged and start - merged[-1][1] <= max_gap:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def find_events(
    frame_scores: np.ndarray,
    fps: float,
    threshold: float = 0.5,
    min_duration_s: float = 0.0,
    merge_gap_s: float = 0.0,
) -> list[Event]:
    """Events of one frame curve.

    Args:
        frame_scores: (N,) per-frame anomaly scores.
        fps: frames per second of the video, > 0.
        threshold: a frame scoring at or above it is anomalous.
        min_duration_s: events shorter than this (after merging) are dropped.
        merge_gap_s: runs separated by at most this many seconds become one event.

    Returns:
        Events in time order.
    """
    scores = np.asarray(frame_scores, dtype=np.float64).reshape(-1)
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if min_duration_s < 0 or merge_gap_s < 0:
        raise ValueError("min_duration_s and merge_gap_s must be >= 0")
    max_gap = int(round(merge_gap_s * fps))
    min_len = int(np.ceil(min_duration_s * fps - 1e-9))
    events = []
    for start, end in merged_runs(scores, threshold, max_gap):
        if end - start < max(min_len, 1):
            continue
        segment = scores[start:end]
        peak_at = int(np.argmax(segment))
        events.append(Event(
            start, end, start / fps, end / fps, float(segment[peak_at]), start + peak_at,
            float(segment.mean()),
        ))
    return events
