"""Figures of a scored video as PNG files (matplotlib Agg, no pyplot state), shared by scoring and
evaluation (claws.pipeline.evaluation.plots draws ground truth and ROC with the same pieces).

- `curve_figure`: one video's per-frame curve on a time axis in seconds (frame numbers on a top
  axis; frames alone, said so in the axis label, when the fps is unknown), the threshold as a
  labelled dashed line, detected events and ground-truth anomalous frames (the paper's Fig. 6/7
  red windows) shaded behind the curve, and a one-row legend under the axes.
- `plot_curve_events` (`claws score`) writes it as PNG with the detected events; evaluation's
  `plot_curve_truth` with the ground truth, so both kinds of plot share one time axis and one
  colour per meaning (CURVE/EVENT/TRUTH/THRESHOLD).

matplotlib is imported inside the functions that draw, so the CLI starts without it. Every figure
is rendered in memory and written whole (claws.data.atomic.write_atomic, `save_figure`): a full
disk is a DiskFullError naming the folder and the bytes needed, not the PNG encoder's bare ENOSPC.
Shapes: N frames.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from claws.data.atomic import write_atomic
from claws.pipeline.scoring.events import Event, above_threshold_runs

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CURVE_COLOR = "#1f4e9c"
EVENT_COLOR = "#f28e2b"
TRUTH_COLOR = "#d62728"  # the paper's red ground-truth windows
THRESHOLD_COLOR = "#555555"
# Shading behind the threshold line, the threshold behind the curve: the curve stays readable
# inside an event, even one covering the whole video.
SHADE_ZORDER, THRESHOLD_ZORDER, CURVE_ZORDER = 1.0, 2.0, 3.0
DPI = 100


def save_figure(fig: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return write_atomic(path, buffer.getbuffer())


def _known(fps: float | None) -> bool:
    return fps is not None and math.isfinite(fps) and fps > 0


def _time_axis(ax: Axes, num_frames: int, fps: float | None) -> float:
    """Label the x axis in seconds (frames on top), or in frames when fps is unknown.

    Returns:
        Frames per x unit: fps, or 1.0 when the axis is in frames.
    """
    if not _known(fps):
        ax.set_xlabel("frame (fps unknown, so no time in seconds)")
        ax.set_xlim(0, max(num_frames, 1))
        return 1.0
    ax.set_xlabel("time (s)")
    ax.set_xlim(0, max(num_frames, 1) / fps)
    top = ax.secondary_xaxis("top", functions=(lambda s: s * fps, lambda f: f / fps))
    top.set_xlabel("frame", fontsize=8)
    top.tick_params(labelsize=8)
    return float(fps)


def curve_figure(
    frame_scores: np.ndarray,
    fps: float | None,
    threshold: float | None,
    title: str,
    events: Sequence[Event] = (),
    frame_labels: np.ndarray | None = None,
    threshold_use: str = "",
) -> Figure:
    """One video's curve with its threshold, events and ground truth, not yet written.

    Args:
        frame_scores: (N,) per-frame scores.
        fps: frames per second; None or <= 0 when unknown (the x axis is then in frames).
        threshold: drawn as a labelled dashed line (None: no line).
        title: figure title (video id first).
        events: detected events, shaded EVENT_COLOR.
        frame_labels: (N,) 0/1 ground truth, anomalous frames shaded TRUTH_COLOR.
        threshold_use: what the threshold decides, added to its legend label in brackets.

    Returns:
        The figure: curve zorder CURVE_ZORDER above the threshold line above the shading.
    """
    from matplotlib.figure import Figure

    scores = np.asarray(frame_scores, dtype=np.float64).reshape(-1)
    if frame_labels is not None and len(frame_labels) != len(scores):
        raise ValueError(f"{title}: {len(scores)} scores but {len(frame_labels)} labels")
    fig = Figure(figsize=(10, 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_ylim(0, max(1.0, float(scores.max(initial=0.0))) * 1.02)
    ax.set_ylabel("anomaly score")
    ax.set_axisbelow(True)
    ax.grid(alpha=0.3)
    per_unit = _time_axis(ax, len(scores), fps)
    # Added in legend order; the zorders, not the order, decide what is drawn on top.
    ax.stairs(scores, np.arange(len(scores) + 1) / per_unit, baseline=None, color=CURVE_COLOR,
              linewidth=1.4, zorder=CURVE_ZORDER, label="anomaly score")
    if threshold is not None:
        use = f" ({threshold_use})" if threshold_use else ""
        ax.axhline(threshold, color=THRESHOLD_COLOR, linestyle="--", linewidth=1.0,
                   zorder=THRESHOLD_ZORDER, label=f"threshold {threshold:g}{use}")
    spans = [(e.start_frame, e.end_frame, EVENT_COLOR, 0.3, "detected event") for e in events]
    if frame_labels is not None:
        spans += [(start, end, TRUTH_COLOR, 0.2, "ground truth (anomalous)")
                  for start, end in above_threshold_runs(frame_labels, 0.5)]
    labelled = set()
    for start, end, color, alpha, label in spans:
        ax.axvspan(start / per_unit, end / per_unit, color=color, alpha=alpha, linewidth=0,
                   zorder=SHADE_ZORDER, label=None if label in labelled else label)
        labelled.add(label)
    # One row under the axes: never over the curve, and the same axes width for both kinds.
    fig.legend(loc="outside lower center", ncols=4, fontsize=8, frameon=False)
    return fig


def plot_curve_events(
    path: Path,
    frame_scores: np.ndarray,
    fps: float | None,
    events: Sequence[Event],
    threshold: float,
    title: str,
    threshold_use: str = "",
) -> Path:
    """Write a PNG of one video's curve with its events shaded (see curve_figure).

    Args:
        path: PNG to write.
        frame_scores: (N,) per-frame scores.
        fps: frames per second (None or <= 0: x axis in frames).
        events: events to shade (from claws.pipeline.scoring.events.find_events).
        threshold: the event threshold, drawn as a dashed line.
        title: figure title (video id and a summary).
        threshold_use: e.g. the event rule, shown beside the threshold in the legend.

    Returns:
        The path written.
    """
    figure = curve_figure(frame_scores, fps, threshold, title, events=events,
                          threshold_use=threshold_use)
    return save_figure(figure, path)
