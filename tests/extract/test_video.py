"""Streaming decode: chunks, frame folders, truncated and unreadable files."""

import numpy as np
import pytest

from claws.data.synthetic import synthetic_frames, write_frame_folder, write_video
from claws.extract.video import DecodeError, decode_all, open_video


def test_chunks_are_bounded_and_complete(tmp_path):
    frames = synthetic_frames(70, 32, 40)
    path = write_video(tmp_path / "v.mp4", frames)
    reader = open_video(path, False)
    chunks = list(reader.chunks(32))
    assert [len(c) for c in chunks] == [32, 32, 6]
    np.testing.assert_array_equal(np.concatenate(chunks), frames)
    assert reader.fps == 25.0 and reader.reported_frames == 70


def test_real_frame_folder(shared_data):
    frames = decode_all(shared_data / "frames" / "roger", is_frame_folder=True)
    assert frames.shape[0] == 16 and frames.dtype == np.uint8 and frames.shape[-1] == 3


def test_frame_folder_natural_order(tmp_path):
    frames = synthetic_frames(12, 16, 16, seed=5)
    folder = tmp_path / "f"
    folder.mkdir()
    write_frame_folder(tmp_path / "tmp", frames, ext="png", digits=1)
    for p in (tmp_path / "tmp").iterdir():  # 0.png ... 11.png: lexical order would put 10 before 2
        p.rename(folder / p.name)
    np.testing.assert_array_equal(decode_all(folder, is_frame_folder=True), frames)


def test_truncated_real_video_keeps_what_decodes(tmp_path, shared_data):
    data = (shared_data / "videos" / "vtest.avi").read_bytes()
    cut = tmp_path / "vtest_cut.avi"
    cut.write_bytes(data[: len(data) // 4])
    frames = decode_all(cut)
    assert 0 < len(frames) < 795 and frames.shape[1:] == (576, 768, 3)


@pytest.mark.parametrize("content,match", [(b"", "empty file"), (b"\x00garbage" * 500, "unreadable")])
def test_unreadable_inputs_raise_with_reason(tmp_path, content, match):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(DecodeError, match=match):
        open_video(path, False)


def test_truncated_mp4_without_index_is_unreadable(tmp_path, shared_data):
    cut = tmp_path / "ww.mp4"
    cut.write_bytes((shared_data / "videos" / "wannaworktogether.mp4").read_bytes()[:100_000])
    with pytest.raises(DecodeError, match="ww.mp4"):
        open_video(cut, False)


def test_empty_frame_folder(tmp_path):
    (tmp_path / "none").mkdir()
    with pytest.raises(DecodeError, match="zero frames"):
        open_video(tmp_path / "none", True)


def test_sizes_decord_gets_wrong_fall_back_to_pyav(tmp_path):
    frames = synthetic_frames(20, 40, 48)  # decord 0.6 fails to copy 48x40 frames
    path = write_video(tmp_path / "v.mp4", frames)
    np.testing.assert_array_equal(decode_all(path, chunk_frames=16), frames)


@pytest.mark.parametrize("codec,suffix", [("libx264rgb", ".mp4"), ("ffv1", ".mkv")])
def test_slow_consumer_gets_the_same_frames_after_read_ahead_is_dropped(tmp_path, monkeypatch, codec,
                                                                      suffix):
    """The reader flushes decord's read-ahead with a seek after every chunk
    (bounded memory); the frames must still be exactly the ones written, across keyframes."""
    import time

    frames = synthetic_frames(90, 32, 40)
    path = write_video(tmp_path / f"v{suffix}", frames, codec=codec)  # x264: one keyframe, seeks decode
    reader = open_video(path, False)
    flushes = []
    original = reader._drop_read_ahead
    monkeypatch.setattr(reader, "_drop_read_ahead", lambda: (flushes.append(1), original()))
    chunks = []
    for chunk in reader.chunks(16):
        chunks.append(chunk)
        time.sleep(0.05)  # slower than decoding 16 tiny frames
    np.testing.assert_array_equal(np.concatenate(chunks), frames)
    assert len(flushes) == 5  # after every chunk but the last
