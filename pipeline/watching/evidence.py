"""Evidence clips: each event of a live stream saved as an MP4, from a few seconds before its start
to a few seconds after its end, out of the packets the stream sent.

A reader keeps a ring of the stream's recent packets (their bytes and times, bounded in seconds
and in bytes). When an event opens, the job opens its evidence: a writer starts
from the last keyframe at or before `before_s` seconds ahead of the event's start (or the ring's
oldest keyframe, when the ring does not reach back so far) and from then on receives every packet
the stream sends, remuxed (no re-encode) into a temporary MPEG-TS file. When the event is
confirmed, the writer stops at `after_s` seconds after its end; when it is interrupted, stopped or
its stretch ends, at once; when it is withdrawn, its file is deleted. A finished writer is turned
into `evidence/<stretch>-<event>.mp4`: remuxed when browsers play the codec (H.264, VP9, AV1 in
4:2:0), else transcoded to H.264 with PyAV's libx264, written to a temporary name and renamed, so an MP4
that exists is complete. Finishing runs on a thread of its own, so that neither the reader nor the
scoring waits for an encoder.

Times: a packet's time is its presentation time in seconds from the first packet of the opened
source; a stretch starting at frame f of the source adds f / fps to its events' times.
"""

from __future__ import annotations

import collections
import io
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, NamedTuple

from claws.data.atomic import atomic_path

logger = logging.getLogger(__name__)

EVIDENCE_DIR = "evidence"
RING_LAG_S = 30.0  # the ring reaches this far behind the newest packet, beyond `before_s`
RING_MAX_BYTES = 256 * 1024 * 1024  # at most this many bytes of packets per stream
REMUX_CODECS = ("h264", "vp9", "av1")  # what browsers play from an MP4 as it is,
REMUX_PIXEL_FORMATS = ("yuv420p", "yuvj420p")  # in these pixel formats (not RGB or 4:4:4)


def evidence_name(stretch: int, event: int) -> str:
    """The evidence file of an event, relative to the stream's folder."""
    return f"{EVIDENCE_DIR}/{stretch}-{event}.mp4"


class Packet(NamedTuple):
    """A received packet, copied out of FFmpeg's buffer."""

    data: bytes
    pts: int | None
    dts: int | None
    duration: int
    keyframe: bool
    time: float  # seconds from the first packet of the opened source


class PacketRing:
    """The recent packets of one opened source, bounded by seconds and bytes."""

    def __init__(self, seconds: float, max_bytes: int = RING_MAX_BYTES) -> None:
        self.seconds, self.max_bytes = seconds, max_bytes
        self.packets: collections.deque[Packet] = collections.deque()
        self.bytes = 0

    def add(self, packet: Packet) -> None:
        self.packets.append(packet)
        self.bytes += len(packet.data)
        while len(self.packets) > 1 and (
                self.bytes > self.max_bytes or packet.time - self.packets[0].time > self.seconds):
            self.bytes -= len(self.packets.popleft().data)

    def since(self, time: float) -> list[Packet]:
        """Packets from the last keyframe at or before `time` (else the oldest keyframe) on."""
        packets = list(self.packets)
        keys = [i for i, p in enumerate(packets) if p.keyframe]
        if not keys:
            return []
        before = [i for i in keys if packets[i].time <= time]
        return packets[before[-1] if before else keys[0]:]


@dataclass
class Writer:
    """One event's evidence while its packets arrive."""

    stretch: int
    event: int
    path: Path  # the MP4 to make
    first: float  # time of its first packet
    until: float | None = None  # stop after this time (None: not known yet)
    container: object = None  # PyAV output (MPEG-TS, temporary)
    stream: object = None
    last: float = 0.0
    temporary: Path = field(init=False)

    def __post_init__(self) -> None:
        self.temporary = self.path.with_name(f".{self.path.stem}.ts")


@dataclass
class Connection:
    """One opened source: its packet ring, its stretches and the writers of their events."""

    holder: object  # an output never written, holding `template`
    template: object  # a copy of the input video stream's parameters (its own, unchanging)
    time_base: Fraction  # of the input stream: the packets' time stamps
    codec: str  # decoder name of the input stream
    pix_fmt: str | None  # its pixel format
    ring: PacketRing
    offsets: dict[int, float]  # stretch -> its first frame's time in the source
    writers: dict[tuple[int, int], Writer] = field(default_factory=dict)
    origin: int | None = None  # time stamp of its first packet
    ended: bool = False  # the source ended: no more packets


