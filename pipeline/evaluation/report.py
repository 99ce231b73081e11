"""The evaluation report folder: metrics.json, summary.md, roc.png and per-video curve PNGs.

    metrics.json        FrameMetrics.to_dict() plus the inputs (scores, ground truth, references)
    summary.md          the figures in a Markdown table, per-class AUC and AUC_A, per-video table
                        (each anomalous video's own AUC), warnings
    roc.png             our ROC curve, over all test frames and over the anomalous videos' frames
                        alone (AUC_A), with optional reference curves (e.g. the paper's)
    video_auc.png       each anomalous video's own frame AUC, worst first (localization)
    videos/<stem>.png   each annotated video's curve against time in seconds (frames when its
                        fps is unknown) with its ground truth shaded red (Fig. 6/7) and
                        the false-alarm threshold as a dashed line

Names that come from the user (run, classes, videos, reference curves, paths) enter summary.md as
text (`markdown_text`): a Markdown viewer renders them, it never runs them as HTML.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Mapping

import numpy as np
from tqdm import tqdm

from claws.data.annotations import GroundTruth
from claws.data.atomic import write_json, write_text
from claws.data.videos import file_stem
from claws.pipeline.metrics import FrameMetrics, thin_curve
from claws.pipeline.evaluation.plots import plot_curve_truth, plot_roc, plot_video_auc, read_reference_roc

UNDEFINED = "undefined"  # a figure that does not exist for these videos, never 0 or NaN


# Marks that would make a name a link, an image, code or a new table cell.
_MARKDOWN_MARKS = re.compile(r"([\\`\[\]|])")


def markdown_text(value: object) -> str:
    """A name or message as literal Markdown text on one line: HTML escaped, marks backslashed."""
    text = html.escape(" ".join(str(value).split()), quote=False)
    return _MARKDOWN_MARKS.sub(r"\\\1", text)


def _code(value: object) -> str:
    """A path in a code span, or as text when a backtick would end the span early."""
    text = " ".join(str(value).split())
    return f"`{text}`" if "`" not in text else markdown_text(text)


def _percent(value: float | None) -> str:
    return UNDEFINED if value is None or np.isnan(value) else f"{100 * value:.2f}%"


def _number(value: float | None) -> str:
    return UNDEFINED if value is None or np.isnan(value) else f"{value:.3f}"


def _video_rows(
    truth: GroundTruth, curves: Mapping[str, np.ndarray], own_auc: Mapping[str, float | None]
) -> list[str]:
    rows = ["| video | class | frames | anomalous frames | mean score on anomalous | "
            "mean score on normal | peak | own AUC |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for vid, t in sorted(truth.videos.items()):
        curve, labels = np.asarray(curves[vid]), t.frame_labels.astype(bool)
        inside = f"{curve[labels].mean():.3f}" if labels.any() else "-"
        outside = f"{curve[~labels].mean():.3f}" if (~labels).any() else "-"
        own = _percent(own_auc[vid]) if vid in own_auc else "-"
        rows.append(f"| {markdown_text(vid)} | {markdown_text(t.class_name)} | {t.num_frames} | "
                    f"{int(labels.sum())} | "
                    f"{inside} | {outside} | {curve.max():.3f} | {own} |")
    return rows


def _localization_rows(metrics: FrameMetrics) -> list[str]:
    """The localization rows of the summary's table (anomalous test videos alone)."""
    defined = len(metrics.per_video) - metrics.num_video_auc_undefined
    undefined = (f"; {metrics.num_video_auc_undefined} undefined (anomalous throughout)"
                 if metrics.num_video_auc_undefined else "")
    return [
        f"| AUC_A: frame AUC over the anomalous videos' frames alone | "
        f"{_percent(metrics.auc_anomalous)} |",
        f"| AP_A: average precision over the same frames | "
        f"{_percent(metrics.average_precision_anomalous)} |",
        f"| each anomalous video's own AUC, mean / median ({defined} videos{undefined}) | "
        f"{_percent(metrics.video_auc_mean)} / {_percent(metrics.video_auc_median)} |",
        f"| score gap inside anomalous videos (event frames - their normal frames) | "
        f"{_number(metrics.score_gap_anomalous)} |",
    ]


