"""The extraction engine: videos decoded in DataLoader workers, clips through the network in the
main process, per-video features out.

The DataLoader side: `ClipStream` is an IterableDataset over videos; each worker takes a
disjoint share. For every video it yields `ClipChunk`s (a few clips at a time, so memory does not
grow with the video's length) and then one `VideoEnd` with the number of frames actually decoded,
or one `VideoFailed` with the reason when the video cannot be read (the job goes on). Clip k
covers frames [16k, 16k+16); the tail is padded by repeating its last frame (claws.data.clips).

The network side (`extract_videos`): clips of several videos share a network batch of
`batch_size` (claws.extract.batches: buffers, streams, the device-side finite check); each
video's features are assembled in clip order and handed to `on_done` as soon as its last clip has
been through the network. A video that cannot be read, or whose features are not all finite (an
fp16 overflow), goes to `on_failed` with the reason; the rest go on.

Where the time goes is measured by bench/extract.py (CPU) and bench/gpu.py (GPU). What keeps the
network busy: workers ship small uint8 crops (the float work runs on the network's device, inside
the network callable); batches are packed into two preallocated buffers (pinned on a GPU, copied in
and out on side streams); on a GPU a finished video is read only once the next batch is queued,
waiting for its own last batch, not the newest; workers hand over records as they come
(`in_order=False`).

Shapes: frames (n, H, W, 3) uint8 RGB; clips (B, ...) as `preprocess` makes them, e.g.
(B, 16, 112, 112, 3) uint8 crops; features (B, D); one video's features (T, D) float32.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Callable, Iterator, NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm import tqdm

from claws.data.clips import CLIP_LEN, num_clips, pad_clip_frames
from claws.data.videos import VideoItem
from claws.extract.batches import ClipChunk, Network, NetworkBatches, Part, read_parts
from claws.extract.video import open_video

logger = logging.getLogger(__name__)

Preprocess = Callable[[np.ndarray], torch.Tensor]  # (c, 16, H, W, 3) uint8 -> network input


# --- the DataLoader side: decode and preprocess in worker processes ---------------------------

class VideoEnd(NamedTuple):
    """A video was decoded to its end; every one of its clips was yielded before."""

    video_id: str
    num_frames: int  # frames actually decoded
    fps: float
    reported_frames: int  # what the container claimed
    rotation: int = 0  # degrees the frames were turned counterclockwise (display matrix)
    mirrored: bool = False  # then mirrored left-right


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
    yield VideoEnd(item.video_id, num_frames, float(reader.fps), int(reader.reported_frames),
                   int(reader.rotation), bool(reader.mirrored))


class ClipStream(IterableDataset):
    """Videos decoded and preprocessed chunk by chunk; workers take disjoint shares.

    Args:
        items: videos to read, each with a path.
        preprocess: frames (c, 16, H, W, 3) uint8 RGB to the network input; must be picklable
            (e.g. claws.extract.c3d.crop_clips).
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


# --- the network side: batches across videos, features back per video ----------------------

OnDone = Callable[[VideoItem, np.ndarray, VideoEnd], None]
OnFailed = Callable[[VideoItem, str], None]


class _Assembler:
    """Packs clips into network batches and puts each video's features back together.

    On a GPU a video is read only once the batch after its last one has been queued, so the host
    never waits for the batch it just queued (claws.extract.batches).
    """

    def __init__(self, network: Network, batch_size: int, device: torch.device,
                 batches: NetworkBatches | None = None) -> None:
        self.batch_size = batch_size
        self.batches = batches or NetworkBatches(network, batch_size, device)
        self.lazy = self.batches.streams is not None  # read a video one batch late (async GPU)
        self.queue: list[ClipChunk] = []
        self.queued = 0
        self.waiting: dict[str, int] = defaultdict(int)  # clips of a video not yet computed
        self.parts: dict[str, list[Part]] = defaultdict(list)
        self.last_batch: dict[str, int] = {}  # video -> the network call that computed its last clip
        self.network_calls = 0
        self.clips_done = 0

    def add(self, chunk: ClipChunk) -> None:
        self.queue.append(chunk)
        self.queued += len(chunk.clips)
        self.waiting[chunk.video_id] += len(chunk.clips)
        while self.queued >= self.batch_size:
            self.run_batch(self.batch_size)

    def run_batch(self, size: int) -> None:
        """Run the network on the first `size` queued clips (splitting a chunk if needed)."""
        pieces, taken = [], 0
        while taken < size and self.queue:
            chunk = self.queue[0]
            take = min(size - taken, len(chunk.clips))
            pieces.append(ClipChunk(chunk.video_id, chunk.first_clip, chunk.clips[:take]))
            if take == len(chunk.clips):
                self.queue.pop(0)
            else:
                self.queue[0] = ClipChunk(chunk.video_id, chunk.first_clip + take, chunk.clips[take:])
            taken += take
        parts = self.batches.run(pieces)
        self.network_calls += 1
        self.clips_done += taken
        self.queued -= taken
        for video_id, part in parts:
            self.parts[video_id].append(part)
            self.waiting[video_id] -= len(part.features)
            self.last_batch[video_id] = self.network_calls

    def complete(self, video_id: str, flushing: bool) -> bool:
        """Every clip of the video computed (and, unless flushing, not in the newest batch)."""
        if self.waiting.get(video_id, 0):
            return False
        return flushing or not self.lazy or self.last_batch.get(video_id, 0) < self.network_calls

    def drop(self, video_id: str) -> None:
        kept = [c for c in self.queue if c.video_id != video_id]
        self.queued = sum(len(c.clips) for c in kept)
        self.queue = kept
        self.waiting.pop(video_id, None)
        self.parts.pop(video_id, None)
        self.last_batch.pop(video_id, None)

    def features(self, end: VideoEnd) -> np.ndarray:
        """(T, D) features of a finished video, checked against its decoded frame count.

        Raises:
            NonFiniteFeatures: some clip's features hold NaN or inf (the video fails alone).
        """
        parts = self.parts.pop(end.video_id, [])  # in network-call order, which is clip order
        self.waiting.pop(end.video_id, None)
        self.last_batch.pop(end.video_id, None)
        expected = num_clips(end.num_frames)
        contiguous = all(a.first_clip + len(a.features) == b.first_clip
                         for a, b in zip(parts, parts[1:]))
        features, bad = read_parts(parts) if parts else (torch.zeros(0, 0), 0)
        if len(features) != expected or not contiguous or parts[0].first_clip != 0:
            raise RuntimeError(
                f"video {end.video_id}: got {len(features)} clips for {end.num_frames} frames "
                f"(expected {expected}); this is a bug in the engine"
            )
        if bad:
            raise NonFiniteFeatures(
                f"non-finite features (NaN or inf) in {bad} of {expected} clips: the network "
                "overflowed (fp16 convolutions can); extract this video with --precision bf16 or "
                "fp32 into another --out (the precision is part of the extractor's identity)"
            )
        return features.numpy()


