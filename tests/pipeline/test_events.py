"""Events on hand-made curves: threshold, merge gap, minimum duration, times, peak and mean."""

import numpy as np
import pytest

from claws.pipeline.scoring.events import above_threshold_runs, find_events

#                  0    1    2    3    4    5    6    7    8    9   10   11
CURVE = np.array([0.1, 0.6, 0.8, 0.2, 0.7, 0.1, 0.1, 0.1, 0.9, 0.1, 0.5, 0.5])


def test_runs():
    assert above_threshold_runs(CURVE, 0.5) == [(1, 3), (4, 5), (8, 9), (10, 12)]
    assert above_threshold_runs(np.zeros(4), 0.5) == []
    assert above_threshold_runs(np.ones(3), 0.5) == [(0, 3)]


def test_plain_events_have_times_peak_and_mean():
    events = find_events(CURVE, fps=2.0, threshold=0.5)
    assert [(e.start_frame, e.end_frame) for e in events] == [(1, 3), (4, 5), (8, 9), (10, 12)]
    first = events[0]
    assert (first.start_s, first.end_s) == (0.5, 1.5)
    assert first.peak == pytest.approx(0.8) and first.peak_frame == 2
    assert first.mean == pytest.approx(0.7)


def test_merge_gap_then_min_duration():
    # gap of 1 frame (frame 3) = 0.5 s merges; the 3-frame gap 5..7 (1.5 s) does not
    events = find_events(CURVE, fps=2.0, threshold=0.5, merge_gap_s=0.5)
    assert [(e.start_frame, e.end_frame) for e in events] == [(1, 5), (8, 12)]
    assert events[0].mean == pytest.approx((0.6 + 0.8 + 0.2 + 0.7) / 4)
    assert events[1].peak_frame == 8
    # at least 1.5 s = 3 frames: the 1-frame and 2-frame runs go
    events = find_events(CURVE, fps=2.0, threshold=0.5, min_duration_s=1.5)
    assert events == []
    events = find_events(CURVE, fps=2.0, threshold=0.5, min_duration_s=1.0)
    assert [(e.start_frame, e.end_frame) for e in events] == [(1, 3), (10, 12)]


def test_bad_arguments():
    with pytest.raises(ValueError, match="fps"):
        find_events(CURVE, fps=0)
    with pytest.raises(ValueError):
        find_events(CURVE, fps=1, merge_gap_s=-1)
