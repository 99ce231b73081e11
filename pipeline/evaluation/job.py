"""The `claws evaluate` job: ground truth, curves (from a scores folder or a run), metrics and the
report folder. What the command accepts is described in claws.pipeline.commands.evaluate, its command line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from claws.data.annotations import (
    AnnotationError, GroundTruth, load_intervals, load_shanghaitech, load_ucf_crime,
    read_ucf_frame_counts, video_id_of,
)
from claws.data.shards import ShardError, ShardSet
from claws.data.text_files import read_text
from claws.pipeline.training.checkpoint import load_checkpoint
from claws.pipeline.metrics import MetricsError, evaluate_frames
from claws.pipeline.evaluation.report import write_report
from claws.pipeline.scoring.files import ScoresError, read_curves
from claws.pipeline.scoring.curve import FeatureMismatch, checkpoint_window, score_shard_video

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluateJob:
    """What `claws evaluate` was asked to do (its options, typed)."""

    out: Path  # report folder
    scores: Path | None = None  # a scores folder written by `claws score`
    run: Path | None = None  # or: a run (or checkpoint) to score `shards` with
    shards: Path | None = None
    split: str | None = None  # with `shards`: only this split
    ucf_annotations: Path | None = None  # ground truth: exactly one source
    ucf_frame_counts: Path | None = None
    sht_masks: Path | None = None
    sht_split: Path | None = None
    intervals: Path | None = None
    videos: Path | None = None  # evaluate only the videos listed in this file
    threshold: float = 0.5  # score threshold of the false-alarm rate
    reference_roc: dict[str, Path] = field(default_factory=dict)  # name -> ROC CSV drawn beside ours
    name: str | None = None  # label of our curve; None: the run name
    video_plots: bool = True
    progress: bool = True


class Evaluated(NamedTuple):
    """What `run` did: its exit code and the ground truth it used (for the review page)."""

    code: int  # 0 evaluated, 2 inconsistent input
    frame_labels: dict[str, np.ndarray]  # video id -> (N,) per-frame labels; empty on failure


def load_truth(job: EvaluateJob, frame_counts: dict[str, int]) -> GroundTruth:
    """The ground truth named on the command line (frame counts from the curves if needed)."""
    sources = [job.ucf_annotations, job.sht_masks or job.sht_split, job.intervals]
    if sum(s is not None for s in sources) != 1:
        raise AnnotationError("give exactly one ground truth: --ucf-annotations, "
                              "--sht-masks with --sht-split, or --intervals")
    if job.ucf_annotations:
        counts = (read_ucf_frame_counts(job.ucf_frame_counts) if job.ucf_frame_counts
                  else frame_counts)
        return load_ucf_crime(job.ucf_annotations, counts)
    if job.sht_masks or job.sht_split:
        if not (job.sht_masks and job.sht_split):
            raise AnnotationError("ShanghaiTech needs both --sht-masks and --sht-split")
        return load_shanghaitech(job.sht_masks, job.sht_split, frame_counts)
    return load_intervals(job.intervals, frame_counts)


def read_video_list(path: Path) -> list[str]:
    """Video ids from a text file (one per line) or a CSV whose header has a 'video' column."""
    if not Path(path).is_file():
        raise AnnotationError(f"--videos {path} does not exist")
    text = read_text(path)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and "," in lines[0]:
        header = [h.strip() for h in lines[0].split(",")]
        if "video" not in header:
            raise AnnotationError(f"{path}: a CSV video list needs a 'video' column")
        column = header.index("video")
        lines = [line.split(",")[column].strip() for line in lines[1:]]
    ids = sorted({video_id_of(line) for line in lines})
    if not ids:
        raise AnnotationError(f"{path}: no video ids")
    return ids


def restrict(truth: GroundTruth, ids: list[str], where: Path) -> GroundTruth:
    """The ground truth of the listed videos only; a listed video without annotation is an error."""
    unknown = [v for v in ids if v not in truth.videos]
    if unknown:
        raise AnnotationError(f"{where}: {len(unknown)} listed videos are not in the ground truth "
                              f"{truth.source}: {', '.join(unknown[:10])}")
    chosen = set(ids)
    warnings = [w for w in truth.warnings if w.split(":")[0].removeprefix("video ") in chosen]
    return GroundTruth({v: truth.videos[v] for v in ids}, f"{truth.source} ({len(ids)} videos "
                       f"listed in {where})", warnings)


def curves_from_run(
    job: EvaluateJob,
) -> tuple[dict[str, np.ndarray], dict[str, float], bool]:
    """Score the shard videos with the run in memory.

    Returns:
        (curves, fps, rows): rows hold each video's random_features flag and C3D precision.
    """
    ckpt = load_checkpoint(job.run)
    shards = ShardSet(job.shards)
    window = checkpoint_window(ckpt)
    curves, fps, rows = {}, {}, []
    for info in shards.select(split=job.split):
        scored = score_shard_video(ckpt, shards, info, window)
        curves[info.video_id], fps[info.video_id] = scored.frame_scores, scored.fps
        rows.append({"random_features": scored.random_features, "precision": scored.precision})
    if not curves:
        raise ShardError(f"no videos of split {job.split!r} in {job.shards}")
    return curves, fps, rows


def feature_inputs(rows: list[dict]) -> dict:
    """What the features were, from per-video rows: any random weights, the C3D precisions."""
    return {"random_features": any(r.get("random_features") for r in rows),
            "precision": ", ".join(sorted({str(r.get("precision", "unknown")) for r in rows}))}


def gather_curves(
    job: EvaluateJob,
) -> tuple[dict[str, np.ndarray], dict[str, float], dict]:
    """Curves from a scores folder or from a run + shards, their fps, and what the inputs were."""
    if bool(job.scores) == bool(job.run or job.shards):
        raise ScoresError("give a scores folder, or --run with --shards (not both)")
    if job.scores:
        curves, rows = read_curves(job.scores)
        runs = sorted({Path(r.get("checkpoint", "?")).parent.parent.name for r in rows})
        name = job.name or (runs[0] if len(runs) == 1 else str(job.scores))
        fps = {r["video_id"]: r["fps"] for r in rows if r.get("fps")}
        return curves, fps, {"name": name, "scores": job.scores, **feature_inputs(rows)}
    if not (job.run and job.shards):
        raise ScoresError("--run and --shards go together")
    curves, fps, rows = curves_from_run(job)
    name = job.name or Path(job.run).name
    return curves, fps, {"name": name, "scores": f"{job.run} on {job.shards}",
                         **feature_inputs(rows)}


def run(job: EvaluateJob) -> Evaluated:
    """Run `claws evaluate`: exit code 0 on success, 2 on inconsistent input, and the ground
    truth's frame labels (the `--review` page draws them; the command writes it)."""
    try:
        curves, fps, inputs = gather_curves(job)
        truth = load_truth(job, {vid: len(c) for vid, c in curves.items()})
        if job.videos is not None:
            truth = restrict(truth, read_video_list(job.videos), job.videos)
        metrics = evaluate_frames(truth, curves, job.threshold)
        write_report(job.out, metrics, truth, curves, inputs, job.reference_roc,
                     video_plots=job.video_plots, progress=job.progress,
                     fps=fps)
    except (AnnotationError, MetricsError, ScoresError, ShardError, FeatureMismatch,
            FileNotFoundError) as err:
        logger.error("%s", err)
        return Evaluated(2, {})
    if metrics.warnings:
        logger.warning("%d annotations clipped at the video's end (listed in summary.md)",
                       len(metrics.warnings))
    if metrics.unannotated:
        logger.warning("%d scored videos are not %s and were left out", len(metrics.unannotated),
                       f"listed in {job.videos}" if job.videos else "annotated")
    logger.info("frame AUC %.2f%%, AP %.2f%%, false alarms %.2f%% at %g over %d videos; "
                "report in %s", 100 * metrics.auc, 100 * metrics.average_precision,
                100 * metrics.false_alarm_rate, job.threshold, metrics.num_videos, job.out)
    if metrics.per_video:
        logger.info("localization over the %d anomalous videos: AUC_A %s, own AUC mean %s, "
                    "median %s (%d undefined)", len(metrics.per_video),
                    *(f"{100 * v:.2f}%" if v is not None else "undefined" for v in
                      (metrics.auc_anomalous, metrics.video_auc_mean, metrics.video_auc_median)),
                    metrics.num_video_auc_undefined)
    return Evaluated(0, {vid: t.frame_labels for vid, t in truth.videos.items()})