class Evidence:
    """A stream's evidence clips. The reader's thread feeds packets (`start`, `stretch_at`, `add`,
    `end`); the job's thread opens, closes and discards an event's clip and forgets a stretch
    once it has ended. Both work under one lock. A source that has ended keeps its ring until the
    job has forgotten its stretches, so an event the job opens late (a file read ahead of the
    scoring) still gets its clip. `done` gets (stretch, event, path or None, first time, last
    time, error or None), in stretch times, when a clip is written or cannot be."""

    def __init__(self, folder: Path, before_s: float, after_s: float,
                 finisher: ThreadPoolExecutor, done: Callable[..., None]) -> None:
        self.folder, self.before_s, self.after_s = folder, before_s, after_s
        self.finisher, self.done = finisher, done
        self.ring_seconds = before_s + after_s + RING_LAG_S
        self.connections: list[Connection] = []
        self.lock = threading.Lock()

    # the reader's thread
    def start(self, stream, stretch: int, first_s: float) -> None:
        """A source opened (its video stream is `stream`) with stretch `stretch`. The stream's
        parameters are copied now, in the reader's thread: writers opened later by the job's
        thread never read an input that the reader is demuxing, or has closed."""
        import av

        holder = av.open(io.BytesIO(), "w", format="mpegts")
        template = holder.add_stream_from_template(stream)
        conn = Connection(holder, template, stream.time_base, stream.codec_context.name,
                          getattr(stream.codec_context, "pix_fmt", None),
                          PacketRing(self.ring_seconds), {stretch: first_s})
        with self.lock:
            self.connections.append(conn)

    def stretch_at(self, stretch: int, first_s: float) -> None:
        """A stretch begins `first_s` seconds into the opened source."""
        with self.lock:
            self.connections[-1].offsets[stretch] = first_s

    def add(self, packet) -> None:
        """Take a received PyAV packet (before it is remuxed elsewhere, which empties it)."""
        with self.lock:
            conn = self.connections[-1]
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None:
                time = conn.ring.packets[-1].time if conn.ring.packets else 0.0
            else:
                if conn.origin is None:
                    conn.origin = stamp
                time_base = packet.time_base or conn.time_base
                time = float((stamp - conn.origin) * time_base)
            copy = Packet(bytes(packet), packet.pts, packet.dts, packet.duration or 0,
                          bool(packet.is_keyframe), time)
            conn.ring.add(copy)
            for key, writer in list(conn.writers.items()):
                if writer.until is not None and time > writer.until:
                    self._finish(conn, key)
                else:
                    self._write(conn, writer, copy)

    def end(self) -> None:
        """The opened source ended: its writers finish with what they have."""
        with self.lock:
            conn = self.connections[-1]
            conn.ended = True
            for key in list(conn.writers):
                self._finish(conn, key)
            self._let_go(conn)

    def shutdown(self) -> None:
        """The job ends: what is left is let go."""
        with self.lock:
            for conn in self.connections:
                conn.holder.close()
            self.connections = []

    # the job's thread
    def open(self, stretch: int, event: int, start_s: float) -> None:
        """An event opened at `start_s` of its stretch: its clip starts `before_s` earlier."""
        with self.lock:
            conn = self._connection(stretch)
            if conn is None:
                self.done(stretch, event, None, start_s, start_s, "its stretch had ended")
                return
            if (stretch, event) in conn.writers:
                return
            self._open(conn, stretch, event,
                       conn.offsets[stretch] + max(0.0, start_s - self.before_s))
            if conn.ended and (stretch, event) in conn.writers:
                self._finish(conn, (stretch, event))

    def close(self, stretch: int, event: int, end_s: float | None) -> None:
        """Stop the clip `after_s` past `end_s` (None: at once)."""
        with self.lock:
            conn = self._connection(stretch)
            if conn is None or (stretch, event) not in conn.writers:
                return
            if end_s is None or conn.ended:
                self._finish(conn, (stretch, event))
            else:
                conn.writers[(stretch, event)].until = conn.offsets[stretch] + end_s + self.after_s

    def discard(self, stretch: int, event: int) -> None:
        """A withdrawn event: its clip is deleted."""
        with self.lock:
            conn = self._connection(stretch)
            if conn is not None and (stretch, event) in conn.writers:
                writer = conn.writers.pop((stretch, event))
                _close_file(writer)
                writer.temporary.unlink(missing_ok=True)

    def forget(self, stretch: int) -> None:
        """A stretch ended and its events are closed: an ended source left with no stretch is
        let go (its ring freed)."""
        with self.lock:
            conn = self._connection(stretch)
            if conn is None:
                return
            del conn.offsets[stretch]
            self._let_go(conn)

    def _let_go(self, conn: Connection) -> None:
        """An ended source with no stretch left is closed and its ring freed."""
        if conn.ended and not conn.offsets:
            conn.holder.close()
            self.connections.remove(conn)

    def _connection(self, stretch: int) -> Connection | None:
        return next((c for c in self.connections if stretch in c.offsets), None)

    def _open(self, conn: Connection, stretch: int, event: int, time: float) -> None:
        import av

        packets = conn.ring.since(time)
        offset = conn.offsets[stretch]
        if not packets:
            self.done(stretch, event, None, time - offset, time - offset,
                      "no keyframe received yet")
            return
        path = self.folder / evidence_name(stretch, event)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = Writer(stretch, event, path, packets[0].time)
        writer.container = av.open(str(writer.temporary), "w", format="mpegts")
        writer.stream = writer.container.add_stream_from_template(conn.template)
        conn.writers[(stretch, event)] = writer
        for packet in packets:
            self._write(conn, writer, packet)

    def _write(self, conn: Connection, writer: Writer, packet: Packet) -> None:
        import av

        out = av.Packet(packet.data)
        out.pts, out.dts, out.duration = packet.pts, packet.dts, packet.duration
        out.is_keyframe = packet.keyframe
        out.time_base = conn.time_base
        out.stream = writer.stream
        try:
            writer.container.mux(out)
        except av.FFmpegError as err:  # e.g. a timestamp that goes back: that packet is left out
            logger.debug("evidence %s: packet left out (%s)", writer.path.name, err)
        writer.last = packet.time

    def _finish(self, conn: Connection, key: tuple[int, int]) -> None:
        writer = conn.writers.pop(key)
        _close_file(writer)
        remux = conn.codec in REMUX_CODECS and conn.pix_fmt in REMUX_PIXEL_FORMATS
        self.finisher.submit(_make_mp4, writer, remux, conn.offsets.get(writer.stretch, 0.0),
                             self.done)


