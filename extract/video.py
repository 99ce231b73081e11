"""Streaming decode: a video file (PyAV) or a JPEG/PNG frame folder, in chunks of frames.

Video files are decoded sequentially by PyAV, each frame once, on demand: memory is bounded by the
chunk size, never by the video length (bench/decoders.py measured the choice against decord 0.6,
decord2 and torchcodec: frames/s, peak memory with a slow consumer, frame-exactness). The frame
count a container reports can be wrong (truncated files, variable frame rate, broken indexes), so
callers take `num_frames` from what was actually decoded. The frames before a cut (an MP4 cut
short after its index, a truncated AVI) or a damaged frame are kept, with a warning naming the
file and how many of the claimed frames decoded. Any file name works, UTF-8 or not. Frames come out
as RGB uint8 whatever the source (grayscale is expanded to 3 channels); sizes are whatever the
source has (odd sizes included).

Frames come out as a player shows them: a display matrix (phones record sideways and store how to
turn the picture; FFmpeg hands it to every decoded frame as side data) is applied the way FFmpeg's
player does, a turn by 90, 180 or 270 degrees, then a left-right mirror when the matrix has one
(`Orientation`, read from the first frame). A matrix of another angle is left unapplied, with a
warning. Footage without one (UCF-Crime, ShanghaiTech, most cameras) is unchanged.

Shapes: (n, H, W, 3) uint8 per chunk.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import warnings
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
import torch
import torchvision.io

from claws.data.videos import FRAME_SUFFIXES, printable

logger = logging.getLogger(__name__)

DEFAULT_FPS = 30.0  # recorded when neither the source nor the dataset knows its frame rate
DECODER = "pyav"  # what decodes video files (bench/decoders.py reports it in its "claws" row)


class DecodeError(RuntimeError):
    """A video cannot be opened or yields no frame; the message says which and why."""


def _natural_key(path: Path) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name))


def _decode_image(file: Path) -> torch.Tensor:
    """(3, H, W) uint8 RGB of a JPEG/PNG file (gray and RGBA converted)."""
    with warnings.catch_warnings():  # torchvision 0.29 deprecates its image codecs (TorchCodec)
        warnings.simplefilter("ignore", DeprecationWarning)
        data = torchvision.io.read_file(str(file))
        return torchvision.io.decode_image(data, mode=torchvision.io.ImageReadMode.RGB)


class FrameFolderReader:
    """Frames of a folder of JPEG/PNG files in natural name order (000.jpg, 001.jpg, ...)."""

    def __init__(self, folder: Path, fps: float = 0.0) -> None:
        self.path = Path(folder)
        if not self.path.is_dir():
            raise DecodeError(f"{self.path}: frame folder does not exist")
        self.files = sorted(
            (p for p in self.path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES), key=_natural_key
        )
        if not self.files:
            raise DecodeError(f"{self.path}: no .jpg/.png frames in the folder (zero frames)")
        self.fps = fps if fps > 0 else DEFAULT_FPS
        self.reported_frames = len(self.files)
        self.rotation, self.mirrored = UPRIGHT  # images are read as stored

    def chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        """Consecutive (n <= chunk_frames, H, W, 3) uint8 RGB chunks."""
        shape = None
        for start in range(0, len(self.files), chunk_frames):
            batch = []
            for file in self.files[start:start + chunk_frames]:
                try:
                    image = _decode_image(file)
                except RuntimeError as err:
                    raise DecodeError(f"{file}: cannot decode frame ({err})") from err
                frame = image.permute(1, 2, 0).numpy()
                if shape is not None and frame.shape != shape:
                    raise DecodeError(f"{file}: frame size {frame.shape} differs from {shape}")
                shape = frame.shape
                batch.append(frame)
            yield np.stack(batch)


class Orientation(NamedTuple):
    """How decoded frames are turned to be shown: a counterclockwise turn, then a mirror."""

    rotation: int  # degrees counterclockwise: 0, 90, 180 or 270
    mirrored: bool  # then mirrored left-right


UPRIGHT = Orientation(0, False)
_TURN = np.array([[0, 1], [-1, 0]])  # np.rot90 on pixel coordinates (x right, y down)
_MIRROR = np.array([[-1, 0], [0, 1]])  # a left-right mirror


def display_orientation(matrix: np.ndarray) -> Orientation | None:
    """The turn and mirror a display matrix asks for; None for an angle that is not a multiple
    of 90 degrees.

    Args:
        matrix: FFmpeg's 3x3 display matrix as 9 int32 (16.16 fixed point, row-major), which
            maps a decoded pixel (x, y) to (a x + c y, b x + d y) with a, b, c, d = matrix[0, 1,
            3, 4] (libavutil/display.h).
    """
    a, b, c, d = (int(v) for v in np.asarray(matrix)[[0, 1, 3, 4]])
    if not ((a == d == 0 and b and c) or (b == c == 0 and a and d)):
        return None
    wanted = np.sign([[a, c], [b, d]])
    for turns in range(4):
        for mirrored in (False, True):
            mapping = np.linalg.matrix_power(_TURN, turns)
            if (((_MIRROR @ mapping) if mirrored else mapping) == wanted).all():
                return Orientation(90 * turns, mirrored)
    return None  # not reached: the 8 signed permutations are all covered


def orient(frame: np.ndarray, orientation: Orientation) -> np.ndarray:
    """(H, W, 3) frame as shown: turned counterclockwise, then mirrored (a view, not a copy)."""
    if orientation.rotation:
        frame = np.rot90(frame, orientation.rotation // 90)
    return frame[:, ::-1] if orientation.mirrored else frame


def _frame_orientation(frame, path: Path) -> Orientation:
    """The orientation of a decoded PyAV frame's display matrix (UPRIGHT when it has none)."""
    data = frame.side_data.get("DISPLAYMATRIX")
    if data is None:
        return UPRIGHT
    found = display_orientation(np.frombuffer(bytes(data), dtype=np.int32))
    if found is None:
        logger.warning("%s: the display matrix turns the picture by %s degrees, not a multiple of "
                       "90: frames are kept as decoded", printable(str(path)), frame.rotation)
        return UPRIGHT
    return found


