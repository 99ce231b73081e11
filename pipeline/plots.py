"""Figures as PNG files (matplotlib Agg, no pyplot state): curves with events or ground truth, ROC.

- `plot_curve_events`: a video's per-frame curve against time with detected events shaded.
- `plot_curve_truth`: a curve against frame number with the ground-truth anomalous frames shaded
  red, like the paper's Fig. 6/7.
- `plot_roc`: ROC curves with their AUC, optionally beside reference curves read from CSV (the
  paper's curves, `claws_roc/*.csv`: a header row of Excel column letters, then FPR, TPR rows).

Every figure is written atomically. Shapes: N frames, K curve points.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from claws.pipeline.atomic import atomic_path
from claws.pipeline.events import Event, above_threshold_runs

CURVE_COLOR = "#1f4e9c"
EVENT_COLOR = "#f28e2b"
TRUTH_COLOR = "#d62728"  # the paper's red ground-truth windows
DPI = 100


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return Path(path)


def _curve_axes(title: str, y_max: float) -> tuple[Figure, object]:
    fig = Figure(figsize=(10, 3), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10)
    ax.set_ylim(0, max(1.0, y_max) * 1.02)
    ax.set_ylabel("anomaly score")
    ax.grid(alpha=0.3)
    return fig, ax


def plot_curve_events(
    path: Path,
    frame_scores: np.ndarray,
    fps: float,
    events: Sequence[Event],
    threshold: float,
    title: str,
) -> Path:
    """Write a PNG of one video's curve (x: seconds) with its events shaded.

    Args:
        path: PNG to write.
        frame_scores: (N,) per-frame scores.
        fps: frames per second (x axis in seconds).
        events: events to shade (from claws.pipeline.events.find_events).
        threshold: drawn as a dashed line.
        title: figure title (video id and a summary).

    Returns:
        The path written.
    """
    scores = np.asarray(frame_scores, dtype=np.float64)
    fig, ax = _curve_axes(title, float(scores.max(initial=0.0)))
    times = np.arange(len(scores) + 1) / fps
    ax.stairs(scores, times, color=CURVE_COLOR, linewidth=1.2, label="score")
    for n, event in enumerate(events):
        ax.axvspan(event.start_s, event.end_s, color=EVENT_COLOR, alpha=0.3,
                   label="event" if n == 0 else None)
    ax.axhline(threshold, color="grey", linestyle="--", linewidth=0.8, label="threshold")
    ax.set_xlim(0, times[-1])
    ax.set_xlabel("time (s)")
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def plot_curve_truth(
    path: Path, frame_scores: np.ndarray, frame_labels: np.ndarray, title: str
) -> Path:
    """Write a PNG of one video's curve (x: frame number) with ground truth shaded red.

    Args:
        path: PNG to write.
        frame_scores: (N,) per-frame scores.
        frame_labels: (N,) 0/1 ground truth.
        title: figure title.

    Returns:
        The path written.
    """
    scores = np.asarray(frame_scores, dtype=np.float64)
    if len(frame_labels) != len(scores):
        raise ValueError(f"{title}: {len(scores)} scores but {len(frame_labels)} labels")
    fig, ax = _curve_axes(title, float(scores.max(initial=0.0)))
    for n, (start, end) in enumerate(above_threshold_runs(frame_labels, 0.5)):
        ax.axvspan(start, end, color=TRUTH_COLOR, alpha=0.25,
                   label="ground truth" if n == 0 else None)
    ax.stairs(scores, np.arange(len(scores) + 1), color=CURVE_COLOR, linewidth=1.2,
              label="score")
    ax.set_xlim(0, len(scores))
    ax.set_xlabel("frame")
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def read_reference_roc(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A reference ROC curve from CSV: a header row, then rows whose first two columns are FPR, TPR.

    Args:
        path: e.g. `claws_roc/sheet1_ProposedCLAWSNet.csv`.

    Returns:
        (fpr, tpr) float arrays in file order.
    """
    path = Path(path)
    with path.open(newline="") as handle:
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
    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.add_subplot()
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, linewidth=1.8, label=f"{name} (AUC {100 * auc:.2f}%)")
    for name, csv_path in (references or {}).items():
        fpr, tpr = read_reference_roc(csv_path)
        auc = float(np.trapezoid(tpr, fpr))
        ax.plot(fpr, tpr, linestyle="--", linewidth=1.2, label=f"{name} (AUC {100 * auc:.2f}%)")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.6, linestyle=":")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)
