"""Frame-level metrics against hand-worked examples and scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from claws.data.annotations import GroundTruth, VideoTruth
from claws.pipeline.metrics import (
    MetricsError,
    average_precision,
    evaluate_frames,
    false_alarm_rate,
    roc_auc,
    roc_curve,
    score_gap,
)


def test_hand_worked_example():
    # pairs (anomalous, normal): 0.35>0.1 yes, 0.35>0.4 no, 0.8>0.1 yes, 0.8>0.4 yes -> 3/4
    labels, scores = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    assert roc_auc(labels, scores) == pytest.approx(0.75)
    # by decreasing score: 0.8 (+) P=1 R=.5; 0.4 (-); 0.35 (+) P=2/3 R=1 -> .5*1 + .5*2/3
    assert average_precision(labels, scores) == pytest.approx(0.5 + 1 / 3)
    curve = roc_curve(labels, scores)
    np.testing.assert_allclose(curve.fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(curve.tpr, [0, 0.5, 0.5, 1, 1])


def test_ties_count_half():
    # the anomalous 1.0 beats both normals (2), the anomalous 0.5 ties both (2 x 1/2) -> 3/4
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 1.0]) == pytest.approx(0.75)


@pytest.mark.parametrize("seed", range(5))
def test_matches_scikit_learn_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(5000) < 0.1
    scores = np.round(rng.random(5000) * 0.6 + labels * 0.3, 2)  # many ties, informative
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert average_precision(labels, scores) == pytest.approx(
        average_precision_score(labels, scores), abs=1e-12
    )


def test_one_class_only_is_an_error():
    with pytest.raises(MetricsError, match="both anomalous and normal"):
        roc_auc([0, 0, 0], [0.1, 0.2, 0.3])


def test_false_alarm_rate():
    assert false_alarm_rate(np.array([0.2, 0.5, 0.7, 0.1]), 0.5) == pytest.approx(0.5)


def _truth():
    videos = {
        "arson1": VideoTruth("arson1", np.array([0, 1, 1, 0], np.uint8), "Arson"),
        "shoot1": VideoTruth("shoot1", np.array([0, 0, 1], np.uint8), "Shooting"),
        "normal1": VideoTruth("normal1", np.zeros(3, np.uint8), "Normal"),
    }
    return GroundTruth(videos, "hand-made", ["a warning"])


def _curves():
    return {
        "arson1": np.array([0.1, 0.9, 0.8, 0.3]),
        "shoot1": np.array([0.2, 0.6, 0.4]),
        "normal1": np.array([0.1, 0.5, 0.2]),
        "extra": np.array([0.5]),
    }


def test_evaluate_frames_concatenates_and_per_class():
    truth, curves = _truth(), _curves()
    result = evaluate_frames(truth, curves, threshold=0.5)
    ids = sorted(truth.videos)
    labels = np.concatenate([truth.videos[v].frame_labels for v in ids])
    scores = np.concatenate([curves[v] for v in ids])
    assert result.auc == pytest.approx(roc_auc_score(labels, scores))
    assert result.num_frames == 10 and result.num_anomalous_frames == 3
    assert result.num_videos == 3 and result.num_anomalous_videos == 2
    assert result.false_alarm_rate == pytest.approx(1 / 3)
    # Shooting: shoot1 with all normal videos
    assert result.per_class_auc["Shooting"] == pytest.approx(
        roc_auc_score([0, 0, 1, 0, 0, 0], [0.2, 0.6, 0.4, 0.1, 0.5, 0.2])
    )
    assert result.per_class_auc["Arson"] == pytest.approx(1.0)
    assert result.unannotated == ["extra"]
    assert result.to_dict()["num_warnings"] == 1
    assert result.score_gap == pytest.approx(scores[labels == 1].mean() - scores[labels == 0].mean())


def test_score_gap_by_hand():
    assert score_gap(np.array([0, 1, 1, 0]), np.array([0.2, 0.9, 0.7, 0.4])) == pytest.approx(0.5)
    # a perfect ranking of almost flat curves: AUC 1, gap 0.002
    assert roc_auc(np.array([0, 0, 1]), np.array([0.500, 0.501, 0.503])) == 1.0
    assert score_gap(np.array([0, 0, 1]), np.array([0.500, 0.501, 0.503])) == pytest.approx(0.0025)
    assert np.isnan(score_gap(np.array([0, 0]), np.array([0.1, 0.2])))


def test_mismatches_are_named():
    curves = _curves()
    del curves["shoot1"]
    with pytest.raises(MetricsError, match="no scores: shoot1"):
        evaluate_frames(_truth(), curves)
    curves = _curves()
    curves["arson1"] = curves["arson1"][:3]
    with pytest.raises(MetricsError, match=r"wrong length: arson1 \(3 scores, 4 annotated"):
        evaluate_frames(_truth(), curves)