class _Claim(NamedTuple):
    """How many frames a container says it holds, its frame rate, and how to show them."""

    frames: int  # 0 when the container says nothing
    exact: bool  # a frame count (MP4, AVI); False: estimated from the duration (Matroska)
    fps: float  # 0.0 when unknown
    orientation: Orientation = UPRIGHT  # the display matrix of the first frame


class VideoFileReader:
    """Frames of a video file decoded by PyAV, in order, chunk by chunk, each frame decoded once.

    PyAV decodes on demand in the consumer's thread: nothing is decoded ahead while the consumer
    is busy, so memory is bounded by the chunk size (bench/decoders.py: +28 MB for a 10-minute
    320x240 video over a 1-minute one with a slow consumer). decord 0.6, used before, decoded ahead
    into an unbounded queue; the seek after every chunk that emptied it took 3-4x the CPU time,
    did not bound memory (+205-224 MB) and, on Megamind.avi (MPEG-4 with B-frames), returned
    frame 30 as frame 128 and so on to the end. The container is opened once: the frame decoded to
    check the file is the first frame of the first chunk.

    `reported_frames` is what the container claims (its frame count, or its duration times its
    frame rate when it stores no count), so a truncated file shows as fewer frames decoded than
    reported; `chunks` logs a warning naming the file and both counts when that happens.
    """

    def __init__(self, path: Path, fps: float = 0.0, threads: int = 1) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DecodeError(f"{self.path}: video file does not exist")
        if self.path.stat().st_size == 0:
            raise DecodeError(f"{self.path}: empty file (0 bytes)")
        self._threads = threads
        self._claim, self._opened = _open(self.path, threads)
        self.reported_frames = self._claim.frames
        self.rotation, self.mirrored = self._claim.orientation
        rate = self._claim.fps
        self.fps = rate if math.isfinite(rate) and rate > 0 else (fps if fps > 0 else DEFAULT_FPS)

    def chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        """Consecutive (n <= chunk_frames, H, W, 3) uint8 RGB chunks; stops at the first frame
        that cannot be decoded (a truncated file), logging how many of the reported were kept."""
        opened, self._opened = self._opened, None
        if opened is None:  # a second pass over the file
            opened = _open(self.path, self._threads)[1]
        container, frames = opened
        decoded = 0
        try:
            for chunk in _rgb_chunks(frames, chunk_frames, self.path, self._claim.orientation):
                decoded += len(chunk)
                yield chunk
        finally:
            container.close()
        self._check_count(decoded)

    def _check_count(self, decoded: int) -> None:
        """Warn when fewer frames decoded than the container claims (a truncated or damaged file).

        A count estimated from the duration may be off by a frame or two (rounding, a variable
        frame rate), so it is allowed 1% or 2 frames, whichever is more.
        """
        claimed = self.reported_frames
        estimated = not self._claim.exact
        if decoded < claimed - (max(2, claimed // 100) if estimated else 0):
            about = "about " if estimated else ""
            logger.warning("%s: kept %d of %s%d frames the container claims; the rest cannot be "
                           "decoded (truncated or damaged file)", printable(str(self.path)),
                           decoded, about, claimed)


def _open(path: Path, threads: int) -> tuple[_Claim, tuple]:
    """Open the container with PyAV and decode its first frame.

    Returns:
        What the container claims (its frame count, or, for Matroska, which stores none, its
        duration times its frame rate, rounded) and (container, frames): the open container and
        an iterator over all its frames, the one decoded here first.

    Raises:
        DecodeError: no video stream, no decodable frame, or FFmpeg cannot read the file.
    """
    import av

    try:
        container = av.open(str(path))  # any file name: str() keeps non-UTF-8 bytes as escapes
    except av.FFmpegError as err:
        raise DecodeError(f"{path}: unreadable video ({_first_line(err)})") from err
    try:
        if not container.streams.video:
            raise DecodeError(f"{path}: unreadable video (no video stream)")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame and slice threads when threads > 1
        stream.thread_count = threads  # 0: FFmpeg's choice
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        frames = _decoded(container, stream)
        first = next(frames)
        orientation = _frame_orientation(first, path)
        if stream.frames > 0:
            claim = _Claim(int(stream.frames), True, rate, orientation)
        else:
            seconds = container.duration / 1e6 if container.duration else 0.0  # AV_TIME_BASE
            claim = _Claim(round(seconds * rate), False, rate, orientation)
    except BaseException as err:
        container.close()
        if isinstance(err, StopIteration):
            raise DecodeError(f"{path}: unreadable video (zero frames decodable)") from err
        if isinstance(err, av.FFmpegError):
            raise DecodeError(f"{path}: unreadable video ({_first_line(err)})") from err
        raise
    return claim, (container, itertools.chain([first], frames))


def _decoded(container, stream) -> Iterator:
    """Every frame of `stream`, in order: the one place where video frames are decoded."""
    yield from container.decode(stream)


def _rgb_chunks(
    frames: Iterator, chunk_frames: int, path: Path, orientation: Orientation = UPRIGHT
) -> Iterator[np.ndarray]:
    """(n <= chunk_frames, H, W, 3) uint8 RGB chunks of PyAV frames, turned as `orientation`
    says; stops at a decode error.

    One swscale context converts the whole video (PyAV's frame.to_ndarray(format="rgb24") builds
    one per frame: half the speed at 320x240, same pixels). Frames are converted to the first
    frame's size should the stream change size midway.
    """
    import av
    from av.video.reformatter import VideoReformatter

    reformatter = VideoReformatter()
    batch: list[np.ndarray] = []
    size, resized = None, False
    try:
        for frame in frames:
            if size is None:
                size = (frame.width, frame.height)
            elif (frame.width, frame.height) != size and not resized:
                resized = True
                logger.warning("%s: the frame size changes from %dx%d to %dx%d; frames are scaled "
                               "to the first size", printable(str(path)), *size, frame.width,
                               frame.height)
            rgb = reformatter.reformat(frame, width=size[0], height=size[1], format="rgb24")
            batch.append(orient(rgb.to_ndarray(), orientation))
            if len(batch) == chunk_frames:
                yield np.stack(batch)
                batch = []
    except av.FFmpegError as err:
        logger.warning("%s: decoding stopped at an error (%s); keeping the frames before it",
                       printable(str(path)), _first_line(err))
    if batch:
        yield np.stack(batch)


def frame_chunks(frames: Iterator, chunk_frames: int, name: str) -> Iterator[np.ndarray]:
    """RGB chunks of PyAV frames decoded elsewhere (a live stream), made exactly as a video file's:
    the first frame's size and display matrix hold for all; stops at a decode error.

    Args:
        frames: decoded PyAV video frames, in order.
        chunk_frames: frames per chunk (the last may hold fewer).
        name: the source, named in warnings.
    """
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        return
    where = Path(name)
    yield from _rgb_chunks(itertools.chain([first], frames), chunk_frames, where,
                           _frame_orientation(first, where))


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


def open_video(path: Path, is_frame_folder: bool, fps: float = 0.0, threads: int = 1):
    """A reader with `fps`, `reported_frames` and `chunks(chunk_frames)`.

    Args:
        path: video file or frame folder.
        is_frame_folder: read `path` as a folder of images.
        fps: frame rate to use when the source has none (frame folders) or reports nonsense.
        threads: decoder threads (1 inside DataLoader workers: the workers are the parallelism).

    Raises:
        DecodeError: the source cannot be opened or holds no frame.
    """
    if is_frame_folder:
        return FrameFolderReader(path, fps)
    return VideoFileReader(path, fps, threads)


def decode_all(path: Path, is_frame_folder: bool = False, chunk_frames: int = 128) -> np.ndarray:
    """Every frame of a video as one (N, H, W, 3) array (tests and small inputs only)."""
    chunks = list(open_video(path, is_frame_folder).chunks(chunk_frames))
    if not chunks:
        raise DecodeError(f"{path}: zero frames decoded")
    return np.concatenate(chunks)
