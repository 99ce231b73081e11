"""PNG figures: written atomically, shaded where they should be, reference ROC curves read right.

The curve figures are checked on the matplotlib Figure itself: what is drawn on top, the x axis
unit, the threshold line, the legend.
"""

import numpy as np
import pytest
from matplotlib.image import imread
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle, StepPatch

from claws.pipeline.scoring.events import find_events
from claws.pipeline.evaluation.plots import (
    plot_curve_truth,
    plot_roc,
    plot_video_auc,
    read_reference_roc,
    video_auc_figure,
)
from claws.pipeline.scoring.plots import (
    CURVE_COLOR,
    EVENT_COLOR,
    THRESHOLD_COLOR,
    TRUTH_COLOR,
    curve_figure,
    plot_curve_events,
)


def _reddish(path):
    rgb = imread(path)[..., :3]
    return int(((rgb[..., 0] > 0.85) & (rgb[..., 1] < 0.85) & (rgb[..., 2] < 0.85)).sum())


def test_truth_shading_only_where_labelled(tmp_path):
    scores = np.linspace(0, 1, 200)
    labels = np.zeros(200, np.uint8)
    plain = plot_curve_truth(tmp_path / "plain.png", scores, 25.0, labels, 0.5, "normal video")
    labels[50:120] = 1
    shaded = plot_curve_truth(tmp_path / "shaded.png", scores, 25.0, labels, 0.5,
                              "anomalous video")
    assert _reddish(shaded) > 20 * max(1, _reddish(plain))
    assert imread(shaded).shape[:2] == (320, 1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.png", "shaded.png"]
    with pytest.raises(ValueError, match="labels"):
        plot_curve_truth(tmp_path / "bad.png", scores, 25.0, labels[:5], 0.5, "bad")


def test_curve_with_events(tmp_path):
    scores = np.r_[np.full(30, 0.1), np.full(30, 0.9), np.full(40, 0.2)]
    events = find_events(scores, fps=10.0, threshold=0.5)
    path = plot_curve_events(tmp_path / "v.png", scores, 10.0, events, 0.5, "v")
    none = plot_curve_events(tmp_path / "n.png", scores, 10.0, [], 0.5, "n")
    assert path.stat().st_size > 0
    assert not np.array_equal(imread(path), imread(none))


def _artists(fig):
    """(the curve, the threshold lines, the shaded spans) of a curve figure's main axes."""
    ax = fig.axes[0]
    (curve,) = [p for p in ax.patches if isinstance(p, StepPatch)]
    lines = [line for line in ax.lines if isinstance(line, Line2D)]
    spans = [p for p in ax.patches if isinstance(p, Rectangle)]
    return ax, curve, lines, spans


def _curve_of_both_kinds(fps):
    """A score plot and a report plot of the same 100-frame curve, threshold 0.4."""
    scores = np.r_[np.full(30, 0.1), np.full(30, 0.9), np.full(40, 0.2)]
    labels = (np.arange(100) >= 20).astype(np.uint8)
    events = find_events(scores, fps=fps if (fps or 0) > 0 else 10.0, threshold=0.4)
    return scores, {
        "score": curve_figure(scores, fps, 0.4, "v: score", events=events),
        "report": curve_figure(scores, fps, 0.4, "v: report", frame_labels=labels),
    }


@pytest.mark.parametrize("kind", ["score", "report"])
def test_curve_is_drawn_on_top_of_every_shaded_span(kind):
    # a whole-video event: the curve used to turn grey under the orange span
    scores = np.full(50, 0.8)
    if kind == "score":
        fig = curve_figure(scores, 10.0, 0.5, "v", events=find_events(scores, 10.0, 0.5))
    else:
        fig = curve_figure(scores, 10.0, 0.5, "v", frame_labels=np.ones(50, np.uint8))
    _, curve, lines, spans = _artists(fig)
    assert spans, "nothing shaded"
    assert all(curve.get_zorder() > span.get_zorder() for span in spans)
    assert all(curve.get_zorder() > line.get_zorder() for line in lines)
    assert curve.get_alpha() in (None, 1.0)


@pytest.mark.parametrize("fps", [10.0, 25.0])
def test_both_kinds_share_a_time_axis_in_seconds(fps):
    scores, figures = _curve_of_both_kinds(fps)
    for kind, fig in figures.items():
        ax, curve, _, spans = _artists(fig)
        edges = curve.get_data().edges
        assert edges == pytest.approx(np.arange(101) / fps), kind
        assert ax.get_xlim() == pytest.approx((0.0, 100 / fps)), kind
        assert "(s)" in ax.get_xlabel(), kind
        (top,) = ax.child_axes  # the frame numbers on a secondary axis
        assert "frame" in top.get_xlabel(), kind
        # spans in seconds too: the event frames 30..60, the ground truth frames 20..100
        x0, x1 = spans[0].get_x(), spans[0].get_x() + spans[0].get_width()
        want = (30 / fps, 60 / fps) if kind == "score" else (20 / fps, 100 / fps)
        assert (x0, x1) == pytest.approx(want), kind


@pytest.mark.parametrize("fps", [None, 0.0, float("nan")])
def test_unknown_fps_falls_back_to_frames_and_says_so(fps):
    _, figures = _curve_of_both_kinds(fps)
    for kind, fig in figures.items():
        ax, curve, _, _ = _artists(fig)
        assert curve.get_data().edges == pytest.approx(np.arange(101)), kind
        assert "frame" in ax.get_xlabel() and "fps unknown" in ax.get_xlabel(), kind
        assert not ax.child_axes, kind


@pytest.mark.parametrize("threshold", [0.25, 0.5, 0.8])
def test_threshold_line_at_its_value_and_labelled(threshold):
    scores = np.linspace(0, 1, 40)
    for fig in (curve_figure(scores, 10.0, threshold, "v", events=[]),
                curve_figure(scores, 10.0, threshold, "v", frame_labels=np.zeros(40))):
        _, _, lines, _ = _artists(fig)
        (line,) = lines
        assert np.all(np.asarray(line.get_ydata()) == threshold)
        assert f"{threshold:g}" in line.get_label()
    assert not _artists(curve_figure(scores, 10.0, None, "v"))[2]
    fig = curve_figure(scores, 10.0, 0.5, "v", threshold_use="events last >= 1 s")
    assert _artists(fig)[2][0].get_label() == "threshold 0.5 (events last >= 1 s)"


def test_one_colour_per_meaning_and_a_legend_outside_the_curve():
    _, figures = _curve_of_both_kinds(10.0)
    for kind, fig in figures.items():
        _, curve, (line,), spans = _artists(fig)
        shade = EVENT_COLOR if kind == "score" else TRUTH_COLOR
        assert curve.get_edgecolor()[:3] == pytest.approx(_rgb(CURVE_COLOR)), kind
        assert line.get_color() == THRESHOLD_COLOR, kind
        assert all(s.get_facecolor()[:3] == pytest.approx(_rgb(shade)) for s in spans), kind
        (legend,) = fig.legends  # a figure legend, outside the axes
        labels = [t.get_text() for t in legend.get_texts()]
        assert labels[:2] == ["anomaly score", "threshold 0.4"], kind
        assert len(labels) == 3, kind  # one entry for all the spans of a kind
    assert EVENT_COLOR != TRUTH_COLOR


def _rgb(color):
    from matplotlib.colors import to_rgb

    return to_rgb(color)


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


def test_reference_roc_with_a_byte_order_mark(tmp_path, with_bom):
    fpr, tpr = read_reference_roc(with_bom(tmp_path / "ref.csv", "FPR,TPR\n0,0\n0.5,0.75\n1,1\n"))
    assert fpr.tolist() == [0, 0.5, 1] and tpr.tolist() == [0, 0.75, 1]


def test_roc_plot(tmp_path):
    ref = tmp_path / "ref.csv"
    ref.write_text("AH,AI\n0,0\n0.2,0.7\n1,1\n")
    fpr, tpr = np.array([0, 0.1, 1]), np.array([0, 0.8, 1])
    path = plot_roc(tmp_path / "roc.png", {"ours": (fpr, tpr, 0.85)}, {"paper": ref})
    assert imread(path).shape[:2] == (500, 550)


def test_video_auc_bars_worst_on_top_undefined_named_not_drawn(tmp_path):
    fig = video_auc_figure({"a": 0.9, "b": 0.3, "c": None, "d": 0.6}, "own AUC")
    ax = fig.axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    # bottom to top: best to worst, so the worst-localized video is read first
    assert [round(b.get_width(), 3) for b in sorted(bars, key=lambda b: b.get_y())] == [0.9, 0.6, 0.3]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "d", "b"]
    assert "undefined, anomalous throughout (1): c" in ax.get_title(loc="left")
    path = plot_video_auc(tmp_path / "v.png", {"a": 0.9, "c": None}, "own AUC")
    assert imread(path).shape[1] == 650 and sorted(p.name for p in tmp_path.iterdir()) == ["v.png"]
