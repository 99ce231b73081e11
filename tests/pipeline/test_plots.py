"""PNG figures: written atomically, shaded where they should be, reference ROC curves read right."""

import numpy as np
import pytest
from matplotlib.image import imread

from claws.pipeline.events import find_events
from claws.pipeline.plots import (
    plot_curve_events,
    plot_curve_truth,
    plot_roc,
    read_reference_roc,
)


def _reddish(path):
    rgb = imread(path)[..., :3]
    return int(((rgb[..., 0] > 0.85) & (rgb[..., 1] < 0.85) & (rgb[..., 2] < 0.85)).sum())


def test_truth_shading_only_where_labelled(tmp_path):
    scores = np.linspace(0, 1, 200)
    labels = np.zeros(200, np.uint8)
    plain = plot_curve_truth(tmp_path / "plain.png", scores, labels, "normal video")
    labels[50:120] = 1
    shaded = plot_curve_truth(tmp_path / "shaded.png", scores, labels, "anomalous video")
    assert _reddish(shaded) > 20 * max(1, _reddish(plain))
    assert imread(shaded).shape[:2] == (300, 1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.png", "shaded.png"]
    with pytest.raises(ValueError, match="labels"):
        plot_curve_truth(tmp_path / "bad.png", scores, labels[:5], "bad")


def test_curve_with_events(tmp_path):
    scores = np.r_[np.full(30, 0.1), np.full(30, 0.9), np.full(40, 0.2)]
    events = find_events(scores, fps=10.0, threshold=0.5)
    path = plot_curve_events(tmp_path / "v.png", scores, 10.0, events, 0.5, "v")
    none = plot_curve_events(tmp_path / "n.png", scores, 10.0, [], 0.5, "n")
    assert path.stat().st_size > 0
    assert not np.array_equal(imread(path), imread(none))


def test_reference_roc_from_the_paper(shared_data):
    fpr, tpr = read_reference_roc(shared_data / "claws_roc" / "sheet1_ProposedCLAWSNet.csv")
    assert float(np.trapezoid(tpr, fpr)) == pytest.approx(0.8301, abs=5e-5)  # SOURCES.md


def test_reference_roc_rejects_wrong_columns(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("A,B\n0,0\n3,5\n")
    with pytest.raises(ValueError, match="outside"):
        read_reference_roc(bad)
    bad.write_text("A,B\nx,y\n")
    with pytest.raises(ValueError, match="FPR,TPR"):
        read_reference_roc(bad)


def test_roc_plot(tmp_path):
    ref = tmp_path / "ref.csv"
    ref.write_text("AH,AI\n0,0\n0.2,0.7\n1,1\n")
    fpr, tpr = np.array([0, 0.1, 1]), np.array([0, 0.8, 1])
    path = plot_roc(tmp_path / "roc.png", {"ours": (fpr, tpr, 0.85)}, {"paper": ref})
    assert imread(path).shape[:2] == (500, 550)
