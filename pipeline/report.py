"""The evaluation report folder: metrics.json, summary.md, roc.png and per-video curve PNGs.

    metrics.json        FrameMetrics.to_dict() plus the inputs (scores, ground truth, references)
    summary.md          the figures in a Markdown table, per-class AUC, per-video table, warnings
    roc.png             our ROC curve with optional reference curves (e.g. the paper's)
    videos/<id>.png     each annotated video's curve against time in seconds (frames when its
                        fps is unknown) with its ground truth shaded red (Fig. 6/7) and
                        the false-alarm threshold as a dashed line
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
from tqdm import tqdm

from claws.data.annotations import GroundTruth
from claws.data.atomic import write_json, write_text
from claws.pipeline.metrics import FrameMetrics, thin_curve
from claws.pipeline.plots import plot_curve_truth, plot_roc, read_reference_roc


def _percent(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{100 * value:.2f}%"


def _video_rows(truth: GroundTruth, curves: Mapping[str, np.ndarray]) -> list[str]:
    rows = ["| video | class | frames | anomalous frames | mean score on anomalous | "
            "mean score on normal | peak |", "|---|---|---:|---:|---:|---:|---:|"]
    for vid, t in sorted(truth.videos.items()):
        curve, labels = np.asarray(curves[vid]), t.frame_labels.astype(bool)
        inside = f"{curve[labels].mean():.3f}" if labels.any() else "-"
        outside = f"{curve[~labels].mean():.3f}" if (~labels).any() else "-"
        rows.append(f"| {vid} | {t.class_name} | {t.num_frames} | {int(labels.sum())} | "
                    f"{inside} | {outside} | {curve.max():.3f} |")
    return rows


def summary_markdown(
    metrics: FrameMetrics, truth: GroundTruth, curves: Mapping[str, np.ndarray], inputs: dict,
    reference_aucs: Mapping[str, float],
) -> str:
    """The Markdown summary of one evaluation."""
    lines = [f"# Frame-level evaluation: {inputs['name']}", ""]
    if inputs.get("random_features"):
        lines += ["> **WARNING: scores from RANDOM-WEIGHTS C3D features; these figures say "
                  "nothing about real performance.**", ""]
    lines += [
        f"- scores: `{inputs['scores']}`", f"- ground truth: `{truth.source}`",
        f"- C3D features: precision {inputs.get('precision', 'unknown')}"
        + (", RANDOM weights" if inputs.get("random_features") else ""), "",
        "| metric | value |", "|---|---:|",
        f"| frame-level ROC AUC (all test frames concatenated) | {_percent(metrics.auc)} |",
        f"| average precision | {_percent(metrics.average_precision)} |",
        f"| score gap (mean anomalous frame - mean normal frame) | {metrics.score_gap:.3f} |",
        f"| false-alarm rate on normal videos at score >= {metrics.threshold:g} | "
        f"{_percent(metrics.false_alarm_rate)} |",
        f"| videos (anomalous) | {metrics.num_videos} ({metrics.num_anomalous_videos}) |",
        f"| frames (anomalous) | {metrics.num_frames:,} ({metrics.num_anomalous_frames:,}) |",
        "",
    ]
    if metrics.per_class_auc:
        lines += ["## Per-class AUC", "",
                  "Each anomalous class's videos together with ALL normal test videos.", "",
                  "| class | AUC |", "|---|---:|"]
        lines += [f"| {c} | {_percent(a)} |" for c, a in metrics.per_class_auc.items()] + [""]
    if reference_aucs:
        lines += ["## Reference curves", "", "| curve | AUC (trapezoid) |", "|---|---:|"]
        lines += [f"| {n} | {_percent(a)} |" for n, a in reference_aucs.items()] + [""]
    lines += ["![ROC](roc.png)", "", "## Videos", ""] + _video_rows(truth, curves) + [""]
    if metrics.warnings:
        lines += [f"## Warnings ({len(metrics.warnings)})", ""]
        lines += [f"- {w}" for w in metrics.warnings] + [""]
    if metrics.unannotated:
        lines += [f"## Scored but not annotated ({len(metrics.unannotated)}, left out)", "",
                  ", ".join(metrics.unannotated), ""]
    return "\n".join(lines)


def write_report(
    out: Path,
    metrics: FrameMetrics,
    truth: GroundTruth,
    curves: Mapping[str, np.ndarray],
    inputs: dict,
    references: Mapping[str, Path] | None = None,
    video_plots: bool = True,
    progress: bool = True,
    fps: Mapping[str, float] | None = None,
) -> Path:
    """Write the whole report folder.

    Args:
        out: report folder (created).
        metrics: the computed metrics.
        truth: the ground truth they were computed against.
        curves: video id -> per-frame curve.
        inputs: what was evaluated: name, scores (folder or run + shards), random_features,
            precision (the C3D precisions of the features).
        references: name -> reference ROC CSV, drawn dashed on roc.png.
        video_plots: write videos/<id>.png for every annotated video.
        progress: tqdm bar over the video plots.
        fps: video id -> frames per second, for the plots' time axis (a video without one is
            plotted against frame numbers).

    Returns:
        The report folder.
    """
    out = Path(out)
    references = dict(references or {})
    reference_aucs = {}
    for name, path in references.items():
        fpr, tpr = read_reference_roc(path)
        reference_aucs[name] = float(np.trapezoid(tpr, fpr))
    roc = thin_curve(metrics.roc, 5000)
    flag = " (RANDOM C3D WEIGHTS)" if inputs.get("random_features") else ""
    plot_roc(out / "roc.png", {inputs["name"]: (roc.fpr, roc.tpr, metrics.auc)}, references,
             title=f"frame-level ROC, {metrics.num_videos} videos, "
             f"{metrics.num_frames:,} frames{flag}")
    write_json(out / "metrics.json", {
        **metrics.to_dict(), "inputs": {k: v if isinstance(v, (bool, int, float)) else str(v)
                   for k, v in inputs.items()},
        "ground_truth": truth.source,
        "reference_auc": reference_aucs,
        "reference_roc": {n: str(p) for n, p in references.items()},
    })
    if video_plots:
        for vid, t in tqdm(sorted(truth.videos.items()), unit="plot", disable=not progress):
            rate = (fps or {}).get(vid)
            length = f", {t.num_frames / rate:.1f} s" if rate else ""
            title = (f"{vid} ({t.class_name}): {t.num_frames} frames{length}, "
                     f"{int(t.frame_labels.sum())} anomalous{flag}")
            plot_curve_truth(out / "videos" / f"{vid}.png", curves[vid], rate, t.frame_labels,
                             metrics.threshold, title, "false-alarm rate")
    write_text(out / "summary.md", summary_markdown(metrics, truth, curves, inputs,
                                                     reference_aucs))
    return out
