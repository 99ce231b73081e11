"""Reading one live source: open it (reopening with capped backoff), decode its frames into clips,
record its packets, and hand everything to the job through a bounded queue.

Each uninterrupted stretch of a source is one video: its frames come out exactly as a video file's
(claws.extract.video.frame_chunks: the first frame's size and display matrix), cut into 16-frame
clips from the stretch's first frame, the last clip padded by repeating its last frame
(claws.data.clips), and preprocessed by the extractor's `preprocess` (claws.extract.c3d.crop_clips)
in this reader's thread. With a recording, every packet of the video stream is remuxed, not
re-encoded, into `stretch-<n>.ts` before it is decoded, so scoring that file offline decodes the
same packets.

A live source never waits for the job: when the queue is full and the source is not ahead of
real time (a sender pacing its frames, unlike a recording read as fast as it can be), whole clips
are dropped, counted and logged, until there is room again; the stretch ends where the drop began
(reason "dropped") and a new one starts with the next clip, so no clip and no window spans the
hole. A file, or a source ahead of real time, is waited for instead (nothing is lost by waiting).

A network source whose stretch ends (the sender closed, a read timed out, an error) is reopened
with a backoff of 0.5 s doubling up to 5 s until it answers or `reconnect_s` seconds have passed
since it was lost; a local file is read once. The queue has a fixed size, so memory stays bounded.

Shapes: clips (16, 112, 112, 3) uint8 crops as `preprocess` makes them.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np
import torch

from claws.data.clips import CLIP_LEN, pad_clip_frames
from claws.extract.video import DEFAULT_FPS, frame_chunks
from claws.pipeline.watching.evidence import Evidence

logger = logging.getLogger(__name__)

BACKOFF_START_S = 0.5
BACKOFF_CAP_S = 5.0
FOLLOW_IDLE_S = 10.0  # a followed file not grown for this long has ended (when --timeout is 0)
FOLLOW_POLL_S = 0.1  # how often a followed file is looked at while it does not grow
AHEAD_S = 1.0  # a source more than this ahead of real time (a burst, a file) is waited for
RECORD_PREFIX = "stretch-"


class StretchStart(NamedTuple):
    """A source opened: a new stretch begins (after a gap when `lost_at` is set)."""

    stream: str
    stretch: int  # 1, 2, ... within the stream's folder, continuing those of earlier runs
    fps: float
    wall: float  # when it opened (time.time())
    lost_at: float | None  # when the previous stretch was lost (None: the first stretch)
    recording: str | None  # file the stretch is recorded into
    first_frame: int  # frame of the recording (of the opened source) the stretch begins at


class Clip(NamedTuple):
    """One 16-frame clip of a stretch, preprocessed."""

    stream: str
    stretch: int
    index: int  # clip k of the stretch covers its frames [16k, 16k + frames)
    frames: int  # real frames in the clip (1..16; fewer only for the stretch's last clip)
    crops: torch.Tensor  # (16, 112, 112, 3) uint8, as `preprocess` makes them
    wall: float  # when its last frame was decoded


class StretchEnd(NamedTuple):
    """A stretch ended: every one of its clips was queued before."""

    stream: str
    stretch: int
    num_frames: int
    wall: float
    reason: str  # "lost" (a network source: it will be reopened), "ended" (a file's end),
    # "dropped" (the job fell behind real time: clips were dropped, a new stretch follows) or
    # "restarted" (the job ended the stretch, a clip it could not score: a new one follows)


class Dropped(NamedTuple):
    """Clips a live source dropped while the job was slower than real time."""

    stream: str
    after_stretch: int
    clips: int
    frames: int
    since: float  # when the first was dropped
    until: float  # when there was room again (or the source ended)


class StreamDone(NamedTuple):
    """A source is finished for good: `error` says why when it never opened."""

    stream: str
    error: str | None
    wall: float


Item = StretchStart | Clip | StretchEnd | Dropped | StreamDone


@dataclass(frozen=True)
class Source:
    """One stream to watch."""

    name: str  # its folder under --out
    url: str  # anything FFmpeg opens: tcp://, udp://, http(s)://, rtsp://, a file
    folder: Path  # where its outputs go
    first_stretch: int = 1  # number of its first stretch (after those of an earlier run)


def is_device(url: str) -> bool:
    """A V4L2 capture device (/dev/video<N>): live, like a network source."""
    return url.startswith("/dev/video")


def is_file(url: str) -> bool:
    """A local file (read once to its end) rather than a network source or a capture device
    (reopened when lost)."""
    return ("://" not in url or url.startswith("file:")) and not is_device(url)


def open_source(url: str, timeout_s: float):
    """The opened container of a source; FFmpeg's errors propagate (av.FFmpegError). RTSP runs
    over TCP (interleaved: no packets lost to UDP, through firewalls and NAT), a V4L2 device is
    opened as one. `timeout_s` bounds every read: FFmpeg's rw_timeout, and the protocol's own
    `timeout` for RTSP and UDP, whose reads ignore rw_timeout (UDP would wait for ever)."""
    import av

    options, format = {}, None
    if timeout_s > 0 and not is_file(url):
        options["rw_timeout"] = str(int(timeout_s * 1e6))
    if url.startswith("rtsp://") or url.startswith("rtsps://"):
        options["rtsp_transport"] = "tcp"
        if timeout_s > 0:
            options["timeout"] = str(int(timeout_s * 1e6))  # the RTSP socket's I/O timeout
    elif url.startswith("udp://") and timeout_s > 0:  # UDP reads ignore rw_timeout
        options["timeout"] = str(int(timeout_s * 1e6))
    if is_device(url):
        format = "v4l2"
    container = av.open(url, format=format, options=options)
    if not container.streams.video:
        container.close()
        raise ValueError(f"{url}: no video stream")
    return container


class GrowingFile(io.RawIOBase):
    """A file still being written, read like `tail -f`: at its end a read waits for more bytes,
    and the end comes once the file has not grown for `idle_s` seconds (or `stop` is set).

    Containers that can be read while written (MPEG-TS, Matroska, fragmented MP4) work; an MP4
    whose index is written last does not (FFmpeg then names the file in its error)."""

    def __init__(self, path: str, idle_s: float, stop: threading.Event) -> None:
        super().__init__()
        self.handle = open(path, "rb")
        self.idle_s, self.stop = idle_s, stop

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        since = time.monotonic()
        while True:
            count = self.handle.readinto(buffer)
            if count:
                return count
            if self.stop.is_set() or time.monotonic() - since >= self.idle_s:
                return 0
            self.stop.wait(FOLLOW_POLL_S)

    def close(self) -> None:
        self.handle.close()
        super().close()


def open_growing(path: str, idle_s: float, stop: threading.Event):
    """The opened container of a file still being written (see GrowingFile)."""
    import av

    file = GrowingFile(path.removeprefix("file:"), idle_s, stop)
    try:
        container = av.open(file)
    except BaseException:
        file.close()
        raise
    if not container.streams.video:
        container.close()
        raise ValueError(f"{path}: no video stream")
    return container


def stream_fps(stream) -> float:
    """The frame rate as claws.extract.video reads it (average, else guessed, else the default)."""
    rate = float(stream.average_rate or stream.guessed_rate or 0)
    return rate if rate > 0 else DEFAULT_FPS


def recorded_frames(container, stream, taps: list[Callable]) -> Iterator:
    """Decoded frames of `stream`; each packet is handed to the taps (in order: a recorder, which
    empties it, last) before its frames are yielded."""
    for packet in container.demux(stream):
        frames = packet.decode()
        if packet.size:  # not the end-of-stream flush; a packet without time stamps (RTSP's
            # first keyframe) is kept too: a recording or clip without it starts at a P-frame
            for tap in taps:
                tap(packet)
        yield from frames


class Recorder:
    """Remuxes a stretch's packets into an MPEG-TS file (no re-encode); `close` finishes it."""

    def __init__(self, path: Path, template) -> None:
        import av

        self.path = path
        self.container = av.open(str(path), "w", format="mpegts")
        self.stream = self.container.add_stream_from_template(template)

    def __call__(self, packet) -> None:
        packet.stream = self.stream
        self.container.mux(packet)

    def close(self) -> None:
        self.container.close()


