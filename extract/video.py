"""Streaming decode: a video file (decord) or a JPEG/PNG frame folder, in chunks of frames.

Memory is bounded by the chunk size, never by the video length. The frame count a container
reports can be wrong (truncated files, variable frame rate, broken indexes), so callers take
`num_frames` from what was actually decoded. A file decord cannot open (an MP4 cut short after its
index, a file name that is not UTF-8) is decoded with PyAV; the frames before a cut or a damaged
frame are kept, with a warning naming the file and how many of the claimed frames decoded. Frames come out as RGB uint8 whatever the source
(grayscale is expanded to 3 channels); sizes are whatever the source has (odd sizes included).

Shapes: (n, H, W, 3) uint8 per chunk.
"""

from __future__ import annotations

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


class _Claim(NamedTuple):
    """How many frames a container says it holds, and its frame rate."""

    frames: int  # 0 when the container says nothing
    exact: bool  # a frame count (MP4, AVI); False: estimated from the duration (Matroska)
    fps: float  # 0.0 when unknown


class VideoFileReader:
    """Frames of a video file decoded by decord, in order, chunk by chunk; PyAV where decord fails.

    `reported_frames` is what the container claims (its frame count, or its duration times its
    frame rate when it stores no count), so a truncated file shows as fewer frames decoded than
    reported; `chunks` logs a warning naming the file and both counts when that happens.
    """

    def __init__(self, path: Path, fps: float = 0.0, threads: int = 1) -> None:
        import decord  # imported here: only decoding workers need it

        self.path = Path(path)
        if not self.path.is_file():
            raise DecodeError(f"{self.path}: video file does not exist")
        if self.path.stat().st_size == 0:
            raise DecodeError(f"{self.path}: empty file (0 bytes)")
        self._claim = _probe(self.path)
        try:
            self._reader = decord.VideoReader(str(self.path), num_threads=threads)
        except (RuntimeError, UnicodeEncodeError, decord.DECORDError) as err:
            # An MP4 cut short after its index: decord's constructor reads past the end and
            # fails, while PyAV (which decoded a frame in _probe) decodes up to the cut. A file
            # name that is not UTF-8: decord takes only UTF-8 paths, PyAV any file name.
            logger.info("%s: decord cannot open it (%s); decoding with PyAV",
                        printable(str(self.path)), _first_line(err))
            self._reader = None
            indexed, avg = 0, self._claim.fps
        else:
            indexed, avg = len(self._reader), float(self._reader.get_avg_fps())
            if indexed == 0:
                raise DecodeError(f"{self.path}: the container holds zero frames")
        self._indexed = indexed  # frames decord can address (a cut AVI: only those present)
        self.reported_frames = max(indexed, self._claim.frames)
        self.fps = avg if math.isfinite(avg) and avg > 0 else (fps if fps > 0 else DEFAULT_FPS)

    def chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        """Consecutive (n <= chunk_frames, H, W, 3) uint8 RGB chunks; stops at the first frame
        that cannot be decoded (a truncated file), logging how many of the reported were kept."""
        decoded = 0
        source = pyav_chunks(self.path, chunk_frames) if self._reader is None \
            else self._decord_chunks(chunk_frames)
        for chunk in source:
            decoded += len(chunk)
            yield chunk
        self._check_count(decoded)

    def _check_count(self, decoded: int) -> None:
        """Warn when fewer frames decoded than the container claims (a truncated or damaged file).

        A count estimated from the duration may be off by a frame or two (rounding, a variable
        frame rate), so it is allowed 1% or 2 frames, whichever is more.
        """
        claimed = self.reported_frames
        estimated = not self._claim.exact and self._indexed < claimed
        if decoded < claimed - (max(2, claimed // 100) if estimated else 0):
            about = "about " if estimated else ""
            logger.warning("%s: kept %d of %s%d frames the container claims; the rest cannot be "
                           "decoded (truncated or damaged file)", printable(str(self.path)),
                           decoded, about, claimed)

    def _decord_chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        """decord's frames; when decord cannot decode the first chunk (it fails on some frame
        sizes, e.g. 48x40), the whole video is decoded sequentially with PyAV instead."""
        import decord

        for start in range(0, self._indexed, chunk_frames):
            stop = min(start + chunk_frames, self._indexed)
            try:
                chunk = self._reader.get_batch(list(range(start, stop))).asnumpy()
                if chunk.ndim != 4 or chunk.shape[-1] != 3:
                    raise RuntimeError(f"decord returned frames of shape {chunk.shape}")
            except (RuntimeError, decord.DECORDError) as err:
                if start == 0:
                    logger.warning("%s: decord failed (%s); decoding with PyAV", self.path,
                                   _first_line(err))
                    yield from pyav_chunks(self.path, chunk_frames)
                    return
                chunk = self._frame_by_frame(start, stop)
            if len(chunk):
                yield chunk
                if stop < self._indexed:
                    self._drop_read_ahead()
            if len(chunk) < stop - start:
                return

    def _drop_read_ahead(self) -> None:
        """Free the frames decord decoded ahead while the consumer held the last chunk.

        decord's threaded decoder keeps decoding into an unbounded frame queue while nobody asks
        for frames (dmlc/decord#157, #208). With a consumer slower than the decoder (C3D on a CPU
        behind a full DataLoader queue) the queue grows with the video's length: measured +650 MB
        on a 10-minute 320x240 video at 0.1 s per 128-frame chunk. A seek flushes that queue; the
        next get_batch seeks accurately back to where we were (decoding from the previous
        keyframe), which costs decode time only when decoding is not the bottleneck anyway, as it
        is done only when the consumer took longer than the decoding of the chunk.
        """
        self._reader.seek(0)

    def _frame_by_frame(self, start: int, stop: int) -> np.ndarray:
        import decord

        frames = []
        for index in range(start, stop):
            try:
                frames.append(self._reader[index].asnumpy())
            except (RuntimeError, decord.DECORDError):
                break
        return np.stack(frames) if frames else np.zeros((0, 1, 1, 3), np.uint8)


def _probe(path: Path) -> _Claim:
    """Open the container with PyAV and decode one frame before decord sees the file.

    decord keeps broken global state after it fails to open a file: the next video opened in the
    same process can come out with 4 channels or fail to copy frames. Rejecting unreadable
    files here keeps decord away from them.

    Returns:
        What the container claims: its frame count, or (Matroska, which stores none) its
        duration times its frame rate, rounded.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DecodeError(f"{path}: unreadable video (no video stream)")
            stream = container.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or 0)
            next(container.decode(video=0))
            if stream.frames > 0:
                return _Claim(int(stream.frames), True, rate)
            seconds = container.duration / 1e6 if container.duration else 0.0  # AV_TIME_BASE
            return _Claim(round(seconds * rate), False, rate)
    except StopIteration as err:
        raise DecodeError(f"{path}: unreadable video (zero frames decodable)") from err
    except av.FFmpegError as err:
        raise DecodeError(f"{path}: unreadable video ({_first_line(err)})") from err


def pyav_chunks(path: Path, chunk_frames: int) -> Iterator[np.ndarray]:
    """Sequential PyAV decode in chunks (the fallback decoder); stops at a decode error."""
    import av

    batch = []
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                batch.append(frame.to_ndarray(format="rgb24"))
                if len(batch) == chunk_frames:
                    yield np.stack(batch)
                    batch = []
    except av.FFmpegError as err:
        logger.warning("%s: PyAV stopped at a decode error (%s); keeping the frames before it",
                       path, _first_line(err))
    if batch:
        yield np.stack(batch)


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


def set_torch_threads_for_worker(_: int) -> None:
    """DataLoader worker_init_fn: one intra-op thread per worker (workers are the parallelism)."""
    torch.set_num_threads(1)
