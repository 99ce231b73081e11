"""Streaming decode: chunks, frame folders, truncated and unreadable files."""

import itertools

import numpy as np
import pytest

import claws.extract.video as video

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


@pytest.mark.parametrize("height,width", [(40, 48), (33, 47), (3, 5)])
def test_odd_and_small_frame_sizes_decode_exactly(tmp_path, height, width):
    frames = synthetic_frames(20, height, width)  # 48x40: a size decord 0.6 failed to copy
    path = write_video(tmp_path / "v.mp4", frames)
    np.testing.assert_array_equal(decode_all(path, chunk_frames=16), frames)


def test_grayscale_video_comes_out_rgb(tmp_path):
    import av

    gray = synthetic_frames(12, 24, 32, gray=True)[..., 0]
    path = tmp_path / "gray.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.height, stream.width, stream.pix_fmt = 24, 32, "gray"
        for frame in gray:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="gray")))
        container.mux(stream.encode(None))
    frames = decode_all(path)
    assert frames.shape == (12, 24, 32, 3)
    np.testing.assert_array_equal(frames, np.repeat(gray[..., None], 3, axis=-1))


def test_a_stream_that_changes_size_keeps_the_first_size(tmp_path, caplog):
    """Two MPEG-TS segments of different sizes, concatenated (as a capture restarted midway)."""
    import av

    data = b""
    for seed, (height, width) in enumerate([(32, 48), (64, 80)]):
        segment = tmp_path / f"{seed}.ts"
        with av.open(str(segment), "w") as container:
            stream = container.add_stream("mpeg2video", rate=25)
            stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
            for frame in synthetic_frames(10, height, width, seed=seed):
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode(None))
        data += segment.read_bytes()
    (tmp_path / "both.ts").write_bytes(data)
    frames = decode_all(tmp_path / "both.ts", chunk_frames=4)
    assert frames.shape[1:] == (32, 48, 3) and len(frames) > 10
    assert caplog.text.count("the frame size changes from 48x32 to 80x64") == 1


def _counting_decoder(monkeypatch):
    """Counts the frames video.py decodes (its one decoding loop, `_decoded`)."""
    decoded = []
    original = video._decoded

    def counting(container, stream):
        for frame in original(container, stream):
            decoded.append(1)
            yield frame

    monkeypatch.setattr(video, "_decoded", counting)
    return decoded


@pytest.mark.parametrize("codec,suffix", [("libx264rgb", ".mp4"), ("ffv1", ".mkv"), ("mpeg4", ".avi")])
def test_slow_consumer_gets_every_frame_decoded_once_and_nothing_ahead(tmp_path, monkeypatch, codec,
                                                                       suffix):
    """Decoding happens on demand: a consumer slower than the decoder finds nothing decoded
    ahead of the chunk it asked for (bounded memory without decord's read-ahead flush), and every
    frame, the one decoded when the file is opened included, is decoded exactly once."""
    import time

    frames = synthetic_frames(90, 32, 40)
    path = write_video(tmp_path / f"v{suffix}", frames, codec=codec)
    decoded = _counting_decoder(monkeypatch)
    reader = open_video(path, False)
    assert len(decoded) == 1  # the frame that proves the file decodes
    chunks = []
    for chunk in reader.chunks(16):
        chunks.append(chunk)
        assert len(decoded) <= sum(map(len, chunks)) + 1  # at most the next frame's packet ahead
        time.sleep(0.02)
    assert len(decoded) == 90
    if codec != "mpeg4":  # lossless: exactly the frames written
        np.testing.assert_array_equal(np.concatenate(chunks), frames)
    assert [len(c) for c in chunks] == [16] * 5 + [10]


def test_reading_twice_gives_the_same_frames(tmp_path):
    frames = synthetic_frames(40, 32, 40)
    reader = open_video(write_video(tmp_path / "v.mp4", frames), False)
    first, second = (np.concatenate(list(reader.chunks(16))) for _ in range(2))
    np.testing.assert_array_equal(first, frames)
    np.testing.assert_array_equal(second, frames)


