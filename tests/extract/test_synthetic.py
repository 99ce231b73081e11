"""The synthetic video writer: lossless round trips through the real decoders, atomic writes."""

import numpy as np
import pytest

from claws.extract.synthetic import synthetic_frames, write_frame_folder, write_video
from claws.extract.video import decode_all


@pytest.mark.parametrize("codec,suffix", [("libx264rgb", ".mp4"), ("ffv1", ".mkv")])
@pytest.mark.parametrize("size", [(64, 80), (63, 81)])  # odd sizes too
def test_lossless_round_trip(tmp_path, codec, suffix, size):
    frames = synthetic_frames(33, *size, seed=3, event=(10, 20))
    path = write_video(tmp_path / f"v{suffix}", frames, fps=25.0, codec=codec)
    np.testing.assert_array_equal(decode_all(path), frames)


def test_png_frame_folder_round_trip_and_gray(tmp_path):
    frames = synthetic_frames(17, 30, 41, gray=True)
    assert (frames[..., 0] == frames[..., 2]).all()
    folder = write_frame_folder(tmp_path / "clip", frames, ext="png")
    np.testing.assert_array_equal(decode_all(folder, is_frame_folder=True), frames)


def test_event_changes_only_its_frames():
    calm = synthetic_frames(30, seed=1)
    event = synthetic_frames(30, seed=1, event=(10, 20))
    changed = np.flatnonzero((calm != event).any(axis=(1, 2, 3)))
    assert changed.min() == 10 and changed.max() == 19


def test_writer_is_atomic_on_error(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "empty.mp4", [])
    assert list(tmp_path.iterdir()) == []


def test_a_write_that_fails_midway_keeps_the_old_video_and_no_temporary(tmp_path):
    frames = synthetic_frames(20, seed=1)
    path = write_video(tmp_path / "v.mp4", frames)
    before = path.read_bytes()

    def cut_short():
        yield from frames[:10]
        raise RuntimeError("camera unplugged")

    with pytest.raises(RuntimeError, match="unplugged"):
        write_video(path, cut_short())
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["v.mp4"]
    np.testing.assert_array_equal(decode_all(path), frames)
