"""Batch windows and the random batch selector."""

from __future__ import annotations

import pytest
import torch

from claws.model.windows import num_windows, video_windows, window_order


@pytest.mark.parametrize(
    "clips,window,expected",
    [(1, 64, 1), (63, 64, 1), (64, 64, 1), (65, 64, 2), (128, 64, 2), (129, 64, 3), (5, 2, 3)],
)
def test_num_windows(clips: int, window: int, expected: int) -> None:
    assert num_windows(clips, window) == expected
    w = video_windows(clips, window)
    assert w.clip_index.shape == w.valid.shape == (expected, window)
    assert int(w.valid.sum()) == clips


def test_cyclic_padding_of_last_window() -> None:
    w = video_windows(5, 4)
    assert w.clip_index.tolist() == [[0, 1, 2, 3], [4, 0, 1, 2]]
    assert w.valid.tolist() == [[True] * 4, [True, False, False, False]]
    short = video_windows(2, 5)
    assert short.clip_index.tolist() == [[0, 1, 0, 1, 0]]
    assert short.valid.tolist() == [[True, True, False, False, False]]


def test_valid_positions_are_every_clip_once_in_order() -> None:
    w = video_windows(200, 64)
    assert w.clip_index[w.valid].tolist() == list(range(200))


def test_bad_sizes_are_errors() -> None:
    with pytest.raises(ValueError):
        video_windows(0, 64)
    with pytest.raises(ValueError):
        video_windows(10, 0)


@pytest.mark.parametrize("shuffle", [True, False])
def test_one_epoch_visits_every_window_once(shuffle: bool) -> None:
    counts = [3, 1, 5, 2]
    order = window_order(counts, shuffle=shuffle, seed=7, epoch=0)
    expected = sorted((v, k) for v, c in enumerate(counts) for k in range(c))
    assert sorted(map(tuple, order.tolist())) == expected


def test_rbs_order_depends_on_seed_and_epoch_only() -> None:
    counts = [4] * 10
    a = window_order(counts, True, seed=1, epoch=3)
    assert torch.equal(a, window_order(counts, True, seed=1, epoch=3))
    assert not torch.equal(a, window_order(counts, True, seed=1, epoch=4))
    assert not torch.equal(a, window_order(counts, True, seed=2, epoch=3))


def test_in_order_form_keeps_video_windows_consecutive() -> None:
    counts = [3, 1, 5, 2, 4]
    order = window_order(counts, shuffle=False, seed=0, epoch=0).tolist()
    runs: list[list[int]] = []
    for video, window in order:
        if not runs or runs[-1][0] != video:
            runs.append([video])
        runs[-1].append(window)
    assert len(runs) == len(counts)  # each video appears as one run
    for run in runs:
        assert run[1:] == list(range(counts[run[0]]))


def test_derived_seeds_are_distinct_per_index_and_run_and_fixed():
    from claws.model.windows import derived_seed

    seeds = {derived_seed(s, i) for s in range(3) for i in range(100_000)}
    assert len(seeds) == 300_000
    assert derived_seed(7, 12) == 7 * 1_000_003 + 12  # the streams of earlier runs are kept
