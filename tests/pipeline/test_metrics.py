"""Frame-level metrics against hand-worked examples and scikit-learn."""

import json

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


def _localization_truth():
    """Two classes, four anomalous videos (one anomalous from first frame to last), one normal."""
    videos = {
        "arson1": VideoTruth("arson1", np.array([0, 1, 1, 0], np.uint8), "Arson"),
        "arson2": VideoTruth("arson2", np.array([1, 1], np.uint8), "Arson"),  # all anomalous
        "shoot1": VideoTruth("shoot1", np.array([0, 0, 1], np.uint8), "Shooting"),
        "shoot2": VideoTruth("shoot2", np.array([1, 0, 0, 0], np.uint8), "Shooting"),
        "normal1": VideoTruth("normal1", np.zeros(3, np.uint8), "Normal"),
    }
    curves = {
        "arson1": np.array([0.1, 0.9, 0.8, 0.3]),
        "arson2": np.array([0.7, 0.5]),
        "shoot1": np.array([0.2, 0.6, 0.4]),
        "shoot2": np.array([0.3, 0.4, 0.2, 0.1]),
        "normal1": np.array([0.95, 0.9, 0.99]),  # the normal video cannot touch AUC_A
    }
    return GroundTruth(videos, "hand-made"), curves


def test_localization_hand_worked():
    truth, curves = _localization_truth()
    result = evaluate_frames(truth, curves)
    # AUC_A: frames of the 4 anomalous videos only. Anomalous 0.9 0.8 0.7 0.5 0.4 0.3 against
    # normal 0.1 0.3 0.2 0.6 0.4 0.2 0.1: 0.9, 0.8, 0.7 beat all 7 (21); 0.5 beats 6; 0.4 beats 5
    # and ties one (5.5); 0.3 beats 4 and ties one (4.5) -> 37 / 42
    assert result.auc_anomalous == pytest.approx(37 / 42)
    # AP_A by decreasing threshold (recall step x precision): 0.9, 0.8, 0.7 each +1/6 at P 1;
    # 0.6 a normal frame; 0.5 +1/6 at P 4/5; 0.4 (one of each) +1/6 at 5/7; 0.3 (one of each)
    # +1/6 at 6/9
    assert result.average_precision_anomalous == pytest.approx((3 + 4 / 5 + 5 / 7 + 6 / 9) / 6)
    labels_a = np.array([0, 1, 1, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0])
    scores_a = np.array([0.1, 0.9, 0.8, 0.3, 0.7, 0.5, 0.2, 0.6, 0.4, 0.3, 0.4, 0.2, 0.1])
    assert result.average_precision_anomalous == pytest.approx(
        average_precision_score(labels_a, scores_a), abs=1e-12)
    # inside anomalous videos: event frames mean 3.6 / 6, their normal frames 1.9 / 7
    assert result.score_gap_anomalous == pytest.approx(0.6 - 1.9 / 7)
    # each video's own AUC: arson1 1 (both events above both normals); shoot1 0.4 vs 0.2, 0.6
    # -> 1/2; shoot2 0.3 vs 0.4, 0.2, 0.1 -> 2/3; arson2 is anomalous throughout: undefined
    per_video = {v.video_id: v for v in result.per_video}
    assert sorted(per_video) == ["arson1", "arson2", "shoot1", "shoot2"]  # no normal video
    assert per_video["arson1"].auc == pytest.approx(1.0)
    assert per_video["shoot1"].auc == pytest.approx(0.5)
    assert per_video["shoot2"].auc == pytest.approx(2 / 3)
    assert per_video["arson2"].auc is None and per_video["arson2"].score_gap is None
    assert per_video["shoot2"].score_gap == pytest.approx(0.3 - 0.7 / 3)
    assert result.video_auc_mean == pytest.approx((1 + 0.5 + 2 / 3) / 3)
    assert result.video_auc_median == pytest.approx(2 / 3)
    assert result.num_video_auc_undefined == 1
    # per class: Arson's frames 0 1 1 0 1 1 against 0.1 0.9 0.8 0.3 0.7 0.5 -> 1; Shooting's
    # events 0.4 and 0.3 against 0.2 0.6 0.4 0.2 0.1: 3 + 1/2 and 3 -> 6.5 / 10
    assert result.per_class_auc_anomalous == pytest.approx({"Arson": 1.0, "Shooting": 0.65})