def _per_class_rows(metrics: FrameMetrics) -> list[str]:
    """Per-class AUC (with all normal videos) and AUC_A (the class's videos alone)."""
    lines = ["## Per-class AUC", "",
             "AUC: each anomalous class's videos together with ALL normal test videos. "
             "AUC_A: that class's videos alone (does the model find the event inside them?).",
             "", "| class | AUC | AUC_A |", "|---|---:|---:|"]
    for cls, auc in metrics.per_class_auc.items():
        lines.append(f"| {markdown_text(cls)} | {_percent(auc)} | "
                     f"{_percent(metrics.per_class_auc_anomalous.get(cls))} |")
    return lines + [""]


def summary_markdown(
    metrics: FrameMetrics, truth: GroundTruth, curves: Mapping[str, np.ndarray], inputs: dict,
    reference_aucs: Mapping[str, float],
) -> str:
    """The Markdown summary of one evaluation."""
    lines = [f"# Frame-level evaluation: {markdown_text(inputs['name'])}", ""]
    if inputs.get("random_features"):
        lines += ["> **WARNING: scores from RANDOM-WEIGHTS C3D features; these figures say "
                  "nothing about real performance.**", ""]
    lines += [
        f"- scores: {_code(inputs['scores'])}", f"- ground truth: {_code(truth.source)}",
        f"- C3D features: precision {markdown_text(inputs.get('precision', 'unknown'))}"
        + (", RANDOM weights" if inputs.get("random_features") else ""), "",
        "| metric | value |", "|---|---:|",
        f"| frame-level ROC AUC (all test frames concatenated) | {_percent(metrics.auc)} |",
        f"| average precision | {_percent(metrics.average_precision)} |",
        f"| score gap (mean anomalous frame - mean normal frame) | "
        f"{_number(metrics.score_gap)} |",
        f"| false-alarm rate on normal videos at score >= {metrics.threshold:g} | "
        f"{_percent(metrics.false_alarm_rate)} |",
        *_localization_rows(metrics),
        f"| videos (anomalous) | {metrics.num_videos} ({metrics.num_anomalous_videos}) |",
        f"| frames (anomalous) | {metrics.num_frames:,} ({metrics.num_anomalous_frames:,}) |",
        "",
        "The overall AUC rewards telling anomalous videos from normal ones; AUC_A and each "
        "video's own AUC ask whether the curve finds the event inside an anomalous video "
        "(50%: it does not).",
        "",
    ]
    if metrics.per_class_auc:
        lines += _per_class_rows(metrics)
    if reference_aucs:
        lines += ["## Reference curves", "", "| curve | AUC (trapezoid) |", "|---|---:|"]
        lines += [f"| {markdown_text(n)} | {_percent(a)} |" for n, a in reference_aucs.items()]
        lines += [""]
    own_auc = {row.video_id: row.auc for row in metrics.per_video}
    lines += ["![ROC](roc.png)", ""]
    if metrics.per_video:
        lines += ["![each anomalous video's own AUC](video_auc.png)", ""]
    lines += ["## Videos", ""] + _video_rows(truth, curves, own_auc) + [""]
    if metrics.warnings:
        lines += [f"## Warnings ({len(metrics.warnings)})", ""]
        lines += [f"- {markdown_text(w)}" for w in metrics.warnings] + [""]
    if metrics.unannotated:
        lines += [f"## Scored but not annotated ({len(metrics.unannotated)}, left out)", "",
                  ", ".join(map(markdown_text, metrics.unannotated)), ""]
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
    ours = {inputs["name"]: (roc.fpr, roc.tpr, metrics.auc)}
    if metrics.roc_anomalous is not None:
        roc_a = thin_curve(metrics.roc_anomalous, 5000)
        ours[f"{inputs['name']}, anomalous videos alone: AUC_A"] = (
            roc_a.fpr, roc_a.tpr, metrics.auc_anomalous)
    plot_roc(out / "roc.png", ours, references,
             title=f"frame-level ROC, {metrics.num_videos} videos, "
             f"{metrics.num_frames:,} frames{flag}")
    if metrics.per_video:
        plot_video_auc(out / "video_auc.png", {row.video_id: row.auc for row in metrics.per_video},
                       title=f"each anomalous video's own frame AUC{flag}")
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
            plot_curve_truth(out / "videos" / f"{file_stem(vid)}.png", curves[vid], rate,
                             t.frame_labels, metrics.threshold, title, "false-alarm rate")
    write_text(out / "summary.md", summary_markdown(metrics, truth, curves, inputs,
                                                     reference_aucs))
    return out
