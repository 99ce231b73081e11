"""Clip arithmetic edge cases (DESIGN.md "Clips")."""

import numpy as np
import pytest

from claws.data.clips import (
    clip_frame_indices,
    clip_scores_to_frame_scores,
    num_clips,
    pad_clip_frames,
)

EDGE_CASES = [(1, 1), (15, 1), (16, 1), (17, 2), (31, 2), (32, 2), (33, 3)]


@pytest.mark.parametrize("num_frames,expected_clips", EDGE_CASES)
def test_num_clips_and_curve_length(num_frames, expected_clips):
    assert num_clips(num_frames) == expected_clips
    curve = clip_scores_to_frame_scores(np.arange(expected_clips, dtype=float), num_frames)
    assert curve.shape == (num_frames,)
    # frame f carries the score of clip f // 16
    np.testing.assert_array_equal(curve, np.arange(num_frames) // 16)


@pytest.mark.parametrize("num_frames,_", EDGE_CASES)
def test_every_frame_in_exactly_one_clip(num_frames, _):
    seen = np.concatenate(
        [np.unique(clip_frame_indices(k, num_frames)) for k in range(num_clips(num_frames))]
    )
    np.testing.assert_array_equal(np.sort(seen), np.arange(num_frames))


def test_tail_padded_with_last_frame():
    np.testing.assert_array_equal(clip_frame_indices(2, 33), [32] * 16)
    np.testing.assert_array_equal(clip_frame_indices(1, 17), [16] * 16)
    np.testing.assert_array_equal(clip_frame_indices(0, 15), list(range(15)) + [14])
    frames = np.arange(3)[:, None, None, None] * np.ones((3, 2, 2, 3), dtype=np.uint8)
    padded = pad_clip_frames(frames)
    assert padded.shape == (16, 2, 2, 3)
    assert (padded[3:] == 2).all()


def test_wrong_number_of_clip_scores_is_an_error():
    with pytest.raises(ValueError, match="expected 3 clips"):
        clip_scores_to_frame_scores(np.zeros(2), 33)
    with pytest.raises(ValueError, match="at least one frame"):
        num_clips(0)