class NonFiniteFeatures(ValueError):
    """A video's features hold NaN or inf: that video fails, the job goes on."""


def _worker_init(worker_id: int) -> None:
    """One thread per worker for torch and OpenCV: the workers are the parallelism."""
    torch.set_num_threads(1)
    try:
        import cv2
    except ImportError:  # pragma: no cover - a preprocess that does not resize
        return
    cv2.setNumThreads(1)


def default_batch_size(device: str | torch.device) -> int:
    """Clips per network call: 16 on a CPU (the rate does not change with it), 128 on a GPU."""
    return 128 if torch.device(device).type == "cuda" else 16


def extract_videos(
    items: Sequence[VideoItem],
    network: Network,
    preprocess: Preprocess,
    on_done: OnDone,
    on_failed: OnFailed,
    *,
    batch_size: int = 16,
    workers: int = 1,
    chunk_clips: int = 8,
    device: str | torch.device = "cpu",
    decode_threads: int = 1,
    progress: bool = True,
) -> dict:
    """Extract features of every video; each finished video goes to `on_done` at once.

    Args:
        items: videos with paths (sort longest first for balanced workers).
        network: clips on `device` to (B, D) features (e.g. C3D then fc6_to_feature).
        preprocess: picklable frames-to-clips function run in the workers.
        on_done: called with (item, features (T, D) float32, VideoEnd) per finished video.
        on_failed: called with (item, reason) per video that could not be read.
        batch_size: clips per network call, taken from one or several videos.
        workers: DataLoader worker processes (0 decodes in the main process; `default_workers`).
        chunk_clips: clips decoded at a time per worker.
        device: where the network runs.
        decode_threads: decoder threads per worker.
        progress: show a tqdm bar (videos, clips/s, ETA).

    Returns:
        Counters: videos_done, videos_failed, clips, network_calls, seconds, clips_per_s.
    """
    device = torch.device(device)
    by_id = {item.video_id: item for item in items}
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # one clip shape all along: pick the fastest kernels
    workers = min(workers, len(items))
    # in_order=False: a worker's records still arrive in its own order (all a video needs), but
    # the slowest worker no longer sets the pace of the others.
    loader = DataLoader(
        ClipStream(items, preprocess, chunk_clips, decode_threads), batch_size=None,
        num_workers=workers, worker_init_fn=_worker_init,
        prefetch_factor=2 if workers > 0 else None, persistent_workers=False,
        **({"in_order": False} if workers > 1 else {}),
    )
    assembler = _Assembler(network, batch_size, device)
    ended: dict[str, VideoEnd] = {}
    counts = {"videos_done": 0, "videos_failed": 0}
    start = time.perf_counter()
    bar = tqdm(total=len(items), unit="video", disable=not progress, dynamic_ncols=True)

    def finish_ready(flushing: bool = False) -> None:
        for vid in [v for v in ended if assembler.complete(v, flushing)]:
            end = ended.pop(vid)
            try:
                features = assembler.features(end)
            except NonFiniteFeatures as err:
                on_failed(by_id[vid], str(err))
                counts["videos_failed"] += 1
            else:
                on_done(by_id[vid], features, end)
                counts["videos_done"] += 1
            bar.update(1)

    for record in loader:
        if isinstance(record, ClipChunk):
            assembler.add(record)
        elif isinstance(record, VideoEnd):
            ended[record.video_id] = record
        else:
            assert isinstance(record, VideoFailed)
            assembler.drop(record.video_id)
            on_failed(by_id[record.video_id], record.reason)
            counts["videos_failed"] += 1
            bar.update(1)
        finish_ready()
        bar.set_postfix(clips_per_s=f"{assembler.clips_done / (time.perf_counter() - start):.1f}")
    while assembler.queued:
        assembler.run_batch(min(batch_size, assembler.queued))
    finish_ready(flushing=True)
    bar.close()
    seconds = time.perf_counter() - start
    return {**counts, "clips": assembler.clips_done, "network_calls": assembler.network_calls,
            "seconds": seconds, "clips_per_s": assembler.clips_done / max(seconds, 1e-9)}
