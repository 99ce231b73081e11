"""The extraction engine: clips from DataLoader workers to per-video features.

Workers decode and preprocess (claws.extract.loader) while the main process runs the network.
Clips of several videos share a network batch of `batch_size`; each video's features are
assembled in clip order and handed to `on_done` as soon as its last clip has been through the
network. A video that cannot be read goes to `on_failed` with the reason; the rest go on. On a
GPU, batches are copied from pinned memory without blocking.

Shapes: clips (B, 3, 16, 112, 112); features (B, D); one video's features (T, D) float32.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from claws.data.videos import VideoItem
from claws.extract.clips import num_clips
from claws.extract.loader import ClipChunk, ClipStream, Preprocess, VideoEnd, VideoFailed
from claws.extract.video import set_torch_threads_for_worker

logger = logging.getLogger(__name__)

Network = Callable[[torch.Tensor], torch.Tensor]  # (B, ...) clips on device -> (B, D) features
OnDone = Callable[[VideoItem, np.ndarray, VideoEnd], None]
OnFailed = Callable[[VideoItem, str], None]


class _Assembler:
    """Packs clips into network batches and puts each video's features back together."""

    def __init__(self, network: Network, batch_size: int, device: torch.device) -> None:
        self.network, self.batch_size, self.device = network, batch_size, device
        self.queue: list[ClipChunk] = []
        self.queued = 0
        self.waiting: dict[str, int] = defaultdict(int)  # clips of a video not yet computed
        self.parts: dict[str, list[tuple[int, np.ndarray]]] = defaultdict(list)
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
        clips = torch.cat([p.clips for p in pieces])
        if self.device.type == "cuda":
            clips = clips.pin_memory().to(self.device, non_blocking=True)
        with torch.inference_mode():
            features = self.network(clips).float().cpu().numpy()
        self.network_calls += 1
        self.clips_done += taken
        self.queued -= taken
        offset = 0
        for p in pieces:
            n = len(p.clips)
            self.parts[p.video_id].append((p.first_clip, features[offset:offset + n]))
            self.waiting[p.video_id] -= n
            offset += n

    def drop(self, video_id: str) -> None:
        kept = [c for c in self.queue if c.video_id != video_id]
        self.queued = sum(len(c.clips) for c in kept)
        self.queue = kept
        self.waiting.pop(video_id, None)
        self.parts.pop(video_id, None)

    def features(self, end: VideoEnd) -> np.ndarray:
        """(T, D) features of a finished video, checked against its decoded frame count."""
        parts = sorted(self.parts.pop(end.video_id, []), key=lambda p: p[0])
        self.waiting.pop(end.video_id, None)
        expected = num_clips(end.num_frames)
        contiguous = all(a[0] + len(a[1]) == b[0] for a, b in zip(parts, parts[1:]))
        features = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, 0), np.float32)
        if len(features) != expected or not contiguous or parts[0][0] != 0:
            raise RuntimeError(
                f"video {end.video_id}: got {len(features)} clips for {end.num_frames} frames "
                f"(expected {expected}); this is a bug in the engine"
            )
        return features.astype(np.float32, copy=False)


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
        workers: DataLoader worker processes (0 decodes in the main process).
        chunk_clips: clips decoded at a time per worker.
        device: where the network runs.
        decode_threads: decoder threads per worker.
        progress: show a tqdm bar (videos, clips/s, ETA).

    Returns:
        Counters: videos_done, videos_failed, clips, network_calls, seconds, clips_per_s.
    """
    device = torch.device(device)
    by_id = {item.video_id: item for item in items}
    loader = DataLoader(
        ClipStream(items, preprocess, chunk_clips, decode_threads), batch_size=None,
        num_workers=min(workers, len(items)), worker_init_fn=set_torch_threads_for_worker,
        prefetch_factor=2 if workers > 0 else None, persistent_workers=False,
    )
    assembler = _Assembler(network, batch_size, device)
    ended: dict[str, VideoEnd] = {}
    counts = {"videos_done": 0, "videos_failed": 0}
    start = time.perf_counter()
    bar = tqdm(total=len(items), unit="video", disable=not progress, dynamic_ncols=True)

    def finish_ready() -> None:
        for vid in [v for v in ended if assembler.waiting.get(v, 0) == 0]:
            end = ended.pop(vid)
            on_done(by_id[vid], assembler.features(end), end)
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
    finish_ready()
    bar.close()
    seconds = time.perf_counter() - start
    return {**counts, "clips": assembler.clips_done, "network_calls": assembler.network_calls,
            "seconds": seconds, "clips_per_s": assembler.clips_done / max(seconds, 1e-9)}
