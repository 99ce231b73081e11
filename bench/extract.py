"""Benchmark of batch extraction on real footage; prints one JSON line.

(a) pipeline_vs_network, per precision: clips/s of the whole pipeline (decode and crop in
    DataLoader workers, mean subtraction and C3D in the main process) over clips/s of the network
    alone (mean subtraction and C3D) on the same clips' crops already in memory. The two are
    timed alternately, --rounds times, in this one process; the ratio printed is the median of
    the rounds' ratios, so load on the shared machine hits both sides alike. Goal >= 0.9: decoding
    and cropping hide behind the network.
(b) pipeline_vs_baseline: the pipeline against the way typical repositories do it: decode the
    whole video into memory, then preprocess and run clips one at a time (fp32, once).
(c) peak_memory_10min_minus_1min_mb: peak RSS of decode + crop (the part that scales with video
    length; the network's memory is constant) for a 10-minute 320x240 video minus a 1-minute one,
    with a consumer that holds each chunk 50 ms (a read-ahead queue would grow). Goal <= 300 MB.

Real C3D with random weights (the cost of a network does not depend on its weights). bf16 is
measured only where the CPU computes it natively (AMX or AVX512-BF16): elsewhere oneDNN emulates it
about 100x slower than fp32 and the ratio would only say that the network is slow. Usage:
    python bench/extract.py [--video ../shared/data/videos/vtest.avi] [--precisions fp32 bf16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from claws.data.videos import VideoItem
from claws.extract.c3d import build_extractor, crop_clips, default_precision, preprocess_clips
from claws.extract.c3d_mean import load_mean
from claws.extract.cpu_share import default_workers
from claws.extract.video import decode_all

from rates import crop_rate_per_core, long_video, median, network_rate, pipeline_rate, stream_peak_rss_mb

SHARED = Path(os.environ.get("CLAWS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CPU = torch.device("cpu")


def baseline_rate(path: Path, network, mean: np.ndarray) -> float:
    """Whole video decoded into memory, then one clip at a time through the reference path."""
    start = time.perf_counter()
    frames = decode_all(path)
    usable = len(frames) // 16 * 16
    with torch.inference_mode():
        for k in range(0, usable, 16):
            network.model(preprocess_clips(frames[None, k:k + 16], mean))
    return (usable // 16) / (time.perf_counter() - start)


def compare(precision: str, video: Path, frames: np.ndarray, rounds: int, batch_size: int,
            workers: int) -> dict:
    """Network alone and pipeline, alternately, `rounds` times."""
    built = build_extractor("random", precision=precision)
    crops = crop_clips(frames[: len(frames) // 16 * 16].reshape(-1, 16, *frames.shape[1:]))
    crops = crops[: len(crops) // batch_size * batch_size]  # whole batches: same batching as the pipeline
    item = VideoItem("clip", video)
    network_rate(built.network, crops[:batch_size], batch_size, CPU)  # warm-up: oneDNN primitives
    nets, pipes, features = [], [], None
    for _ in range(rounds):
        nets.append(network_rate(built.network, crops, batch_size, CPU))
        rate, done = pipeline_rate([item], built.network, built.preprocess,
                                   batch_size=batch_size, workers=workers, device=CPU)
        pipes.append(rate)
        features = done["clip"]
    with torch.inference_mode():
        direct = built.network(crops[:batch_size]).numpy()
    return {
        "network_clips_per_s": [round(r, 3) for r in nets],
        "pipeline_clips_per_s": [round(r, 3) for r in pipes],
        "pipeline_vs_network": round(median([p / n for p, n in zip(pipes, nets)]), 3),
        "pipeline_equals_network_features": bool(np.array_equal(features[:batch_size], direct)),
        "network": built.network,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SHARED / "videos" / "vtest.avi")
    parser.add_argument("--frames", type=int, default=512, help="frames of the video used in (a), (b)")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--minutes", type=float, nargs=2, default=[1.0, 10.0],
                        help="lengths of the two videos of (c)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    result: dict = {"bench": "extract", "cpu": platform.processor() or platform.machine(),
                    "cpu_native_bf16": (default_precision("cpu") == "bf16"), "torch_threads": torch.get_num_threads(),
                    "workers": args.workers, "batch_size": args.batch_size, "precisions": {}}
    with tempfile.TemporaryDirectory() as tmp:
        frames = decode_all(args.video)[: args.frames]
        from claws.extract.synthetic import write_video

        clip_video = write_video(Path(tmp) / "clip.avi", frames, fps=10.0, codec="mpeg4")
        frames = decode_all(clip_video)  # the frames the pipeline will decode (MPEG-4 is lossy)
        result.update(video=args.video.name, frames=len(frames), clips=len(frames) // 16)
        # What each clip costs a worker (decode + crop, one thread): the pipeline keeps up with a
        # network that needs N core-ms per clip while this stays a small share of N.
        result["worker_core_ms_per_clip"] = round(1000 / crop_rate_per_core(VideoItem("clip", clip_video)), 1)
        fp32 = None
        for precision in args.precisions:
            if precision != "fp32" and not (default_precision("cpu") == "bf16"):
                result["precisions"][precision] = "not measured: emulated on this CPU (no AMX or AVX512-BF16)"
                continue
            row = compare(precision, clip_video, frames, args.rounds, args.batch_size, args.workers)
            network = row.pop("network")
            fp32 = network if precision == "fp32" else fp32
            result["precisions"][precision] = row
        if fp32 is not None:
            base = baseline_rate(clip_video, fp32, load_mean(None))
            pipe = median(result["precisions"]["fp32"]["pipeline_clips_per_s"])
            result["baseline_clips_per_s"] = round(base, 3)
            result["pipeline_vs_baseline"] = round(pipe / base, 3)
        peaks = {m: stream_peak_rss_mb(long_video(Path(tmp) / f"{m}min.avi", m), consumer_ms=50)
                 for m in args.minutes}
    short, long = args.minutes
    result["peak_rss_mb"] = {f"{m:g}min": round(v, 1) for m, v in peaks.items()}
    result["peak_memory_10min_minus_1min_mb"] = round(peaks[long] - peaks[short], 1)
    ratios = [r["pipeline_vs_network"] for r in result["precisions"].values() if isinstance(r, dict)]
    result["pipeline_vs_network"] = min(ratios) if ratios else None
    result["load_avg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    result["note"] = ("shared 2-core CPU: absolute rates move with the load; each ratio compares "
                      "runs made alternately in this one process")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
