"""Training speed: the CLAWS step on 1 vs 2 threads, the epoch's clustering at UCF-Crime scale
(k-means skipping converged blocks vs the full loop of before issue 13), same-seed identity checks,
and the extrapolated wall time of a paper-default 100k-iteration run.

    .venv/bin/python bench/train.py [--steps 40 --rounds 8 --cluster-videos 200 --compare-steps 200]

Synthetic 2048-d features; video lengths are the real UCF-Crime training frame counts
(../shared/data/ucf_crime/Train_Annotation.txt, read by this bench only); model and loss are the
paper defaults (TrainConfig()).

- Step: one training step (claws_step, backward, torch.optim.RMSprop) on 1 and on 2 threads; the
  two take turns, `--steps` steps each per round for `--rounds` rounds, so load from other jobs hits
  both alike. Figures are medians over rounds (the ratio: median of the per-round ratios), with the
  step split into forward+loss, backward and optimizer.
- Identity: `--compare-steps` steps from the same seed on 1 and on 2 threads (losses and weights
  compared bitwise), and the k-means result of the new loop against the full one.
- Clustering: measured on `--cluster-videos` UCF videos, scaled to all 1,610 by clip count (the
  representation is linear in clips; the k-means is not quite: its iterations follow its slowest
  video, and random features are its worst case: real ones converge in about 10 iterations). The
  representation and the new k-means are timed on 1 and 2 threads, the old k-means on 1.
- `paper_run_100k_minutes_*` are extrapolations, not a run: 100k x the step time + one
  clustering per epoch started (ceil(100k / windows per epoch)) x the scaled clustering time.

Prints one JSON line. The machine may be shared: `load_avg_1min` says how busy it was.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from claws.model.kmeans import batched_kmeans
from claws.model.windows import num_windows
from claws.pipeline.training.checkpoint import build_model
from claws.pipeline.training.config import TrainConfig
from claws.pipeline.training.loop import model_args
from claws.pipeline.training.steps import claws_step, clip_representation, cluster_state
from claws.pipeline.training.data import load_videos

UCF = Path(__file__).resolve().parents[2] / "shared" / "data" / "ucf_crime" / "Train_Annotation.txt"


class _FakeShards:
    """Stands in for ShardSet.features with random float32 features."""

    def __init__(self, counts: list[int], dim: int, seed: int) -> None:
        self.counts, self.dim, self.rng = counts, dim, np.random.default_rng(seed)

    def features(self, video_id: str) -> np.ndarray:
        return self.rng.normal(0, 0.1, (self.counts[int(video_id)], self.dim)).astype(np.float32)


class _Info:
    def __init__(self, index: int, label: int) -> None:
        self.video_id, self.label = str(index), label


class _Run:
    """One training variant: its model, optimizer, thread count and position in the windows."""

    def __init__(self, config: TrainConfig, threads: int) -> None:
        torch.manual_seed(config.seed)  # every variant starts from the same weights
        self.model = build_model("claws", model_args(config)).train()
        self.optimizer = torch.optim.RMSprop(self.model.parameters(), lr=config.lr)
        self.threads, self.step, self.losses = threads, 0, []

    def run(self, steps: int, videos, order, clusters, config: TrainConfig) -> dict[str, float]:
        """`steps` training steps; the dropout seed is the step's, so variants see the same masks.
        Returns the mean seconds per step of each phase and of the whole step."""
        torch.set_num_threads(self.threads)
        phases = {"forward_loss": 0.0, "backward": 0.0, "optimizer": 0.0}
        start = time.perf_counter()
        for _ in range(steps):
            torch.manual_seed(self.step)
            window = order[self.step % len(order)].view(1)
            t0 = time.perf_counter()
            total = claws_step(self.model, videos, window, clusters, config).terms["total"]
            t1 = time.perf_counter()
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            t2 = time.perf_counter()
            self.optimizer.step()
            phases["forward_loss"] += t1 - t0
            phases["backward"] += t2 - t1
            phases["optimizer"] += time.perf_counter() - t2
            self.losses.append(total.detach())
            self.step += 1
        return {"step": (time.perf_counter() - start) / steps,
                **{k: v / steps for k, v in phases.items()}}


def _max_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    with torch.no_grad():
        return max(float((x - y).abs().max()) for x, y in zip(a.parameters(), b.parameters()))


def _timed(function, threads: int):
    torch.set_num_threads(threads)
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="steps per variant per round")
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds of the step timing")
    parser.add_argument("--compare-steps", type=int, default=200, help="steps of the same-seed 1 vs 2 threads check")
    parser.add_argument("--cluster-videos", type=int, default=200, help="UCF videos in the clustering subset")
    parser.add_argument("--sklearn-videos", type=int, default=0,
                        help="videos of 250 clips for torch vs scikit-learn k-means (0: skip)")
    args = parser.parse_args()
    config = TrainConfig()
    threads_before = torch.get_num_threads()
    frames = [int(line.split()[1]) for line in UCF.read_text().splitlines() if line.strip()]
    clips = [-(-f // 16) for f in frames]
    total_clips = sum(clips)
    windows_per_epoch = sum(num_windows(c, config.window) for c in clips)
    clusterings = math.ceil(config.iterations / windows_per_epoch)  # one per epoch started

    rng = np.random.default_rng(0)
    subset = [int(i) for i in rng.choice(len(clips), args.cluster_videos, replace=False)]
    sub_counts = [clips[i] for i in subset]
    videos = load_videos(_FakeShards(sub_counts, config.feature_dim, 0),
                         [_Info(i, i % 2) for i in range(len(sub_counts))], config.window,
                         torch.float32, torch.device("cpu"))
    scale = total_clips / sum(sub_counts)

    # the epoch's clustering at the start of training: representation, then k-means old and new
    torch.manual_seed(config.seed)
    model = build_model("claws", model_args(config)).train()
    represent = lambda: clip_representation(model, videos)  # noqa: E731
    representation, represent_1 = _timed(represent, 1)
    _, represent_2 = _timed(represent, 2)
    kmeans = lambda skip: batched_kmeans(  # noqa: E731
        representation, videos.counts, k=2, max_iter=config.kmeans_max_iter, seed=0,
        tol=config.kmeans_tol, skip_converged=skip)
    old_km, old_km_s = _timed(lambda: kmeans(False), config.cpu_threads)
    new_km, new_km_s = _timed(lambda: kmeans(True), config.cpu_threads)
    _, new_km_2_s = _timed(lambda: kmeans(True), 2)
    kmeans_identical = (old_km.iterations == new_km.iterations
                        and torch.equal(old_km.assignments, new_km.assignments)
                        and torch.equal(old_km.centres, new_km.centres)
                        and torch.equal(old_km.inertia, new_km.inertia))
    clusters = cluster_state(representation, new_km.assignments, videos, scale_free=True)

    # the same seed on 1 and on 2 threads
    order = torch.randperm(len(videos.window_clips), generator=torch.Generator().manual_seed(0))
    compared = {threads: _Run(config, threads) for threads in (1, 2)}
    for variant in compared.values():
        variant.run(args.compare_steps, videos, order, clusters, config)
    losses = {k: torch.stack(v.losses) for k, v in compared.items()}

    # step times: 1 and 2 threads take turns
    timed = {threads: _Run(config, threads) for threads in (1, 2)}
    for variant in timed.values():  # warm-up
        variant.run(5, videos, order, clusters, config)
    rounds: dict[int, list[dict]] = {k: [] for k in timed}
    for _ in range(args.rounds):
        for threads, variant in timed.items():
            rounds[threads].append(variant.run(args.steps, videos, order, clusters, config))

    def median(threads: int, phase: str = "step") -> float:
        return statistics.median(r[phase] for r in rounds[threads])

    step = {k: median(k) for k in timed}
    two_over_one = statistics.median(b["step"] / a["step"] for a, b in zip(rounds[1], rounds[2]))

    sklearn = {}
    if args.sklearn_videos:  # torch batched k-means vs a loop of scikit-learn KMeans, 512-d points
        from sklearn.cluster import KMeans  # the test extra

        torch.set_num_threads(config.cpu_threads)
        points = torch.randn(args.sklearn_videos * 250, 512)
        points[::2] += 0.5
        _, torch_s = _timed(lambda: batched_kmeans(points, torch.full((args.sklearn_videos,), 250)),
                            config.cpu_threads)
        start = time.perf_counter()
        for chunk in points.numpy().reshape(args.sklearn_videos, 250, 512):
            KMeans(2, n_init=1, random_state=0).fit(chunk)
        sklearn_s = time.perf_counter() - start
        sklearn = {"sklearn_videos": args.sklearn_videos, "torch_kmeans_s": round(torch_s, 3),
                   "sklearn_loop_s": round(sklearn_s, 3), "sklearn_over_torch": round(sklearn_s / torch_s, 2)}
    torch.set_num_threads(threads_before)

    def cluster_epoch_s(represent_s: float, kmeans_s: float) -> float:
        return (represent_s + kmeans_s) * scale

    def minutes(step_s: float, cluster_s: float) -> float:
        return round((config.iterations * step_s + clusterings * cluster_s) / 60, 1)

    cluster_old = cluster_epoch_s(represent_1, old_km_s)
    cluster_new_1 = cluster_epoch_s(represent_1, new_km_s)
    cluster_new_2 = cluster_epoch_s(represent_2, new_km_2_s)
    epoch_1 = windows_per_epoch * step[1]
    phases = ("forward_loss", "backward", "optimizer")
    print(json.dumps({
        "bench": "train", "device": "cpu", "load_avg_1min": round(os.getloadavg()[0], 2),
        "cpu_threads_default": config.cpu_threads,
        "step_ms_1_thread": round(step[1] * 1e3, 2), "step_ms_2_threads": round(step[2] * 1e3, 2),
        "step_2_over_1_threads": round(two_over_one, 3),
        "phases_ms_1_thread": {k: round(median(1, k) * 1e3, 2) for k in phases},
        "phases_ms_2_threads": {k: round(median(2, k) * 1e3, 2) for k in phases},
        "iterations_per_s_1_thread": round(1 / step[1], 1),
        "same_seed_steps_compared": args.compare_steps,
        "losses_identical_1_2_threads": bool(torch.equal(losses[1], losses[2])),
        "weights_max_abs_diff_1_2_threads": _max_difference(compared[1].model, compared[2].model),
        "cluster_subset_videos": args.cluster_videos, "cluster_subset_clips": sum(sub_counts),
        "representation_s_1_thread": round(represent_1, 2),
        "representation_s_2_threads": round(represent_2, 2),
        "kmeans_s_old": round(old_km_s, 2), "kmeans_s_new": round(new_km_s, 2),
        "kmeans_new_over_old": round(new_km_s / old_km_s, 3),
        "kmeans_s_new_2_threads": round(new_km_2_s, 2),
        "kmeans_iterations": new_km.iterations, "kmeans_identical_old_new": kmeans_identical,
        "ucf_videos": len(clips), "ucf_clips": total_clips, "ucf_windows_per_epoch": windows_per_epoch,
        "ucf_clusterings_per_100k": clusterings,
        "ucf_cluster_epoch_s_old_scaled": round(cluster_old, 1),
        "ucf_cluster_epoch_s_new_1_thread_scaled": round(cluster_new_1, 1),
        "ucf_cluster_epoch_s_new_2_threads_scaled": round(cluster_new_2, 1),
        "clustering_share_of_epoch_new_1_thread": round(cluster_new_1 / (cluster_new_1 + epoch_1), 3),
        "paper_run_100k_minutes": minutes(step[config.cpu_threads] if config.cpu_threads in step
                                          else step[1], cluster_new_1 if config.cpu_threads != 2
                                          else cluster_new_2),  # extrapolated, cpu_threads default
        "paper_run_100k_minutes_old_1_thread_extrapolated": minutes(step[1], cluster_old),
        "paper_run_100k_minutes_new_1_thread_extrapolated": minutes(step[1], cluster_new_1),
        "paper_run_100k_minutes_new_2_threads_extrapolated": minutes(step[2], cluster_new_2),
        **sklearn,
        "note": (f"step times: medians of {args.rounds} alternating rounds of {args.steps} steps; "
                 f"clustering measured on {args.cluster_videos} videos and scaled by clips x{scale:.1f}; "
                 f"100k-iteration minutes extrapolated (100k steps + {clusterings} clusterings), not run"),
    }))


if __name__ == "__main__":
    main()
