"""The DataLoader side of extraction: decode and preprocess videos in worker processes.

`ClipStream` is an IterableDataset over videos; each DataLoader worker takes a disjoint share.
For every video it yields `ClipChunk`s (a few clips at a time, so memory does not grow with the
video's length) and then one `VideoEnd` with the number of frames actually decoded, or one
`VideoFailed` with the reason when the video cannot be read (the job goes on). Clip k covers
frames [16k, 16k+16); the tail is padded by repeating its last frame (claws.data.clips).

Shapes: frames (n, H, W, 3) uint8 RGB; clips (c, 3, 16, 112, 112) float32 after `preprocess`.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterator, NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from claws.data.videos import VideoItem
from claws.data.clips import CLIP_LEN, pad_clip_frames
from claws.extract.video import open_video

logger = logging.getLogger(__name__)

Preprocess = Callable[[np.ndarray], torch.Tensor]  # (c, 16, H, W, 3) uint8 -> network input


class ClipChunk(NamedTuple):
    """Consecutive preprocessed clips of one video."""

    video_id: str
    first_clip: int  # index of clips[0] in the video
    clips: torch.Tensor  # (c, ...) network input


class VideoEnd(NamedTuple):
    """A video was decoded to its end; every one of its clips was yielded before."""

    video_id: str
    num_frames: int  # frames actually decoded
    fps: float
    reported_frames: int  # what the container claimed


class VideoFailed(NamedTuple):
    """A video could not be read; clips yielded before for it must be dropped."""

    video_id: str
    reason: str


def _clips(frames: np.ndarray) -> np.ndarray:
    return frames.reshape(-1, CLIP_LEN, *frames.shape[1:])  # (c, 16, H, W, 3)


def stream_video(
    item: VideoItem, preprocess: Preprocess, chunk_clips: int, threads: int = 1
) -> Iterator[ClipChunk | VideoEnd]:
    """ClipChunks of one video followed by its VideoEnd; raises on a decode error."""
    reader = open_video(item.path, item.is_frame_folder, item.fps, threads)
    carry: np.ndarray | None = None
    first_clip = num_frames = 0
    for chunk in reader.chunks(chunk_clips * CLIP_LEN):
        num_frames += len(chunk)
        frames = chunk if carry is None else np.concatenate([carry, chunk])
        full = len(frames) // CLIP_LEN * CLIP_LEN
        if full:
            yield ClipChunk(item.video_id, first_clip, preprocess(_clips(frames[:full])))
            first_clip += full // CLIP_LEN
        carry = frames[full:] if full < len(frames) else None
    if carry is not None:
        yield ClipChunk(item.video_id, first_clip, preprocess(pad_clip_frames(carry)[None]))
    if num_frames == 0:
        raise RuntimeError("zero frames decoded")
    yield VideoEnd(item.video_id, num_frames, float(reader.fps), int(reader.reported_frames))


class ClipStream(IterableDataset):
    """Videos decoded and preprocessed chunk by chunk; workers take disjoint shares.

    Args:
        items: videos to read, each with a path.
        preprocess: frames (c, 16, H, W, 3) uint8 RGB to the network input; must be picklable
            (e.g. functools.partial(preprocess_clips, mean=mean)).
        chunk_clips: clips decoded and preprocessed at a time (memory per worker).
        threads: decoder threads per worker.
    """

    def __init__(
        self, items: Sequence[VideoItem], preprocess: Preprocess, chunk_clips: int = 8,
        threads: int = 1,
    ) -> None:
        super().__init__()
        if chunk_clips < 1:
            raise ValueError(f"chunk_clips must be >= 1, got {chunk_clips}")
        self.items = list(items)
        self.preprocess = preprocess
        self.chunk_clips = chunk_clips
        self.threads = threads

    def __iter__(self) -> Iterator[ClipChunk | VideoEnd | VideoFailed]:
        info = get_worker_info()
        share = self.items if info is None else self.items[info.id::info.num_workers]
        for item in share:
            try:
                yield from stream_video(item, self.preprocess, self.chunk_clips, self.threads)
            except Exception as err:  # any decode/preprocess error fails this video only
                reason = f"{type(err).__name__}: {err}".splitlines()[0][:300]
                logger.debug("%s failed: %s", item.video_id, reason)
                yield VideoFailed(item.video_id, reason)
