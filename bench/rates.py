"""What bench/extract.py and bench/gpu.py both measure: the network alone, the whole pipeline,
and the peak memory of decoding a long video. Not a bench by itself.

Every rate counts clips per second of wall time. On a GPU the clock stops only after
`torch.cuda.synchronize()`, so queued work is counted.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from claws.data.videos import VideoItem
from claws.extract.c3d import crop_clips
from claws.extract.engine import extract_videos


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def network_rate(network, crops: torch.Tensor, batch_size: int, device: torch.device,
                 repeat: int = 1) -> float:
    """clips/s of the network alone on crops already in host memory (the copy to the device,
    from pinned memory, is part of feeding it and is counted)."""
    host = crops.pin_memory() if device.type == "cuda" else crops
    synchronize(device)
    start = time.perf_counter()
    with torch.inference_mode():
        for _ in range(repeat):
            for i in range(0, len(host), batch_size):
                network(host[i:i + batch_size].to(device, non_blocking=True))
    synchronize(device)
    return repeat * len(host) / (time.perf_counter() - start)


def pipeline_rate(items: list[VideoItem], network, preprocess, *, batch_size: int, workers: int,
                  device: torch.device) -> tuple[float, dict[str, np.ndarray]]:
    """clips/s of the extraction engine (decode and crop in workers, the network in this
    process), from the call to the last video's features; and the features by video."""
    done: dict[str, np.ndarray] = {}
    failed: dict[str, str] = {}
    synchronize(device)
    start = time.perf_counter()
    counters = extract_videos(items, network, preprocess, lambda i, f, e: done.__setitem__(i.video_id, f),
                              lambda i, r: failed.__setitem__(i.video_id, r), batch_size=batch_size,
                              workers=workers, device=device, progress=False)
    synchronize(device)
    if failed:
        raise RuntimeError(f"the bench's videos failed to extract: {failed}")
    return counters["clips"] / (time.perf_counter() - start), done


def crop_rate_per_core(item: VideoItem) -> float:
    """clips/s of decode + resize + crop in this process with one thread (one worker's work)."""
    import cv2

    from claws.extract.engine import ClipChunk, stream_video

    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        start = time.perf_counter()
        clips = sum(len(r.clips) for r in stream_video(item, crop_clips, 8) if isinstance(r, ClipChunk))
        return clips / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)


def stream_peak_rss_mb(path: Path, chunk_clips: int = 8, consumer_ms: float = 0.0) -> float:
    """Peak RSS (VmHWM) of a fresh process that decodes and crops a whole video through the
    workers' code (ClipStream), holding each chunk `consumer_ms` like a slow network would."""
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from claws.data.videos import VideoItem\n"
        "from claws.extract.c3d import crop_clips\n"
        "from claws.extract.engine import ClipStream\n"
        "stream = ClipStream([VideoItem('v', Path(sys.argv[1]))], crop_clips, int(sys.argv[2]))\n"
        "for record in stream:\n"
        "    time.sleep(float(sys.argv[3]) / 1000)\n"
        # VmHWM, not ru_maxrss: Linux carries the parent's peak across fork+exec into ru_maxrss
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(int(hwm) / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path), str(chunk_clips), str(consumer_ms)],
                         check=True, capture_output=True, text=True).stdout.split()
    return float(out[-1])


def long_video(path: Path, minutes: float, fps: float = 10.0, height: int = 240,
               width: int = 320) -> Path:
    """A synthetic video of `minutes` (a 60-second scene repeated), MPEG-4 in AVI."""
    from claws.extract.synthetic import synthetic_frames, write_video

    scene_frames = int(60 * fps)
    scene = synthetic_frames(scene_frames, height, width, seed=1)
    count = int(minutes * 60 * fps)
    return write_video(path, (scene[i % scene_frames] for i in range(count)), fps=fps, codec="mpeg4")


def median(values: list[float]) -> float:
    return float(np.median(values))
