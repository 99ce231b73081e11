"""Benchmark of batch extraction on real footage; prints one JSON line.

(a) pipeline_vs_network: clips/s of the whole pipeline (decord decode + preprocessing in a
    DataLoader worker, C3D in the main process) over clips/s of the network alone on the same
    clips already in memory. Goal >= 0.9: decoding hides behind compute.
(b) pipeline_vs_baseline: the pipeline against the way typical repositories do it: decode the
    whole video into memory, then preprocess and run clips one at a time.
(c) peak_memory_10min_minus_1min_mb: peak RSS of decode + preprocess (the part that scales with
    video length; the network's memory is constant) for a 10-minute video minus a 1-minute one at
    the same resolution. Goal <= 300 MB.

Real C3D with random weights at the default precision of this device. Usage:
    python bench/extract.py [--video ../shared/data/videos/vtest.avi] [--frames 480]
The machine is shared: absolute times are noisy, the ratios compare runs made side by side.
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from claws.data.synthetic import synthetic_frames, write_video
from claws.data.videos import VideoItem
from claws.extract.c3d import default_precision, fc6_to_feature, load_c3d, load_mean, preprocess_clips
from claws.extract.clips import CLIP_LEN
from claws.extract.engine import extract_videos
from claws.extract.loader import ClipStream
from claws.extract.video import decode_all

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"


def pipeline_rate(item, network, preprocess, batch_size) -> tuple[float, np.ndarray]:
    out = {}
    c = extract_videos([item], network, preprocess, lambda i, f, e: out.__setitem__("f", f),
                       lambda i, r: out.__setitem__("err", r), batch_size=batch_size, workers=1,
                       progress=False)
    if "err" in out:
        raise RuntimeError(out["err"])
    return c["clips_per_s"], out["f"]


def network_rate(clips: torch.Tensor, network, batch_size) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(clips), batch_size):
            network(clips[i:i + batch_size])
    return len(clips) / (time.perf_counter() - start)


def baseline_rate(path: Path, network, preprocess) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    frames = decode_all(path)  # the whole video in memory
    usable = len(frames) // CLIP_LEN * CLIP_LEN
    feats = []
    with torch.inference_mode():
        for k in range(0, usable, CLIP_LEN):  # one clip at a time
            feats.append(network(preprocess(frames[None, k:k + CLIP_LEN])).numpy())
    return (usable // CLIP_LEN) / (time.perf_counter() - start), np.concatenate(feats)


def stream_peak_rss_mb(path: Path) -> float:
    """Run in a subprocess: decode + preprocess a whole video through ClipStream."""
    code = (
        "import resource, functools, sys\n"
        "from pathlib import Path\n"
        "from claws.data.videos import VideoItem\n"
        "from claws.extract.loader import ClipStream\n"
        "from claws.extract.c3d import load_mean, preprocess_clips\n"
        "s = ClipStream([VideoItem('v', Path(sys.argv[1]))], functools.partial(preprocess_clips, "
        "mean=load_mean(None)), chunk_clips=8)\n"
        "n = sum(len(r.clips) for r in s if hasattr(r, 'clips'))\n"
        # VmHWM, not ru_maxrss: Linux carries the parent's peak across fork+exec into ru_maxrss
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(n, int(hwm) / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True,
                         text=True).stdout.split()
    return float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--video", type=Path, default=SHARED / "vtest.avi")
    parser.add_argument("--frames", type=int, default=480, help="frames of the video used in (a), (b)")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    precision = default_precision("cpu")
    model = load_c3d("random", precision=precision)
    network = functools.partial(lambda m, x: fc6_to_feature(m(x)), model)
    preprocess = functools.partial(preprocess_clips, mean=load_mean(None))
    with tempfile.TemporaryDirectory() as tmp:
        frames = decode_all(args.video)[: args.frames]
        clip_video = write_video(Path(tmp) / "clip.avi", frames, fps=10.0, codec="mpeg4")
        item = VideoItem("clip", clip_video)
        clips = preprocess(frames[: len(frames) // 16 * 16].reshape(-1, 16, *frames.shape[1:]))
        net = network_rate(clips, network, args.batch_size)
        pipe, pipe_feats = pipeline_rate(item, network, preprocess, args.batch_size)
        base, base_feats = baseline_rate(clip_video, network, preprocess)
        same = float(np.abs(pipe_feats[: len(base_feats)] - base_feats).max()
                     / np.abs(base_feats).max())
        lengths = {}
        for minutes in (1, 10):
            scene = synthetic_frames(600, 240, 320, seed=1)
            n = minutes * 60 * 10  # 10 fps, like vtest.avi
            path = write_video(Path(tmp) / f"{minutes}min.avi",
                               (scene[i % 600] for i in range(n)), fps=10.0, codec="mpeg4")
            lengths[minutes] = stream_peak_rss_mb(path)
    print(json.dumps({
        "video": args.video.name, "frames": len(frames), "clips": len(clips), "precision": precision,
        "batch_size": args.batch_size, "torch_threads": torch.get_num_threads(),
        "network_clips_per_s": round(net, 3), "pipeline_clips_per_s": round(pipe, 3),
        "baseline_clips_per_s": round(base, 3),
        "pipeline_vs_network": round(pipe / net, 3), "pipeline_vs_baseline": round(pipe / base, 3),
        "pipeline_vs_baseline_features_max_rel_diff": same,
        "peak_rss_1min_mb": round(lengths[1], 1), "peak_rss_10min_mb": round(lengths[10], 1),
        "peak_memory_10min_minus_1min_mb": round(lengths[10] - lengths[1], 1),
        "note": "shared 2-core CPU: absolute rates are noisy; ratios are measured in one run",
    }))


if __name__ == "__main__":
    main()
