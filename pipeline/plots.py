"""Figures as PNG files (matplotlib Agg, no pyplot state): curves with events or ground truth, ROC.

- `curve_figure`: one video's per-frame curve on a time axis in seconds (frame numbers on a top
  axis; frames alone, said so in the axis label, when the fps is unknown), the threshold as a
  labelled dashed line, detected events and ground-truth anomalous frames (the paper's Fig. 6/7
  red windows) shaded behind the curve, and a one-row legend under the axes.
- `plot_curve_events` (`claws score`) and `plot_curve_truth` (`claws evaluate`) write it as PNG, so
  both kinds of plot share one time axis and one colour per meaning (CURVE/EVENT/TRUTH/THRESHOLD).
- `plot_roc`: ROC curves with their AUC, optionally beside reference curves read from CSV (the
  paper's curves, `claws_roc/*.csv`: a header row of Excel column letters, then FPR, TPR rows).
- `plot_video_auc`: each anomalous video's own frame AUC as a bar, worst first, chance at 0.5
  (does a model find the event inside a video, or only score the whole video high?).

matplotlib is imported inside the functions that draw, so the CLI starts without it. Every figure
is rendered in memory and written whole (claws.data.atomic.write_atomic): a full disk is a
DiskFullError naming the folder and the bytes needed, not the PNG encoder's bare ENOSPC.
Shapes: N frames, K curve points.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from claws.data.atomic import write_atomic
from claws.data.text_files import open_text
from claws.pipeline.events import Event, above_threshold_runs

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


def _save(fig: Figure, path: Path) -> Path:
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
        events: events to shade (from claws.pipeline.events.find_events).
        threshold: the event threshold, drawn as a dashed line.
        title: figure title (video id and a summary).
        threshold_use: e.g. the event rule, shown beside the threshold in the legend.

    Returns:
        The path written.
    """
    figure = curve_figure(frame_scores, fps, threshold, title, events=events,
                          threshold_use=threshold_use)
    return _save(figure, path)


def plot_curve_truth(
    path: Path,
    frame_scores: np.ndarray,
    fps: float | None,
    frame_labels: np.ndarray,
    threshold: float | None,
    title: str,
    threshold_use: str = "",
) -> Path:
    """Write a PNG of one video's curve with its ground truth shaded red (see curve_figure).

    Args:
        path: PNG to write.
        frame_scores: (N,) per-frame scores.
        fps: frames per second (None or <= 0: x axis in frames).
        frame_labels: (N,) 0/1 ground truth.
        threshold: drawn as a dashed line (None: no line).
        title: figure title.
        threshold_use: what the threshold decides, shown beside it in the legend.

    Returns:
        The path written.
    """
    figure = curve_figure(frame_scores, fps, threshold, title, frame_labels=frame_labels,
                          threshold_use=threshold_use)
    return _save(figure, path)


def read_reference_roc(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A reference ROC curve from CSV: a header row, then rows whose first two columns are FPR, TPR.

    Args:
        path: e.g. `claws_roc/sheet1_ProposedCLAWSNet.csv`.

    Returns:
        (fpr, tpr) float arrays in file order.
    """
    path = Path(path)
    with open_text(path) as handle:
        rows = list(csv.reader(handle))
    try:
        points = np.array([[float(r[0]), float(r[1])] for r in rows[1:] if r and r[0].strip()])
    except (ValueError, IndexError) as err:
        raise ValueError(f"{path}: expected a header row then 'FPR,TPR' rows ({err})") from err
    if points.ndim != 2 or len(points) < 2:
        raise ValueError(f"{path}: fewer than two ROC points")
    if points.min() < 0 or points.max() > 1:
        raise ValueError(f"{path}: FPR/TPR values outside [0, 1]; are the columns right?")
    return points[:, 0], points[:, 1]


def plot_roc(
    path: Path,
    curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]],
    references: Mapping[str, Path] | None = None,
    title: str = "frame-level ROC",
) -> Path:
    """Write a PNG of ROC curves, ours solid and references dashed, each labelled with its AUC.

    Args:
        path: PNG to write.
        curves: name -> (fpr, tpr, auc).
        references: name -> CSV file (read with read_reference_roc; AUC by the trapezoid rule).
        title: figure title.

    Returns:
        The path written.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.add_subplot()
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, linewidth=1.8, label=f"{name} (AUC {100 * auc:.2f}%)")
    for name, csv_path in (references or {}).items():
        fpr, tpr = read_reference_roc(csv_path)
        auc = float(np.trapezoid(tpr, fpr))
        ax.plot(fpr, tpr, linestyle="--", linewidth=1.2, label=f"{name} (AUC {100 * auc:.2f}%)")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":", label="chance (AUC 50%)")
    ax.set_xlim(-0.01, 1.01)  # a curve along an edge stays visible next to the spine
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def video_auc_figure(video_auc: Mapping[str, float | None], title: str) -> Figure:
    """Each video's own frame AUC, one bar per video, worst at the top, not yet written.

    Args:
        video_auc: video id -> its own frame AUC, None where undefined (the video is anomalous
            throughout): those are named in the title, not drawn as 0.
        title: figure title.

    Returns:
        The figure: bars, the chance line at 0.5 and the mean of the defined AUCs.
    """
    from matplotlib.figure import Figure

    defined = sorted(((a, v) for v, a in video_auc.items() if a is not None), reverse=True)
    undefined = sorted(v for v, a in video_auc.items() if a is None)
    fig = Figure(figsize=(6.5, 1.6 + 0.17 * max(1, len(defined))), layout="constrained")
    ax = fig.add_subplot()
    ax.barh(np.arange(len(defined)), [a for a, _ in defined], color=CURVE_COLOR, height=0.7)
    ax.set_yticks(np.arange(len(defined)), [v for _, v in defined], fontsize=7)
    ax.axvline(0.5, color=THRESHOLD_COLOR, linestyle="--", linewidth=1.0, label="chance (0.5)")
    if defined:
        mean = float(np.mean([a for a, _ in defined]))
        ax.axvline(mean, color=TRUTH_COLOR, linewidth=1.2, label=f"mean {mean:.3f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, max(len(defined), 1) - 0.4)
    ax.set_xlabel("the video's own frame AUC (its event frames against its normal frames)")
    if undefined:
        shown = ", ".join(undefined[:6]) + (" ..." if len(undefined) > 6 else "")
        title += f"\nundefined, anomalous throughout ({len(undefined)}): {shown}"
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(axis="x", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return fig


def plot_video_auc(path: Path, video_auc: Mapping[str, float | None], title: str) -> Path:
    """Write a PNG of each video's own frame AUC (see video_auc_figure).

    Args:
        path: PNG to write.
        video_auc: video id -> its own frame AUC, None where undefined.
        title: figure title.

    Returns:
        The path written.
    """
    return _save(video_auc_figure(video_auc, title), path)