def _reference_frames(path):
    """PyAV's documented per-frame API, single-threaded, one frame at a time."""
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def _assert_same_stream(ours, reference):
    """Frame-by-frame equality of two frame iterators (streamed: vtest.avi is 1 GB decoded)."""
    count = 0
    for count, (a, b) in enumerate(itertools.zip_longest(ours, reference), 1):
        assert a is not None and b is not None, f"frame counts differ at frame {count - 1}"
        assert a.shape == b.shape and np.array_equal(a, b), f"frame {count - 1} differs"
    return count


SHARED_VIDEOS = [("vtest.avi", 795), ("Megamind.avi", 270), ("Megamind_bugy.avi", 270),
                 pytest.param("wannaworktogether.mp4", 5402, marks=pytest.mark.slow)]


@pytest.mark.parametrize("name,frames", SHARED_VIDEOS)
def test_shared_videos_decode_identically_to_the_reference(shared_data, name, frames):
    """Every frame of the real videos, chunked, with decoder threads, equals the reference's."""
    path = shared_data / "videos" / name
    reader = open_video(path, False, threads=2)  # frame threading must not change a pixel
    ours = (frame for chunk in reader.chunks(128) for frame in chunk)
    assert _assert_same_stream(ours, _reference_frames(path)) == frames == reader.reported_frames


@pytest.mark.slow  # decord 0.6 is the slow one: ~4 s quiet, 12 s on the shared CPU
def test_shared_video_agrees_with_decord(shared_data):
    """An independent decoder (decord 0.6, FFmpeg 4, whole video in one batch, no seek) gives the
    same pixels on an MPEG-4 video with B-frames (where decord's seek flush, the reader before
    issue 13, returned frame 30 as frame 128). vtest.avi (MS-MPEG4) differs between FFmpeg
    versions by up to 2 levels (bench/decoders.py), so it is not compared here."""
    decord = pytest.importorskip("decord", reason="decord not installed (only this cross-check uses it)")
    path = shared_data / "videos" / "Megamind.avi"
    reader = decord.VideoReader(str(path), num_threads=1)
    theirs = reader.get_batch(list(range(len(reader)))).asnumpy()
    np.testing.assert_array_equal(decode_all(path), theirs)


# How each video ending of claws.data.videos.VIDEO_SUFFIXES is written here with PyAV's bundled
# FFmpeg: (muxer, codec, width, height). FFmpeg chooses the demuxer by the file's content, so
# this checks that the reader opens every container kind the list admits.
CONTAINERS = {
    ".mp4": ("mp4", "libx264"), ".m4v": ("mp4", "libx264"), ".mov": ("mov", "libx264"),
    ".qt": ("mov", "mpeg4"), ".3gp": ("3gp", "h263", 176, 144), ".3g2": ("3g2", "h263", 176, 144),
    ".mj2": ("mp4", "jpeg2000"), ".f4v": ("f4v", "libx264"), ".avi": ("avi", "mpeg4"),
    ".divx": ("avi", "mpeg4"), ".mkv": ("matroska", "libx264"), ".webm": ("webm", "libvpx"),
    ".flv": ("flv", "flv"), ".wmv": ("asf", "wmv2"), ".asf": ("asf", "msmpeg4"),
    ".dvr-ms": ("asf", "msmpeg4"), ".wtv": ("wtv", "mpeg2video"),
    ".mpg": ("mpeg", "mpeg1video"), ".mpeg": ("mpeg", "mpeg2video"), ".mpe": ("mpeg", "mpeg1video"),
    ".m1v": ("mpeg1video", "mpeg1video"), ".m2v": ("mpeg2video", "mpeg2video"),
    ".vob": ("vob", "mpeg2video"), ".ts": ("mpegts", "libx264"), ".m2ts": ("mpegts", "mpeg2video"),
    ".mts": ("mpegts", "libx264"), ".m2t": ("mpegts", "mpeg2video"), ".ogv": ("ogg", "libvpx"),
    ".ogg": ("ogg", "libvpx"), ".ogm": ("ogg", "libvpx"), ".dv": ("dv", "dvvideo", 720, 480),
    ".mxf": ("mxf", "mpeg2video", 720, 576), ".nut": ("nut", "ffv1"),
    ".y4m": ("yuv4mpegpipe", "rawvideo"), ".ivf": ("ivf", "libvpx"), ".h264": ("h264", "libx264"),
    ".264": ("h264", "libx264"), ".h265": ("hevc", "libx265"), ".265": ("hevc", "libx265"),
    ".hevc": ("hevc", "libx265"), ".mjpeg": ("mjpeg", "mjpeg"), ".mjpg": ("mjpeg", "mjpeg"),
    ".rm": ("rm", "rv10"), ".rmvb": ("rm", "rv20"),
}
# Listed but not writable with PyAV's FFmpeg: read by FFmpeg's demuxer of that name.
NOT_WRITABLE = {".dav": "dhav (Dahua recorders): FFmpeg has no muxer for it"}


