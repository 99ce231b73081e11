"""Benchmark of the C3D network alone: clips/s per precision and batch size, and the fc6 error of
bf16 (and fp16 where the CPU can) against the fp32 reference, on real preprocessed video clips.

    .venv/bin/python bench/c3d.py [--video ../shared/data/videos/vtest.avi] [--batches 1 4 8]

Prints one JSON line. After a warm-up, the configurations take turns for --repeats rounds; each figure
is the median over rounds and each speed-up the median of the rounds' ratios, so the machine's load
hits both sides of a ratio alike. Compare the ratios, not absolute clips/s.
Weights are random (seeded), so the error figures are a proxy: a second, sparser weights file (fc6
biases shifted so ~73% of fc6 is zero, as in real Sports-1M fc6 features) is built, saved as a
c3d.pickle and loaded through the real loader, to see how the error depends on sparsity.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from claws.extract.c3d import MIN_BF16_COSINE, C3D, default_precision, load_c3d, load_mean, preprocess_clips

SHARED = Path(os.environ.get("CLAWS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
REAL_FC6_ZERO_FRACTION = 0.73  # shared/data/SOURCES.md: real C3D fc6 rows are ~73% zeros


def real_clips(video: Path, mean_path: Path | None, count: int) -> torch.Tensor:
    """`count` consecutive 16-frame clips of a real video, preprocessed (N, 3, 16, 112, 112)."""
    from claws.extract.video import open_video

    frames = next(open_video(video, False).chunks(16 * count))
    mean = load_mean(mean_path if mean_path and mean_path.is_file() else None)
    return preprocess_clips(frames.reshape(count, 16, *frames.shape[1:]), mean)


def gflop_per_clip(model: C3D, clips: torch.Tensor) -> float:
    """Multiply-adds x 2 of every conv and linear layer for one clip, counted with hooks."""
    macs: list[int] = []

    def count(module, inputs, output) -> None:
        macs.append(output[0].numel() * module.weight[0].numel())

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (torch.nn.Conv3d, torch.nn.Linear))]
    with torch.no_grad():
        model(clips[:1].float())
    for hook in hooks:
        hook.remove()
    return 2 * sum(macs) / 1e9


def clips_per_second(model: C3D, clips: torch.Tensor, batch: int, repeats: int) -> float:
    """Best-of-`repeats` throughput of model(clips[:batch])."""
    x = clips[:batch].repeat((batch + len(clips) - 1) // len(clips), 1, 1, 1, 1)[:batch]
    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            best = min(best, time.perf_counter() - start)
    return batch / best


def error_vs(reference: torch.Tensor, other: torch.Tensor) -> dict[str, float]:
    """Cosine similarity per clip and relative L2 error of fc6 against the fp32 reference."""
    cos = F.cosine_similarity(other, reference)
    return {
        "cos_mean": round(cos.mean().item(), 6),
        "cos_min": round(cos.min().item(), 6),
        "rel_err": round(((other - reference).norm() / reference.norm()).item(), 5),
        "zero_fraction": round((reference == 0).float().mean().item(), 3),
    }


def sparse_weights_file(model: C3D, clips: torch.Tensor, folder: Path) -> Path:
    """Save `model` with fc6 biases lowered until ~73% of fc6 is zero, as a c3d.pickle file."""
    with torch.no_grad():
        pre = model.fc6(model.features(clips).flatten(1))
        state = {k: v.clone() for k, v in model.state_dict().items()}
    state["fc6.bias"] -= torch.quantile(pre.float().flatten(), REAL_FC6_ZERO_FRACTION)
    path = folder / "c3d_sparse.pickle"
    torch.save(state, path)
    return path


def precision_errors(weights: str | Path, clips: torch.Tensor, precisions: list[str]) -> dict:
    """fc6 of each precision against fp32 for one weights source."""
    with torch.no_grad():
        reference = load_c3d(weights, seed=0)(clips)
        # a fresh model per precision: converting back from bf16 would keep the rounded weights
        return {p: error_vs(reference, load_c3d(weights, seed=0, precision=p)(clips)) for p in precisions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SHARED / "videos" / "vtest.avi")
    parser.add_argument("--mean", type=Path, default=SHARED / "c3d" / "train01_16_128_171_mean.npy.bz2")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--repeats", type=int, default=3, help="rounds in which every configuration takes its turn")
    parser.add_argument("--error-clips", type=int, default=4, help="clips for the fc6 error figures")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    clips = real_clips(args.video, args.mean, max(*args.batches, args.error_clips))
    fp16_ok = bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())
    native_bf16 = default_precision("cpu") == "bf16"
    configs = {"fp32": ("fp32", False), "fp32_cl": ("fp32", True)}
    if native_bf16:  # emulated bf16 takes minutes per clip (check_precision): not worth timing
        configs["bf16_cl"] = ("bf16", True)
    if fp16_ok:
        configs["fp16_cl"] = ("fp16", True)
    model = load_c3d("random", seed=0)
    result: dict = {"bench": "c3d", "device": "cpu", "threads": torch.get_num_threads(),
                    "gflop_per_clip": round(gflop_per_clip(model, clips), 1), "clips_per_s": {}}
    timed = {name: load_c3d("random", seed=0).configure(precision, channels_last)
             for name, (precision, channels_last) in configs.items()}
    for net in timed.values():
        clips_per_second(net, clips, 1, 1)  # warm-up: oneDNN primitive creation
    # The configurations take turns, round after round, so a change of load on the shared machine
    # hits all of them alike; the speed-up is the median of the rounds' ratios.
    rounds: dict = {name: {b: [] for b in args.batches} for name in timed}
    for _ in range(args.repeats):
        for b in args.batches:
            for name, net in timed.items():
                rounds[name][b].append(clips_per_second(net, clips, b, 1))
    result["clips_per_s"] = {name: {b: round(float(np.median(v)), 3) for b, v in per.items()}
                             for name, per in rounds.items()}
    result["speedup_vs_fp32"] = {
        name: {b: round(float(np.median(np.divide(v, rounds["fp32"][b]))), 3) for b, v in per.items()}
        for name, per in rounds.items()
    }
    del timed
    low = (["bf16"] if native_bf16 else []) + (["fp16"] if fp16_ok else [])
    with tempfile.TemporaryDirectory() as folder:
        few = clips[: args.error_clips]
        sparse = sparse_weights_file(model, few, Path(folder))
        result["error_vs_fp32"] = {
            "random_weights": precision_errors("random", few, low),
            "sparse_fc6_weights_file": precision_errors(sparse, few, low),
        }
    result["bf16_accurate"] = all(
        source["bf16"]["cos_min"] >= MIN_BF16_COSINE for source in result["error_vs_fp32"].values()
    ) if native_bf16 else "not measured: bf16 is emulated on this CPU (tests/pipeline/test_precision.py emulates its numerics)"
    result["fp16_cpu"] = "measured" if fp16_ok else "skipped: oneDNN has no fp16 support on this CPU"
    result["cpu_native_bf16"] = {"amx": torch.cpu._is_amx_tile_supported(), "avx512_bf16": torch.cpu._is_avx512_bf16_supported()}
    result["default_precision"] = {"cpu": default_precision("cpu"), "cuda": default_precision("cuda")}
    result["clips"] = f"{len(clips)} real clips of {args.video.name}, random weights (seed 0)"
    result["load_avg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
