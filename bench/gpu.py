"""The GPU extraction path in one short run (about 3-6 minutes on one GPU); prints JSON lines.

On the GPU it measures, in this order (the figures that matter most first, so a run cut short
still has them):
(1) network_clips_per_s: C3D alone (mean subtraction, C3D, fc6 -> 2048) per precision and batch
    size, on uint8 crops in pinned host memory (the copy to the device is counted); each
    (precision, batch) is warmed up at its own shape first, so cudnn.benchmark's algorithm
    search is never timed, and only full batches are timed;
(2) agreement_vs_fp32: fp16 and bf16 fc6 against IEEE fp32 fc6 (no TF32) on the same clips
    (cosine min/mean, relative L2); bf16 only where the GPU has bf16 tensor cores (Ampere+);
(3) cpu_crop_clips_per_s_per_core: decode + resize + crop of one process on one core, the work
    each DataLoader worker does: it bounds what the CPUs can feed the GPU;
(4) pipeline_clips_per_s: the whole extraction engine (workers decode and crop synthetic 320x240
    30 fps footage, the network in this process) at the default precision and batch of the
    device, alternated with the network alone, and pipeline_vs_network;
(5) ucf_crime_hours: the projected time for UCF-Crime's 864k clips at the pipeline's rate, at
    the network's rate, and at the workers' crop rate (whichever bounds).

A JSON line is printed after (2) and after each pipeline round ("partial": true), the complete
one last. `--time-limit` (default 420 s) is the script's own budget: once spent, it skips what is
left (said in "skipped") and prints what it has; run it under `timeout` a minute longer.

    python bench/gpu.py                       # the GPU, default sizes
    python bench/gpu.py --device cpu --tiny   # the same code on the CPU, tiny sizes (the tests)

Random C3D weights (seeded): throughput does not depend on their values; agreement is measured
on crops of real footage, vtest.avi, looked up in $CLAWS_SHARED_DATA/videos, ./shared/data/videos
and ../shared/data/videos; else synthetic frames, and "clips_source" says so. Without PyAV the
footage is written as JPEG frame folders instead of H.264 ("footage" says which).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from claws.data.videos import VideoItem
from claws.extract.c3d import build_extractor, crop_clips, cuda_has_native_bf16, default_precision
from claws.extract.cpu_share import default_workers
from claws.extract.engine import default_batch_size
from claws.extract.synthetic import synthetic_frames, write_frame_folder, write_video

from rates import crop_rate_per_core, median, network_rate, pipeline_rate, synchronize

log = logging.getLogger("bench.gpu")
ROOT = Path(__file__).resolve().parents[1]
UCF_CRIME_CLIPS = 864_000  # 1,900 videos, 128 hours at 30 fps, 16-frame clips


class Budget:
    """The script's own time limit: what is left of it, and what was skipped for want of it."""

    def __init__(self, seconds: float) -> None:
        self.start, self.seconds, self.skipped = time.perf_counter(), seconds, []

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def allows(self, what: str) -> bool:
        if self.elapsed() < self.seconds:
            return True
        self.skipped.append(what)
        return False


def shared_video(name: str) -> Path | None:
    """The first `videos/<name>` of the shared data folders that exists, or None."""
    folders = [Path(os.environ["CLAWS_SHARED_DATA"])] if os.environ.get("CLAWS_SHARED_DATA") else []
    folders += [ROOT / "shared" / "data", ROOT.parent / "shared" / "data"]
    return next((f / "videos" / name for f in folders if (f / "videos" / name).is_file()), None)