def _write_container(path, muxer: str, codec: str, width: int = 64, height: int = 48) -> None:
    import av

    pixels = {"mjpeg": "yuvj420p", "dvvideo": "yuv411p", "jpeg2000": "rgb24"}.get(codec, "yuv420p")
    with av.open(str(path), "w", format=muxer) as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pixels
        for frame in synthetic_frames(20, height, width):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))


def test_the_container_table_covers_the_video_list():
    from claws.data.videos import VIDEO_SUFFIXES

    assert set(CONTAINERS) | set(NOT_WRITABLE) == set(VIDEO_SUFFIXES)


@pytest.mark.parametrize("suffix", sorted(CONTAINERS))
def test_every_listed_container_decodes(tmp_path, suffix):
    path = tmp_path / f"cam{suffix}"
    _write_container(path, *CONTAINERS[suffix])
    frames = decode_all(path)
    assert frames.shape[0] == 20 and frames.dtype == np.uint8


def _write_rotated(path, frames, degrees: int, hflip: bool = False, fps: float = 10.0):
    """A lossless H.264 (RGB) MP4 whose display matrix says: rotate `degrees` counterclockwise,
    then mirror when `hflip` (PyAV's set_display_rotation; phones write 90 or 270)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb", rate=int(fps), options={"crf": "0"})
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "rgb24"
        stream.set_display_rotation(degrees, hflip=hflip)
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("degrees", [90, -90, 180, 270])
def test_rotated_phone_footage_is_turned_upright_as_players_show_it(tmp_path, degrees):
    """Also noticed in issue 20: the display matrix was ignored, so footage a phone recorded
    upright reached C3D sideways. Frames come out as a player shows them: OpenCV's FFmpeg
    reader (orientation applied by default) is the independent player here."""
    import cv2

    frames = synthetic_frames(5, 24, 40, seed=2)  # 24 x 40: a turn swaps the sides
    path = _write_rotated(tmp_path / "phone.mp4", frames, degrees)
    reader = open_video(path, False)
    shown = np.concatenate(list(reader.chunks(8)))
    np.testing.assert_array_equal(shown, np.rot90(frames, degrees // 90, axes=(1, 2)))
    assert (reader.rotation, reader.mirrored) == (degrees % 360, False)
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    ok, player = capture.read()
    capture.release()
    assert ok and player.shape == shown[0].shape
    np.testing.assert_array_equal(player[..., ::-1], shown[0])  # BGR; lossless, so exact


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_mirrored_display_matrices_are_applied_too(tmp_path, degrees):
    """The four mirrored orientations (EXIF 2, 4, 5, 7): turn, then mirror left-right, as the
    matrix PyAV writes says (FFmpeg's player turns and flips the same way)."""
    frames = synthetic_frames(3, 24, 40, seed=3)
    path = _write_rotated(tmp_path / "m.mp4", frames, degrees, hflip=True)
    reader = open_video(path, False)
    expected = np.rot90(frames, degrees // 90, axes=(1, 2))[:, :, ::-1]
    np.testing.assert_array_equal(np.concatenate(list(reader.chunks(8))), expected)
    assert (reader.rotation, reader.mirrored) == (degrees, True)


def test_footage_without_a_display_matrix_is_unchanged(tmp_path, shared_data):
    frames = synthetic_frames(4, 24, 40)
    reader = open_video(write_video(tmp_path / "v.mp4", frames), False)
    np.testing.assert_array_equal(np.concatenate(list(reader.chunks(8))), frames)
    assert (reader.rotation, reader.mirrored) == (0, False)
    for name in ("vtest.avi", "wannaworktogether.mp4"):  # real footage, as UCF-Crime: no matrix
        assert open_video(shared_data / "videos" / name, False).rotation == 0