class Reader(threading.Thread):
    """Reads one source into `items` until it is finished for good or `stop` is set.

    Args:
        source: the stream.
        preprocess: (c, 16, H, W, 3) uint8 RGB clips to the network input.
        items: the job's bounded queue.
        stop: set by the job to end every reader.
        record: remux each stretch into `stretch-<n>.ts` in the stream's folder.
        reconnect_s: how long a lost network source is retried (and a source that never opened).
        timeout_s: a read that waits longer than this loses the stream (0: FFmpeg's default).
        drop: a network source drops clips rather than wait for a job slower than real time
            (False: it is waited for, as a sender that waits for its reader can be).
        evidence: the stream's evidence clips (claws.pipeline.watching.evidence), fed every packet.
        follow: a file source is still being written: follow it (GrowingFile, its end after
            `timeout_s` seconds without growth) and wait up to `reconnect_s` for it to appear.
    """

    def __init__(self, source: Source, preprocess: Callable[[np.ndarray], torch.Tensor],
                 items: queue.Queue, stop: threading.Event, record: bool, reconnect_s: float,
                 timeout_s: float, follow: bool = False, drop: bool = True,
                 evidence: Evidence | None = None) -> None:
        super().__init__(name=f"claws-watch-{source.name}", daemon=True)
        self.source, self.preprocess, self.items, self.stop = source, preprocess, items, stop
        self.record, self.reconnect_s, self.timeout_s = record, reconnect_s, timeout_s
        self.follow, self.drop = follow and is_file(source.url), drop
        self.evidence = evidence
        self.restart = threading.Event()  # set by the job: end the stretch at the next clip

    def put(self, item: Item) -> bool:
        """Queue `item`, waiting while the queue is full; False once the job stops."""
        while not self.stop.is_set():
            try:
                self.items.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        try:
            error = self._read()
        except Exception as err:  # a fault of this stream (recording, preprocessing): it alone ends
            logger.exception("stream %s: reading stopped", self.source.name)
            error = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        self.put(StreamDone(self.source.name, error, time.time()))

    def _read(self) -> str | None:
        """Open, read and reopen the source until it is done; the error when it never opened."""
        url, stretch = self.source.url, self.source.first_stretch
        lost_at: float | None = None
        since, backoff, error = time.time(), BACKOFF_START_S, None
        while not self.stop.is_set():
            try:
                container = (open_growing(url, self.timeout_s or FOLLOW_IDLE_S, self.stop)
                             if self.follow else open_source(url, self.timeout_s))
            except Exception as err:  # any failure to open: retried, then named
                error = f"{type(err).__name__}: {err}".splitlines()[0][:300]
                once = is_file(url) and not self.follow
                if once or time.time() - since >= self.reconnect_s:
                    break
                logger.debug("%s: cannot open (%s); retrying in %.1f s", url, error, backoff)
                self.stop.wait(backoff)
                backoff = min(2 * backoff, BACKOFF_CAP_S)
                continue
            error, backoff = None, BACKOFF_START_S
            ended, stretch = self.read_connection(container, stretch, lost_at)
            if ended or is_file(url):
                break
            lost_at = since = time.time()
        opened = stretch > self.source.first_stretch
        return None if opened else error or "stopped"

    def read_connection(self, container, stretch: int, lost_at: float | None) -> tuple[bool, int]:
        """Queue the clips of one opened source, one stretch after another (a new one after each
        drop); (True when the job stopped meanwhile, the number of the next stretch)."""
        stream = container.streams.video[0]
        name, fps = self.source.name, stream_fps(stream)
        path = self.source.folder / f"{RECORD_PREFIX}{stretch}.ts" if self.record else None
        recorder = Recorder(path, stream) if path else None
        drops = Drops(name, live=self.drop and not is_file(self.source.url))
        evidence = self.evidence
        if evidence is not None:
            evidence.start(stream, stretch, 0.0)
        taps = [t for t in (evidence and evidence.add, recorder) if t is not None]
        try:
            start = StretchStart(name, stretch, fps, time.time(), lost_at,
                                 str(path) if path else None, 0)
            if not self.put(start):
                return True, stretch + 1
            opened, seen = time.time(), 0  # frames decoded since the source opened
            num_frames = clip = 0
            frames = recorded_frames(container, stream, taps)
            for chunk in frame_chunks(frames, CLIP_LEN, self.source.url):
                seen += len(chunk)
                crops = self.preprocess(pad_clip_frames(chunk)[None])[0]
                item = Clip(name, stretch, clip, len(chunk), crops, time.time())
                if self.restart.is_set():  # the job ended the stretch: a clip it could not score
                    self.restart.clear()
                    ended = StretchEnd(name, stretch, num_frames, time.time(), "restarted")
                    if not self._split(ended, fps, path, seen - len(chunk)):
                        return True, stretch + 2
                    stretch, num_frames, clip = stretch + 1, 0, 0
                    item = item._replace(stretch=stretch, index=0)
                behind = drops.live and time.time() - opened >= seen / fps - AHEAD_S
                if drops.active or (behind and not self._put_now(item)):
                    if drops.add(item, self.items.full()):
                        continue  # still full: this clip is dropped too
                    # room again: the stretch ends where the drop began, a new one starts here
                    ended = StretchEnd(name, stretch, num_frames, drops.since, "dropped")
                    if not self._split(ended, fps, path, seen - len(chunk), drops.record(stretch)):
                        return True, stretch + 2
                    stretch, num_frames, clip = stretch + 1, 0, 0
                    item = item._replace(stretch=stretch, index=0)
                    if not self.put(item):
                        return True, stretch + 1
                elif not behind and not self.put(item):
                    return True, stretch + 1
                num_frames += len(chunk)
                clip += 1
            if drops.active:  # the source ended while dropping: the stretch ends where it began
                self.put(StretchEnd(name, stretch, num_frames, drops.since, "dropped"))
                return not self.put(drops.record(stretch)), stretch + 1
            reason = "ended" if is_file(self.source.url) else "lost"
            return not self.put(StretchEnd(name, stretch, num_frames, time.time(), reason)), \
                stretch + 1
        finally:
            if recorder is not None:
                recorder.close()
            container.close()
            if evidence is not None:
                evidence.end()

    def _split(self, ended: StretchEnd, fps: float, path: Path | None, first_frame: int,
               *between: Item) -> bool:
        """End `ended`'s stretch and begin the next one at `first_frame` of the opened source
        (after a drop or a restart the job asked for), queueing `between` in between; False once
        the job stops."""
        stretch = ended.stretch + 1
        if self.evidence is not None:
            self.evidence.stretch_at(stretch, first_frame / fps)
        begun = StretchStart(self.source.name, stretch, fps, time.time(), None,
                             str(path) if path else None, first_frame)
        return all(map(self.put, (ended, *between, begun)))

    def _put_now(self, item: Item) -> bool:
        """Queue `item` if there is room now."""
        try:
            self.items.put_nowait(item)
            return True
        except queue.Full:
            return False


class Drops:
    """Clips a live source drops while the job is slower than real time (the queue full)."""

    def __init__(self, stream: str, live: bool) -> None:
        self.stream, self.live = stream, live
        self.active = False
        self.clips = self.frames = 0
        self.since = 0.0

    def add(self, clip: Clip, full: bool) -> bool:
        """Count `clip` as dropped while the queue is `full`; False (nothing counted) once there
        is room again, and the drop ends."""
        if not full and self.active:
            return False
        if not self.active:
            self.active, self.clips, self.frames, self.since = True, 0, 0, clip.wall
            logger.warning("stream %s: slower than real time, dropping clips from clip %d of "
                           "stretch %d", self.stream, clip.index, clip.stretch)
        self.clips += 1
        self.frames += clip.frames
        return True

    def record(self, stretch: int) -> "Dropped":
        """The drop as an item for the job (it ended), counted and logged."""
        self.active = False
        logger.warning("stream %s: dropped %d clips (%d frames) after stretch %d", self.stream,
                       self.clips, self.frames, stretch)
        return Dropped(self.stream, stretch, self.clips, self.frames, self.since, time.time())
