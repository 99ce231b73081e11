"""Streaming decode: chunks, frame folders, truncated and unreadable files."""

import numpy as np
import pytest

from claws.extract.synthetic import synthetic_frames, write_frame_folder, write_video
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


def test_truncated_real_video_keeps_what_decodes_and_says_so(tmp_path, shared_data, caplog):
    data = (shared_data / "videos" / "vtest.avi").read_bytes()
    cut = tmp_path / "vtest_cut.avi"
    cut.write_bytes(data[: len(data) // 4])
    frames = decode_all(cut)
    assert 0 < len(frames) < 795 and frames.shape[1:] == (576, 768, 3)
    # decord indexes only the frames present; the AVI header still claims 795
    assert f"{cut}: kept {len(frames)} of 795 frames" in caplog.text


def _faststart_copy(source, target):
    """`source` remuxed with its index (moov atom) before the data, as web-ready MP4s are."""
    import av

    with av.open(str(source)) as inp, \
            av.open(str(target), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(video=0):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return target


def test_cut_mp4_with_index_first_keeps_the_frames_before_the_cut(tmp_path, caplog):
    """decord cannot open an MP4 whose data ends early; PyAV decodes up to the cut, exactly."""
    frames = synthetic_frames(60, 32, 40)
    whole = _faststart_copy(write_video(tmp_path / "v.mp4", frames), tmp_path / "fast.mp4")
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    reader = open_video(cut, False)
    kept = np.concatenate(list(reader.chunks(16)))
    assert 0 < len(kept) < 60 and reader.reported_frames == 60 and reader.fps == 25.0
    np.testing.assert_array_equal(kept, frames[: len(kept)])
    assert f"{cut}: kept {len(kept)} of 60 frames" in caplog.text


def test_cut_real_mp4_keeps_what_decodes(tmp_path, shared_data, caplog):
    cut = tmp_path / "ww.mp4"  # the first 100 kB: the index and 34 frames of 5402
    cut.write_bytes((shared_data / "videos" / "wannaworktogether.mp4").read_bytes()[:100_000])
    frames = decode_all(cut)
    assert 0 < len(frames) < 5402 and frames.ndim == 4 and frames.shape[-1] == 3
    assert f"kept {len(frames)} of 5402 frames" in caplog.text


def test_cut_mkv_warns_against_the_duration(tmp_path, caplog):
    """Matroska stores no frame count; the duration in its header says how many to expect."""
    path = write_video(tmp_path / "v.mkv", synthetic_frames(100, 32, 40), codec="ffv1")
    data = path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    frames = decode_all(cut)
    assert 0 < len(frames) < 100
    assert f"{cut}: kept {len(frames)} of about 100 frames" in caplog.text


@pytest.mark.parametrize("codec,suffix", [("libx264rgb", ".mp4"), ("ffv1", ".mkv"), ("mpeg4", ".avi")])
def test_complete_videos_decode_without_a_warning(tmp_path, caplog, codec, suffix):
    frames = synthetic_frames(37, 32, 40)
    assert len(decode_all(write_video(tmp_path / f"v{suffix}", frames, codec=codec))) == 37
    assert "kept" not in caplog.text


@pytest.mark.parametrize("content,match", [(b"", "empty file"), (b"\x00garbage" * 500, "unreadable")])
def test_unreadable_inputs_raise_with_reason(tmp_path, content, match):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(DecodeError, match=match):
        open_video(path, False)


def test_truncated_mp4_without_index_is_unreadable(tmp_path):
    """An MP4 written index-last (moov after the data) and cut loses its index: nothing decodes."""
    path = write_video(tmp_path / "v.mp4", synthetic_frames(60, 32, 40))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DecodeError, match="cut.mp4: unreadable video"):
        open_video(cut, False)


def test_non_utf8_file_name_decodes(tmp_path):
    """decord takes only UTF-8 paths; PyAV opens the file by its bytes."""
    import os

    frames = synthetic_frames(20, 32, 40)
    odd = os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.mp4")  # Latin-1: not UTF-8
    write_video(tmp_path / "v.mp4", frames).rename(odd)
    np.testing.assert_array_equal(decode_all(odd), frames)


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
