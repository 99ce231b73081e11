"""Benchmark of `claws score` on raw footage: real-time factor and the share outside C3D.

    .venv/bin/python bench/score.py [--videos ../shared/data/videos/vtest.avi ...] [--workers N]

For each video, runs the whole raw-input scoring path (decode, preprocess, C3D, shards with the
checkpoint's statistics, CLAWS Net windows, CSV/NPY/events/PNG outputs) in a fresh folder and
times it, with the C3D network's own calls timed inside the same run. Prints one JSON line:
per video the real-time factor (seconds of video per second of compute) and the fraction of the
wall time spent outside the C3D network (decoding, preprocessing, normalization, scoring, I/O).
Compare the ratios, not absolute times: the machine is shared. C3D weights are random (seeded):
the cost of the network does not depend on the values of its weights. The scoring head is a
CLAWS Net of the paper's sizes, untrained (its cost does not depend on training either).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import claws.extract.c3d as c3d
from claws.data.shards import NormStats
from claws.extract.cpu_share import default_workers
from claws.model.claws import ClawsNet
from claws.pipeline.training.checkpoint import save_checkpoint
from claws.pipeline.cli import main

SHARED = Path(os.environ.get("CLAWS_SHARED_DATA",
                             Path(__file__).resolve().parents[2] / "shared" / "data"))
DEFAULT_VIDEOS = [SHARED / "videos" / "vtest.avi", SHARED / "videos" / "wannaworktogether.mp4"]


def paper_size_run(folder: Path) -> Path:
    """A checkpoint of an untrained CLAWS Net of the paper's sizes over random-weights features."""
    torch.manual_seed(0)
    args = {"feature_dim": 2048}
    extractor = {"random": True, "seed": 0, "weights_sha256": "", "feature_dim": 2048}
    save_checkpoint(folder / "checkpoints" / "last.pt", model=ClawsNet(**args),
                    model_name="claws", model_args=args, config={"window": 64},
                    norm_stats=NormStats.identity(2048),
                    feature_meta={"feature_dim": 2048, "clip_len": 16, "extractor": extractor},
                    step=0, seed=0, version="bench")
    return folder


class NetworkTimer:
    """Wraps claws.extract.c3d.build_extractor (what claws score calls): every C3D call is timed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.clips = 0
        self.original = c3d.build_extractor

    def build(self, *args, **kwargs):
        built = self.original(*args, **kwargs)
        network = built.network

        def timed(clips: torch.Tensor) -> torch.Tensor:
            start = time.perf_counter()
            out = network(clips)
            if out.is_cuda:
                torch.cuda.synchronize()
            self.seconds += time.perf_counter() - start
            self.clips += len(clips)
            return out

        return built._replace(network=timed)


def bench_video(video: Path, run: Path, work: Path, workers: int, device: str) -> dict:
    """Score one video from raw footage in a fresh folder; figures of that run."""
    timer = NetworkTimer()
    c3d.build_extractor = timer.build
    try:
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON line
            code = main(["score", str(video), "--run", str(run), "--weights", "random",
                         "--out", str(work / video.stem), "--workers", str(workers),
                         "--device", device, "--no-progress"])
        wall = time.perf_counter() - start
    finally:
        c3d.build_extractor = timer.original
    if code != 0:
        raise RuntimeError(f"claws score failed on {video} (exit {code})")
    info = json.loads((work / video.stem / f"{video.stem}.events.json").read_text())
    duration = info["num_frames"] / info["fps"]
    return {
        "video": video.name, "frames": info["num_frames"], "fps": info["fps"],
        "duration_s": round(duration, 2), "clips": timer.clips, "wall_s": round(wall, 2),
        "c3d_s": round(timer.seconds, 2),
        "realtime_factor": round(duration / wall, 4),
        "realtime_factor_c3d_only": round(duration / max(timer.seconds, 1e-9), 4),
        "outside_c3d_fraction": round(1 - timer.seconds / wall, 4),
    }


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=Path, nargs="+", default=DEFAULT_VIDEOS)
    parser.add_argument("--workers", type=int, default=default_workers(), help="decoding worker processes")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = paper_size_run(Path(tmp) / "run")
        rows = [bench_video(v, run, Path(tmp), args.workers, args.device) for v in args.videos]
    total_video = sum(r["duration_s"] for r in rows)
    total_wall = sum(r["wall_s"] for r in rows)
    print(json.dumps({
        "bench": "score_raw", "device": args.device, "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(), "workers": args.workers,
        "videos": rows,
        "realtime_factor": round(total_video / total_wall, 4),
        "outside_c3d_fraction": round(
            float(np.average([r["outside_c3d_fraction"] for r in rows],
                             weights=[r["wall_s"] for r in rows])), 4),
    }))


if __name__ == "__main__":
    main_bench()
