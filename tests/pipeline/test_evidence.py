"""Evidence clips (claws.pipeline.watching.evidence): an event's packets from a keyframe before
its start (less the seconds before) to the seconds after its end, remuxed when browsers play the
codec, else transcoded to H.264; a withdrawn event leaves no file; the ring stays bounded."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import pytest

from claws.extract.synthetic import synthetic_frames
from claws.pipeline.watching.evidence import Evidence, Packet, PacketRing, evidence_name

FPS, GOP = 25, 10  # a keyframe every 0.4 s


def _encode(path: Path, codec: str, frames: int = 125) -> Path:
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream(codec, rate=FPS)
        stream.width, stream.height = 160, 120
        stream.pix_fmt = "rgb24" if codec == "libx264rgb" else "yuv420p"
        stream.codec_context.gop_size = GOP
        if codec.startswith("libx264"):
            stream.options = {"bf": "0"}
        for image in synthetic_frames(frames, height=120, width=160, seed=2):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _feed(video: Path, folder: Path, orders) -> list[tuple]:
    """Feed the video's packets to an Evidence; `orders(evidence, time)` runs before each."""
    done: list[tuple] = []
    finisher = ThreadPoolExecutor(1)
    evidence = Evidence(folder, 1.0, 1.0, finisher, lambda *a: done.append(a))
    given = av.open(str(video))
    stream = given.streams.video[0]
    evidence.start(stream, 1, 0.0)
    for packet in given.demux(stream):
        if packet.dts is None:
            continue
        orders(evidence, float(packet.pts * packet.time_base) - given.start_time / 1e6)
        evidence.add(packet)
    given.close()  # the writers copied what they need from it
    evidence.end()
    finisher.shutdown(wait=True)
    evidence.shutdown()
    return done


def _event(open_at: float, start: float, close_at: float | None, end: float | None,
           withdraw_at: float | None = None):
    told: set[str] = set()

    def orders(evidence: Evidence, time: float) -> None:
        if time >= open_at and "open" not in told:
            told.add("open")
            evidence.open(1, 7, start)
        if close_at is not None and time >= close_at and "close" not in told:
            told.add("close")
            evidence.close(1, 7, end)
        if withdraw_at is not None and time >= withdraw_at and "withdraw" not in told:
            told.add("withdraw")
            evidence.discard(1, 7)

    return orders


@pytest.mark.parametrize("codec, kept", [("libx264", "remuxed"), ("mpeg4", "transcoded"),
                                         ("libx264rgb", "transcoded")])  # RGB H.264: no browser
def test_an_event_is_saved_from_before_its_start_to_after_its_end(tmp_path, codec, kept):
    video = _encode(tmp_path / "cam.ts", codec)
    # the event 2.0-3.0 s opens (scored) at 2.5 s and is confirmed at 3.2 s
    done = _feed(video, tmp_path / "cam", _event(2.5, 2.0, 3.2, 3.0))
    assert len(done) == 1
    stretch, event, path, first, last, error = done[0]
    assert (stretch, event, error) == (1, 7, None)
    assert path == tmp_path / "cam" / evidence_name(1, 7) and path.is_file()
    assert 0.6 - 1e-6 <= first <= 1.0  # the keyframe at or before 2.0 - 1.0 s
    assert 4.0 <= last <= 4.0 + 1.5 / FPS  # 1 s after the end
    with av.open(str(path)) as clip:
        assert clip.format.name.startswith("mov,mp4")
        stream = clip.streams.video[0]
        assert stream.codec_context.name == "h264"  # browsers play it
        assert stream.codec_context.pix_fmt == "yuv420p"
        frames = sum(1 for _ in clip.decode(stream))
    assert abs(frames - (last - first) * FPS) <= 2
    assert not list((tmp_path / "cam" / "evidence").glob(".*"))  # no temporary left


def test_a_withdrawn_event_leaves_nothing_and_an_open_one_ends_with_its_source(tmp_path):
    video = _encode(tmp_path / "cam.ts", "libx264")
    assert _feed(video, tmp_path / "a", _event(1.5, 1.2, None, None, withdraw_at=2.0)) == []
    assert not [p for p in (tmp_path / "a" / "evidence").iterdir()]
    done = _feed(video, tmp_path / "b", _event(3.5, 3.0, None, None))  # never closed
    (_, _, path, first, last, error), = done
    assert error is None and path.is_file() and last >= 4.9 and first <= 2.0


def test_the_ring_is_bounded_in_seconds_and_bytes():
    ring = PacketRing(seconds=2.0, max_bytes=10_000)
    for n in range(500):
        ring.add(Packet(b"x" * 100, n, n, 1, n % 10 == 0, n / 25))
    assert ring.packets[-1].time - ring.packets[0].time <= 2.0
    ring = PacketRing(seconds=60.0, max_bytes=10_000)
    for n in range(500):
        ring.add(Packet(b"x" * 100, n, n, 1, n % 10 == 0, n / 25))
    assert ring.bytes <= 10_000 and len(ring.packets) == 100
    assert ring.since(19.0)[0].time == 18.8 and ring.since(0.0)[0].keyframe
