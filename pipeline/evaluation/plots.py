"""Evaluation figures as PNG files: a curve with its ground truth, ROC curves, per-video AUC.

- `plot_curve_truth`: one video's curve (claws.pipeline.scoring.plots.curve_figure, the same axes
  and colours as the scoring plots) with its ground-truth anomalous frames shaded red.
- `plot_roc`: ROC curves with their AUC, optionally beside reference curves read from CSV (the
  paper's curves, `claws_roc/*.csv`: a header row of Excel column letters, then FPR, TPR rows).
- `plot_video_auc`: each anomalous video's own frame AUC as a bar, worst first, chance at 0.5
  (does a model find the event inside a video, or only score the whole video high?).

matplotlib is imported inside the functions that draw; figures are written whole (`save_figure`).
Shapes: N frames, K curve points.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from claws.data.text_files import open_text
from claws.pipeline.scoring.plots import (
    CURVE_COLOR, THRESHOLD_COLOR, TRUTH_COLOR, curve_figure, save_figure,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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
    return save_figure(figure, path)


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
    return save_figure(fig, path)


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
    return save_figure(video_auc_figure(video_auc, title), path)
