"""Frame-level metrics: ROC AUC, average precision, false-alarm rate, per-class AUC.

The paper's metric (CLAWS Net Sec. 4.2, following Sultani et al.): the ROC AUC over the frames of
ALL test videos concatenated, each frame scored with its clip's score. Per-class AUC for UCF-Crime
follows the usual convention: the frames of one anomalous class's videos together with the frames
of ALL normal test videos. The false-alarm rate (Sultani et al. Sec. 5) is the share of frames of
normal videos whose score is >= a threshold (0.5 by default). The score gap is the mean score of
the anomalous frames minus the mean score of the normal frames (all videos): a ranking of almost
flat curves can reach a fair AUC with a gap near 0, which no threshold turns into detections.

Localization (does a model find the event, or only the anomalous video?): AUC_A is the ROC AUC
over the frames of the anomalous test videos only, with its AP (the measure recent weakly
supervised papers report beside the overall AUC); a model that scores whole anomalous videos high
and whole normal videos low reaches a fair overall AUC but an AUC_A near 0.5. Each anomalous
video's own frame AUC says the same per video (mean and median over videos); it is undefined,
None here and null in JSON (never 0 or NaN), for a video whose frames are all anomalous (or
none, an anomalous class without annotated frames). The score gap inside anomalous videos is
the mean score of their event frames minus the mean score of their normal frames.

ROC and AP are computed here with numpy (tie-aware: frames with equal scores form one threshold,
as scikit-learn does); the tests check both against scikit-learn and a hand-worked example.

Shapes: N frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, NamedTuple

import numpy as np

from claws.data.annotations import NORMAL_CLASS, GroundTruth


class MetricsError(ValueError):
    """Scores and ground truth do not fit together; the message names the videos."""


class RocCurve(NamedTuple):
    """Points of a ROC curve, from (0, 0) to (1, 1) by decreasing threshold."""

    fpr: np.ndarray  # (K,) false positive rate
    tpr: np.ndarray  # (K,) true positive rate
    thresholds: np.ndarray  # (K,) score at or above which a frame counts as anomalous (inf first)


def _counts(frame_labels: np.ndarray, frame_scores: np.ndarray) -> tuple[np.ndarray, ...]:
    """True and false positives at each distinct score, by decreasing score."""
    labels = np.asarray(frame_labels).reshape(-1).astype(bool)
    scores = np.asarray(frame_scores, dtype=np.float64).reshape(-1)
    if labels.shape != scores.shape:
        raise MetricsError(f"{labels.size} labels but {scores.size} scores")
    if not np.isfinite(scores).all():
        raise MetricsError("scores contain NaN or inf")
    if labels.all() or not labels.any():
        raise MetricsError(
            "the ROC needs both anomalous and normal frames; "
            f"got {int(labels.sum())} anomalous of {labels.size}"
        )
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    tps = np.cumsum(labels)[last_of_value]
    fps = (last_of_value + 1) - tps
    return tps, fps, scores[last_of_value]


def roc_curve(frame_labels: np.ndarray, frame_scores: np.ndarray) -> RocCurve:
    """The ROC curve of per-frame scores against 0/1 frame labels.

    Args:
        frame_labels: (N,) 0/1 ground truth.
        frame_scores: (N,) anomaly scores.

    Returns:
        RocCurve with one point per distinct score plus (0, 0).
    """
    tps, fps, thresholds = _counts(frame_labels, frame_scores)
    return RocCurve(
        np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]], np.r_[np.inf, thresholds]
    )


def roc_auc(frame_labels: np.ndarray, frame_scores: np.ndarray) -> float:
    """Area under the ROC curve (trapezoid rule, ties counted half, as scikit-learn)."""
    curve = roc_curve(frame_labels, frame_scores)
    return float(np.trapezoid(curve.tpr, curve.fpr))


def average_precision(frame_labels: np.ndarray, frame_scores: np.ndarray) -> float:
    """Average precision: sum over thresholds of (R_n - R_(n-1)) * P_n (scikit-learn's definition)."""
    tps, fps, _ = _counts(frame_labels, frame_scores)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def false_alarm_rate(normal_frame_scores: np.ndarray, threshold: float = 0.5) -> float:
    """Share of frames of normal videos scored at or above `threshold`."""
    scores = np.asarray(normal_frame_scores).reshape(-1)
    if scores.size == 0:
        raise MetricsError("no frames of normal videos to compute a false-alarm rate on")
    return float(np.mean(scores >= threshold))


def thin_curve(curve: RocCurve, max_points: int = 2000) -> RocCurve:
    """At most `max_points` points of a curve, ends kept, for plots and JSON."""
    if len(curve.fpr) <= max_points:
        return curve
    keep = np.unique(np.linspace(0, len(curve.fpr) - 1, max_points).round().astype(int))
    return RocCurve(curve.fpr[keep], curve.tpr[keep], curve.thresholds[keep])


class VideoLocalization(NamedTuple):
    """How well one anomalous video's own curve finds its event."""

    video_id: str
    class_name: str
    num_frames: int
    num_anomalous_frames: int
    auc: float | None  # the video's own frame AUC; None: all its frames anomalous (or none)
    score_gap: float | None  # mean event-frame score minus mean normal-frame score; None: as auc


def _defined(frame_labels: np.ndarray) -> bool:
    """Whether labels hold both anomalous and normal frames (a ROC needs both)."""
    labels = np.asarray(frame_labels).reshape(-1).astype(bool)
    return bool(labels.any() and not labels.all())


def video_auc(frame_labels: np.ndarray, frame_scores: np.ndarray) -> float | None:
    """One video's own frame AUC, or None when its frames are all anomalous or all normal."""
    return roc_auc(frame_labels, frame_scores) if _defined(frame_labels) else None


def _json_safe(value: object) -> object:
    """NaN and inf floats as None, through dicts, lists and tuples: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


@dataclass(frozen=True)
class FrameMetrics:
    """Everything `claws evaluate` reports about one scored test set."""

    auc: float  # frame-level ROC AUC over all test frames concatenated
    average_precision: float
    false_alarm_rate: float  # on the frames of normal videos, at `threshold`
    threshold: float
    # mean score of anomalous frames minus that of normal frames: an AUC can be high for curves
    # that are almost flat; a detector needs a gap a threshold can use
    score_gap: float
    per_class_auc: dict[str, float]  # anomalous class -> AUC with all normal videos
    num_videos: int
    num_anomalous_videos: int
    num_frames: int
    num_anomalous_frames: int
    roc: RocCurve
    # Localization, over the anomalous videos only; None where undefined (see the module doc).
    auc_anomalous: float | None  # AUC_A: frame AUC over the frames of the anomalous videos
    average_precision_anomalous: float | None  # AP over the same frames
    score_gap_anomalous: float | None  # event frames minus normal frames of anomalous videos
    per_class_auc_anomalous: dict[str, float | None]  # class -> AUC_A of its videos alone
    per_video: list[VideoLocalization]  # each anomalous video's own AUC and gap
    video_auc_mean: float | None  # over the videos whose own AUC is defined
    video_auc_median: float | None
    num_video_auc_undefined: int  # anomalous videos without a defined own AUC
    roc_anomalous: RocCurve | None  # the ROC behind auc_anomalous
    unannotated: list[str] = field(default_factory=list)  # scored videos without ground truth
    warnings: list[str] = field(default_factory=list)  # from the annotation (clipped ranges)

    def to_dict(self) -> dict:
        """Plain numbers and lists for metrics.json (ROCs thinned to 2000 points); every
        undefined figure (None or NaN) is null."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("roc", "roc_anomalous")}
        out["per_video"] = [row._asdict() for row in self.per_video]
        for key in ("roc", "roc_anomalous"):
            curve = getattr(self, key)
            roc = thin_curve(curve) if curve is not None else None
            out[key] = {"fpr": roc.fpr.tolist(), "tpr": roc.tpr.tolist()} if roc else None
        out["num_warnings"] = len(self.warnings)
        return _json_safe(out)


def align(truth: GroundTruth, curves: Mapping[str, np.ndarray]) -> list[str]:
    """Check that every annotated video has a curve of its length; returns the unannotated ids.

    Raises:
        MetricsError: naming every annotated video without scores and every curve whose length
            differs from the annotation's frame count.
    """
    missing = sorted(set(truth.videos) - set(curves))
    if missing:
        raise MetricsError(
            f"{len(missing)} annotated videos have no scores: {', '.join(missing[:20])}"
            + (" ..." if len(missing) > 20 else "") + "; score them or fix the annotation"
        )
    wrong = [
        f"{vid} ({len(curves[vid])} scores, {t.num_frames} annotated frames)"
        for vid, t in sorted(truth.videos.items()) if len(curves[vid]) != t.num_frames
    ]
    if wrong:
        raise MetricsError(f"{len(wrong)} curves have the wrong length: {', '.join(wrong[:20])}")
    return sorted(set(curves) - set(truth.videos))


def _per_class_auc(
    truth: GroundTruth, curves: Mapping[str, np.ndarray], normal: list[str]
) -> dict[str, float]:
    """AUC of each anomalous class's videos with all normal videos (NaN when undefined)."""
    classes = sorted({t.class_name for t in truth.videos.values()} - {NORMAL_CLASS})
    if len(classes) < 2:
        return {}  # one anomalous class (ShanghaiTech, a plain CSV): the overall AUC says it all
    out = {}
    for cls in classes:
        members = sorted(v for v, t in truth.videos.items() if t.class_name == cls) + normal
        labels = np.concatenate([truth.videos[v].frame_labels for v in members])
        scores = np.concatenate([curves[v] for v in members])
        out[cls] = roc_auc(labels, scores) if 0 < labels.sum() < labels.size else float("nan")
    return out


def score_gap(frame_labels: np.ndarray, frame_scores: np.ndarray) -> float:
    """Mean score of anomalous frames minus mean score of normal frames (NaN without both)."""
    labels = np.asarray(frame_labels).reshape(-1).astype(bool)
    scores = np.asarray(frame_scores, dtype=np.float64).reshape(-1)
    if labels.all() or not labels.any():
        return float("nan")
    return float(scores[labels].mean() - scores[~labels].mean())


def localize(truth: GroundTruth, curves: Mapping[str, np.ndarray]) -> dict:
    """The localization fields of FrameMetrics: AUC_A, its AP and ROC, the score gap inside
    anomalous videos, per-class AUC_A, and every anomalous video's own AUC and gap.

    Args:
        truth: the annotated test videos.
        curves: video id -> (num_frames,) scores, one per annotated video (checked by `align`).

    Returns:
        The FrameMetrics fields from auc_anomalous to roc_anomalous, None where undefined.
    """
    anomalous = sorted(v for v, t in truth.videos.items() if t.is_anomalous)
    per_video = []
    for vid in anomalous:
        labels, scores = truth.videos[vid].frame_labels, np.asarray(curves[vid], dtype=np.float64)
        gap = score_gap(labels, scores)
        per_video.append(VideoLocalization(
            vid, truth.videos[vid].class_name, int(labels.size), int(labels.sum()),
            video_auc(labels, scores), None if math.isnan(gap) else gap))
    labels = np.concatenate([truth.videos[v].frame_labels for v in anomalous] or [np.zeros(0)])
    scores = np.concatenate([np.asarray(curves[v], np.float64) for v in anomalous]
                            or [np.zeros(0)])
    defined = _defined(labels)
    classes = sorted({truth.videos[v].class_name for v in anomalous} - {NORMAL_CLASS})
    per_class = {}
    if len(classes) >= 2:  # as per_class_auc: one class says no more than auc_anomalous
        for cls in classes:
            members = [v for v in anomalous if truth.videos[v].class_name == cls]
            per_class[cls] = video_auc(
                np.concatenate([truth.videos[v].frame_labels for v in members]),
                np.concatenate([curves[v] for v in members]))
    own = [row.auc for row in per_video if row.auc is not None]
    return {
        "auc_anomalous": roc_auc(labels, scores) if defined else None,
        "average_precision_anomalous": average_precision(labels, scores) if defined else None,
        "score_gap_anomalous": score_gap(labels, scores) if defined else None,
        "per_class_auc_anomalous": per_class,
        "per_video": per_video,
        "video_auc_mean": float(np.mean(own)) if own else None,
        "video_auc_median": float(np.median(own)) if own else None,
        "num_video_auc_undefined": len(per_video) - len(own),
        "roc_anomalous": roc_curve(labels, scores) if defined else None,
    }


def evaluate_frames(
    truth: GroundTruth, curves: Mapping[str, np.ndarray], threshold: float = 0.5
) -> FrameMetrics:
    """All frame-level metrics of per-frame curves against ground truth.

    Args:
        truth: the annotated test videos (they define the test set).
        curves: video id -> (num_frames,) scores; must cover every annotated video.
        threshold: score for the false-alarm rate.

    Returns:
        FrameMetrics; videos scored but not annotated are listed in `unannotated` and left out.
    """
    unannotated = align(truth, curves)
    ids = sorted(truth.videos)
    labels = np.concatenate([truth.videos[v].frame_labels for v in ids])
    scores = np.concatenate([np.asarray(curves[v], dtype=np.float64) for v in ids])
    normal = [v for v in ids if not truth.videos[v].is_anomalous]
    per_class = _per_class_auc(truth, curves, normal)
    return FrameMetrics(
        auc=roc_auc(labels, scores),
        average_precision=average_precision(labels, scores),
        false_alarm_rate=(
            false_alarm_rate(np.concatenate([curves[v] for v in normal]), threshold)
            if normal else float("nan")
        ),
        threshold=threshold,
        score_gap=score_gap(labels, scores),
        per_class_auc=per_class,
        num_videos=len(ids),
        num_anomalous_videos=len(ids) - len(normal),
        num_frames=int(labels.size),
        num_anomalous_frames=int(labels.sum()),
        roc=roc_curve(labels, scores),
        **localize(truth, curves),
        unannotated=unannotated,
        warnings=list(truth.warnings),
    )