def sample_crops(count: int) -> tuple[torch.Tensor, str]:
    """(count, 16, 112, 112, 3) uint8 crops of real footage when at hand."""
    video = shared_video("vtest.avi")
    frames = None
    if video is not None:
        from claws.extract.video import decode_all

        try:
            frames, source = decode_all(video)[: 16 * count], str(video)
        except Exception as err:  # e.g. no PyAV here: synthetic frames still measure agreement
            log.warning("cannot decode %s (%s): agreement on synthetic frames", video, err)
    if frames is None:
        if video is None:
            log.warning("vtest.avi not found ($CLAWS_SHARED_DATA, ./shared/data, ../shared/data): "
                        "agreement on synthetic frames")
        frames, source = synthetic_frames(16 * count, 240, 320, seed=0), "synthetic 320x240"
    frames = np.concatenate([frames] * -(-16 * count // len(frames)))[: 16 * count]
    return crop_clips(frames.reshape(count, 16, *frames.shape[1:])), source


def precisions_for(device: torch.device) -> tuple[list[str], dict]:
    """The precisions to measure, and those left out with the reason."""
    if device.type == "cuda":
        if cuda_has_native_bf16(device):
            return ["fp16", "bf16", "fp32"], {}
        return ["fp16", "fp32"], {"bf16": "no bf16 tensor cores before Ampere (emulated, slow)"}
    if default_precision("cpu") == "bf16":
        return ["fp32", "bf16"], {}
    return ["fp32"], {"bf16": "emulated on this CPU (no AMX or AVX512-BF16)"}


def full_batches(crops: torch.Tensor, batch: int) -> torch.Tensor:
    """`batch` clips (repeating the crops), so every timed call has the shape it was warmed on."""
    return crops.repeat(-(-batch // len(crops)), 1, 1, 1, 1)[:batch]


def network_figures(device: torch.device, crops: torch.Tensor, batches: list[int], repeat: int,
                    compare: int, budget: Budget) -> tuple[dict, dict, dict]:
    """clips/s per precision and batch; fc6 of each precision on the first clips; left out."""
    rates, fc6 = {}, {}
    precisions, left_out = precisions_for(device)
    for precision in precisions:
        if not budget.allows(f"network {precision}"):
            continue
        built = build_extractor("random", device=device, precision=precision, feature_dim=4096)
        rates[precision] = {}
        for batch in batches:
            host = full_batches(crops, batch)
            network_rate(built.network, host, batch, device)  # warm-up: cudnn.benchmark's search
            rates[precision][batch] = round(network_rate(built.network, host, batch, device, repeat), 2)
        with torch.inference_mode():
            fc6[precision] = built.network(crops[:compare].to(device)).float().cpu()
        del built
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rates, fc6, left_out


def agreement(fc6: dict) -> dict:
    """Cosine and relative L2 of each precision's fc6 against fp32's (IEEE fp32, no TF32)."""
    if "fp32" not in fc6:
        return {}
    reference = fc6["fp32"]
    out = {}
    for precision, values in fc6.items():
        if precision == "fp32":
            continue
        cos = F.cosine_similarity(values, reference)
        out[precision] = {"cos_min": round(cos.min().item(), 6), "cos_mean": round(cos.mean().item(), 6),
                          "rel_l2": round(((values - reference).norm() / reference.norm()).item(), 6),
                          "finite": bool(torch.isfinite(values).all())}
    return out


def footage(folder: Path, videos: int, seconds: float) -> tuple[list[VideoItem], str]:
    """`videos` copies of one synthetic 320x240 30 fps video, as surveillance footage comes
    (encoding one and copying it keeps the bench short): H.264, or JPEG frames without PyAV."""
    frames = synthetic_frames(int(seconds * 30), 240, 320, seed=2, event=(10, 40))
    try:
        import av  # noqa: F401  (the H.264 writer and reader)
    except ImportError:
        log.warning("PyAV is not installed: the pipeline reads JPEG frame folders, not H.264")
        first = write_frame_folder(folder / "cam00", frames, ext="jpg")
        copy, kind, options = shutil.copytree, "jpeg frame folders (PyAV missing)", {
            "is_frame_folder": True, "fps": 30.0}
    else:
        first = write_video(folder / "cam00.mp4", frames, fps=30.0)
        copy, kind, options = shutil.copyfile, "h264 320x240 30 fps", {}
    items = [VideoItem("cam00", first, **options)]
    for i in range(1, videos):
        target = folder / f"cam{i:02d}{first.suffix}"
        items.append(VideoItem(f"cam{i:02d}", Path(copy(first, target)), **options))
    return items, kind


def pipeline_figures(device: torch.device, crops: torch.Tensor, batch: int, items: list[VideoItem],
                     workers: int, rounds: int, repeat: int, budget: Budget, emit) -> dict:
    """The engine and the network alone, alternated `rounds` times at the device's precision."""
    precision = default_precision(device)
    built = build_extractor("random", device=device, precision=precision)
    host = full_batches(crops, batch)
    network_rate(built.network, host, batch, device)  # warm-up at this batch size
    nets, pipes = [], []
    for index in range(rounds):
        if index and not budget.allows(f"pipeline round {index + 1}"):
            break
        nets.append(network_rate(built.network, host, batch, device, repeat))
        pipes.append(pipeline_rate(items, built.network, built.preprocess, batch_size=batch,
                                   workers=workers, device=device)[0])
        emit({"pipeline_rounds_done": len(pipes), "pipeline_clips_per_s": round(pipes[-1], 2),
              "network_alone_clips_per_s": round(nets[-1], 2)})
    synchronize(device)
    pipe, net = median(pipes), median(nets)
    return {"pipeline_precision": precision, "pipeline_batch_size": batch,
            "pipeline_rounds": len(pipes), "pipeline_clips_per_s": round(pipe, 2),
            "network_alone_clips_per_s": round(net, 2),
            "pipeline_vs_network": round(median([p / n for p, n in zip(pipes, nets)]), 3)}


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
    parser.add_argument("--time-limit", type=float, default=420.0,
                        help="seconds after which what is left is skipped (default 420)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    budget = Budget(args.time_limit)
    tiny = args.tiny or device.type != "cuda"
    batches = args.batches or ([2] if tiny else [64, 128, 256])
    videos = args.videos or (1 if tiny else 2 * args.workers)
    seconds = args.seconds or (0.6 if tiny else 60.0)
    rounds = args.rounds or (1 if tiny else 2)
    result: dict = {"bench": "gpu", "device": str(device), "tiny": tiny, "workers": args.workers,
                    "cpu_cores": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
                    "torch": torch.__version__}
    if device.type == "cuda":
        result["gpu"] = torch.cuda.get_device_name(device)
        result["cuda_capability"] = ".".join(map(str, torch.cuda.get_device_capability(device)))

    def emit(extra: dict | None = None, partial: bool = True) -> None:
        line = {**result, **(extra or {}), "skipped": budget.skipped,
                "seconds": round(budget.elapsed(), 1)}
        print(json.dumps({**line, "partial": True} if partial else line), flush=True)

    crops, source = sample_crops(2 if tiny else 64)
    rates, fc6, left_out = network_figures(device, crops, batches, 1 if tiny else 5,
                                           2 if tiny else 16, budget)
    result.update(network_clips_per_s=rates, agreement_vs_fp32=agreement(fc6), clips_source=source,
                  precisions_left_out=left_out)
    emit()
    batch = default_batch_size(device) if not tiny else batches[0]
    with tempfile.TemporaryDirectory() as tmp:
        items, kind = footage(Path(tmp), videos, seconds)
        result.update(footage=kind, pipeline_clips=videos * -(-int(seconds * 30) // 16))
        result["cpu_crop_clips_per_s_per_core"] = round(crop_rate_per_core(items[0]), 2)
        if budget.allows("pipeline"):
            result.update(pipeline_figures(device, crops, batch, items, args.workers, rounds,
                                           1 if tiny else 20, budget, emit))
    if "pipeline_clips_per_s" in result:
        pipe, net = result["pipeline_clips_per_s"], result["network_alone_clips_per_s"]
        crop_bound = result["cpu_crop_clips_per_s_per_core"] * args.workers
        result.update(
            workers_crop_bound_clips_per_s=round(crop_bound, 2),
            ucf_crime_hours={
                "pipeline": round(UCF_CRIME_CLIPS / pipe / 3600, 2),
                "network_alone": round(UCF_CRIME_CLIPS / net / 3600, 2),
                "workers_crop_bound": round(UCF_CRIME_CLIPS / crop_bound / 3600, 2),
            },
            bound_by="network" if net <= crop_bound else "decode and crop on the CPU",
        )
    emit(partial=False)


if __name__ == "__main__":
    main()