def test_localization_json_says_undefined_as_null():
    truth, curves = _localization_truth()
    out = json.loads(json.dumps(evaluate_frames(truth, curves).to_dict(), allow_nan=False))
    rows = {row["video_id"]: row for row in out["per_video"]}
    assert rows["arson2"]["auc"] is None and rows["arson2"]["score_gap"] is None
    assert rows["arson2"]["num_anomalous_frames"] == 2 and rows["arson2"]["num_frames"] == 2
    assert out["num_video_auc_undefined"] == 1
    assert out["auc_anomalous"] == pytest.approx(37 / 42)


def test_nothing_undefined_is_written_as_nan():
    # no normal video: the false-alarm rate and the per-class AUC are undefined; valid JSON
    # has no NaN, so they must come out as null
    truth, curves = _localization_truth()
    del truth.videos["normal1"], curves["normal1"]
    out = json.loads(json.dumps(evaluate_frames(truth, curves).to_dict(), allow_nan=False))
    assert out["false_alarm_rate"] is None


def test_localization_with_only_fully_anomalous_videos_is_undefined():
    videos = {"a": VideoTruth("a", np.ones(3, np.uint8), "Arson"),
              "n": VideoTruth("n", np.zeros(3, np.uint8), "Normal")}
    result = evaluate_frames(GroundTruth(videos, "hand-made"),
                             {"a": np.array([0.9, 0.8, 0.7]), "n": np.array([0.1, 0.2, 0.3])})
    assert result.auc == 1.0
    assert result.auc_anomalous is None and result.average_precision_anomalous is None
    assert result.score_gap_anomalous is None
    assert result.video_auc_mean is None and result.video_auc_median is None
    assert result.num_video_auc_undefined == 1


@pytest.mark.parametrize("seed", range(3))
def test_localization_matches_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    videos, curves = {}, {}
    for i in range(12):
        n = int(rng.integers(40, 300))
        labels = np.zeros(n, np.uint8)
        if i % 3:  # two anomalous videos in three, events of random place and length
            start = int(rng.integers(0, n - 5))
            labels[start:start + int(rng.integers(5, n - start + 1))] = 1
        name = f"v{i}"
        videos[name] = VideoTruth(name, labels, ("Arson", "Shooting")[i % 2] if i % 3 else "Normal")
        curves[name] = np.round(rng.random(n) * 0.7 + labels * 0.2, 2)  # ties
    result = evaluate_frames(GroundTruth(videos, "random"), curves)
    anomalous = [v for v in sorted(videos) if videos[v].frame_labels.any()]
    labels = np.concatenate([videos[v].frame_labels for v in anomalous])
    scores = np.concatenate([curves[v] for v in anomalous])
    assert result.auc_anomalous == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert result.average_precision_anomalous == pytest.approx(
        average_precision_score(labels, scores), abs=1e-12)
    own = {}
    for v in anomalous:
        if 0 < videos[v].frame_labels.sum() < videos[v].num_frames:
            own[v] = roc_auc_score(videos[v].frame_labels, curves[v])
    got = {row.video_id: row.auc for row in result.per_video if row.auc is not None}
    assert got == pytest.approx(own)
    assert result.video_auc_mean == pytest.approx(np.mean(list(own.values())))
    assert result.video_auc_median == pytest.approx(np.median(list(own.values())))
    for cls in ("Arson", "Shooting"):
        members = [v for v in anomalous if videos[v].class_name == cls]
        assert result.per_class_auc_anomalous[cls] == pytest.approx(roc_auc_score(
            np.concatenate([videos[v].frame_labels for v in members]),
            np.concatenate([curves[v] for v in members])), abs=1e-12)