def _close_file(writer: Writer) -> None:
    try:
        writer.container.close()
    except Exception as err:  # a file that cannot be finished is reported by _make_mp4
        logger.debug("evidence %s: %s", writer.temporary, err)


def _make_mp4(writer: Writer, remux: bool, offset: float, done: Callable[..., None]) -> None:
    """Turn a finished writer's MPEG-TS into its MP4 (on the finisher's thread)."""
    error = None
    try:
        with atomic_path(writer.path) as temporary:
            if remux:
                _remux(writer.temporary, temporary)
            else:
                _transcode(writer.temporary, temporary)
    except Exception as err:  # one evidence clip that cannot be made is reported, not fatal
        error = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        logger.error("evidence %s could not be written: %s", writer.path, error)
    finally:
        writer.temporary.unlink(missing_ok=True)
    done(writer.stretch, writer.event, None if error else writer.path,
         round(writer.first - offset, 3), round(writer.last - offset, 3), error)


def _remux(source: Path, target: Path) -> None:
    import av

    with av.open(str(source)) as given, av.open(str(target), "w", format="mp4") as out:
        stream = given.streams.video[0]
        copy = out.add_stream_from_template(stream)
        for packet in given.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = copy
            out.mux(packet)


def _transcode(source: Path, target: Path) -> None:
    import av

    with av.open(str(source)) as given, av.open(str(target), "w", format="mp4") as out:
        stream = given.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        encoded = out.add_stream("libx264", rate=rate)
        encoded.width = stream.codec_context.width // 2 * 2
        encoded.height = stream.codec_context.height // 2 * 2
        encoded.pix_fmt = "yuv420p"
        encoded.options = {"preset": "veryfast", "crf": "23"}
        for frame in given.decode(stream):
            image = frame.reformat(encoded.width, encoded.height, "yuv420p")
            image.pts = None
            for packet in encoded.encode(image):
                out.mux(packet)
        for packet in encoded.encode(None):
            out.mux(packet)
