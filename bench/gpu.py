"""The GPU extraction path in one short run (under 8 minutes on one GPU); prints one JSON line.

On the GPU it measures, in this order:
(1) network_clips_per_s: C3D alone (mean subtraction, C3D, fc6 -> 2048) per precision and batch
    size, on uint8 crops in pinned host memory (the copy to the device is counted);
(2) fc6 agreement of fp16 and bf16 against fp32 on the same clips (cosine min/mean, relative L2);
(3) cpu_crop_clips_per_s_per_core: decode + resize + crop of one process on one core, the work
    each DataLoader worker does: it bounds what the CPUs can feed the GPU;
(4) pipeline_clips_per_s: the whole extraction engine (workers decode and crop synthetic 320x240
    30 fps footage, the network in this process) at the default precision of the device, and
    pipeline_vs_network;
(5) ucf_crime_hours: the projected time for UCF-Crime's 864k clips at the pipeline's rate, at
    the network's rate, and at the workers' crop rate (whichever bounds).

    python bench/gpu.py                 # the GPU, default sizes
    python bench/gpu.py --device cpu --tiny   # the same code on the CPU, tiny sizes (the tests)

Random C3D weights (seeded): throughput does not depend on their values; agreement is measured on
crops of real footage (the shared vtest.avi when present, else synthetic frames).
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
import torch.nn.functional as F

from claws.data.videos import VideoItem
from claws.extract.c3d import build_extractor, crop_clips, default_precision
from claws.extract.cpu_share import default_workers
from claws.extract.engine import default_batch_size
from claws.extract.synthetic import synthetic_frames, write_video

from rates import crop_rate_per_core, median, network_rate, pipeline_rate, synchronize

SHARED = Path(os.environ.get("CLAWS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
UCF_CRIME_CLIPS = 864_000  # 1,900 videos, 128 hours at 30 fps, 16-frame clips


def sample_crops(count: int) -> tuple[torch.Tensor, str]:
    """(count, 16, 112, 112, 3) uint8 crops of real footage when at hand."""
    video = SHARED / "videos" / "vtest.avi"
    if video.is_file():
        from claws.extract.video import decode_all

        frames = decode_all(video)[: 16 * count]
        source = f"{video.name}"
    else:
        frames = synthetic_frames(16 * count, 240, 320, seed=0)
        source = "synthetic 320x240"
    frames = np.concatenate([frames] * -(-16 * count // len(frames)))[: 16 * count]
    return crop_clips(frames.reshape(count, 16, *frames.shape[1:])), source


def precisions_for(device: torch.device) -> list[str]:
    if device.type == "cuda":
        return ["fp16", "bf16", "fp32"]
    return ["fp32", "bf16"] if default_precision("cpu") == "bf16" else ["fp32"]


def network_figures(device: torch.device, crops: torch.Tensor, batches: list[int],
                    repeat: int, compare: int) -> tuple[dict, dict]:
    """clips/s per precision and batch; fc6 of each precision on the first clips."""
    rates, fc6 = {}, {}
    for precision in precisions_for(device):
        built = build_extractor("random", device=device, precision=precision, feature_dim=4096)
        network_rate(built.network, crops[: batches[0]], batches[0], device)  # warm-up
        rates[precision] = {}
        for batch in batches:
            host = crops.repeat(-(-batch // len(crops)), 1, 1, 1, 1)[: max(batch, len(crops))]
            rates[precision][batch] = round(network_rate(built.network, host, batch, device, repeat), 2)
        with torch.inference_mode():
            fc6[precision] = built.network(crops[:compare].to(device)).float().cpu()
        del built
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rates, fc6


def agreement(fc6: dict) -> dict:
    reference = fc6["fp32"]
    out = {}
    for precision, values in fc6.items():
        if precision == "fp32":
            continue
        cos = F.cosine_similarity(values, reference)
        out[precision] = {"cos_min": round(cos.min().item(), 6), "cos_mean": round(cos.mean().item(), 6),
                          "rel_l2": round(((values - reference).norm() / reference.norm()).item(), 6)}
    return out


def footage(folder: Path, videos: int, seconds: float) -> list[VideoItem]:
    """`videos` copies of one synthetic 320x240 30 fps H.264 video, as surveillance footage comes
    (encoding one and copying it keeps the bench short)."""
    import shutil

    frames = synthetic_frames(int(seconds * 30), 240, 320, seed=2, event=(10, 40))
    first = write_video(folder / "cam00.mp4", frames, fps=30.0)
    items = [VideoItem("cam00", first)]
    for i in range(1, videos):
        items.append(VideoItem(f"cam{i:02d}", Path(shutil.copyfile(first, folder / f"cam{i:02d}.mp4"))))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (a CPU check that the code runs)")
    parser.add_argument("--batches", type=int, nargs="+", default=None, help="network batch sizes")
    parser.add_argument("--videos", type=int, default=None, help="synthetic videos of the pipeline run")
    parser.add_argument("--seconds", type=float, default=None, help="length of each synthetic video")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--rounds", type=int, default=None,
                        help="network / pipeline alternations (default 2; 1 with --tiny)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    tiny = args.tiny or device.type != "cuda"
    batches = args.batches or ([2] if tiny else [64, 128, 256])
    videos = args.videos or (1 if tiny else 2 * args.workers)
    seconds = args.seconds or (0.6 if tiny else 60.0)
    rounds = args.rounds or (1 if tiny else 2)
    started = time.perf_counter()
    result: dict = {"bench": "gpu", "device": str(device), "tiny": tiny, "workers": args.workers,
                    "cpu_cores": os.cpu_count(), "cpu": platform.processor() or platform.machine()}
    if device.type == "cuda":
        result["gpu"] = torch.cuda.get_device_name(device)
    crops, source = sample_crops(2 if tiny else 64)
    rates, fc6 = network_figures(device, crops, batches, 1 if tiny else 5, 2 if tiny else 16)
    result.update(network_clips_per_s=rates, agreement_vs_fp32=agreement(fc6), clips_source=source)
    precision = default_precision(device)
    batch = default_batch_size(device) if not tiny else batches[0]
    result.update(pipeline_precision=precision, pipeline_batch_size=batch)
    with tempfile.TemporaryDirectory() as tmp:
        items = footage(Path(tmp), videos, seconds)
        result["cpu_crop_clips_per_s_per_core"] = round(crop_rate_per_core(items[0]), 2)
        built = build_extractor("random", device=device, precision=precision)
        host = crops.repeat(-(-batch // len(crops)), 1, 1, 1, 1)[: max(batch, len(crops))]
        network_rate(built.network, host, batch, device)  # warm-up at this batch size
        nets, pipes = [], []
        for _ in range(rounds):
            nets.append(network_rate(built.network, host, batch, device, 1 if tiny else 20))
            pipes.append(pipeline_rate(items, built.network, built.preprocess, batch_size=batch,
                                       workers=args.workers, device=device)[0])
    synchronize(device)
    pipe, net = median(pipes), median(nets)
    crop_bound = result["cpu_crop_clips_per_s_per_core"] * args.workers
    result.update(
        pipeline_clips=videos * -(-int(seconds * 30) // 16),
        pipeline_clips_per_s=round(pipe, 2), network_alone_clips_per_s=round(net, 2),
        pipeline_vs_network=round(median([p / n for p, n in zip(pipes, nets)]), 3),
        workers_crop_bound_clips_per_s=round(crop_bound, 2),
        ucf_crime_hours={
            "pipeline": round(UCF_CRIME_CLIPS / pipe / 3600, 2),
            "network_alone": round(UCF_CRIME_CLIPS / net / 3600, 2),
            "workers_crop_bound": round(UCF_CRIME_CLIPS / crop_bound / 3600, 2),
        },
        bound_by="network" if net <= crop_bound else "decode and crop on the CPU",
        seconds=round(time.perf_counter() - started, 1),
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
