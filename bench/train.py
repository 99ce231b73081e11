"""Training speed: CLAWS step rate, epoch clustering (batched torch vs a scikit-learn loop), and
the extrapolated wall time of a paper-default 100k-iteration run on UCF-Crime-sized features.

Synthetic 2048-d features; video lengths are the real UCF-Crime training frame counts
(../shared/data/ucf_crime/Train_Annotation.txt, read by this bench only). To stay within a few
minutes on a shared 2-core CPU, the clustering epoch is measured on a subset of the videos and
scaled linearly by clip count, and the 100k-iteration time is extrapolated from the measured
step rate plus one clustering pass per epoch; the output says so. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.cluster import KMeans

from claws.model.claws import ClawsNet
from claws.model.kmeans import batched_kmeans
from claws.model.windows import num_windows
from claws.pipeline.config import TrainConfig
from claws.pipeline.train_steps import claws_step, epoch_clusters
from claws.pipeline.training_data import load_videos

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="CLAWS steps timed")
    parser.add_argument("--cluster-videos", type=int, default=200, help="UCF videos in the clustering subset")
    parser.add_argument("--sklearn-videos", type=int, default=200, help="videos of 250 clips, torch vs sklearn")
    args = parser.parse_args()
    torch.set_num_threads(2)
    config = TrainConfig()
    frames = [int(line.split()[1]) for line in UCF.read_text().splitlines() if line.strip()]
    clips = [-(-f // 16) for f in frames]
    total_clips = sum(clips)
    windows_per_epoch = sum(num_windows(c, config.window) for c in clips)

    rng = np.random.default_rng(0)
    subset = [int(i) for i in rng.choice(len(clips), args.cluster_videos, replace=False)]
    sub_counts = [clips[i] for i in subset]
    shards = _FakeShards(sub_counts, config.feature_dim, 0)
    infos = [_Info(i, i % 2) for i in range(len(sub_counts))]
    videos = load_videos(shards, infos, config.window, torch.float32, torch.device("cpu"))
    torch.manual_seed(0)
    model = ClawsNet().train()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=config.lr)

    torch.set_num_threads(config.cpu_threads)  # as inside `claws train`
    start = time.perf_counter()
    clusters, figures = epoch_clusters(model, videos, config.kmeans_max_iter, seed=0,
                                               tol=config.kmeans_tol)
    cluster_subset_s = time.perf_counter() - start
    order = torch.randperm(len(videos.window_clips))
    step_seconds = {}
    for threads in (2, 1):  # TrainConfig.cpu_threads defaults to 1: this shows why
        torch.set_num_threads(threads)
        start = time.perf_counter()
        for step in range(args.steps):
            terms = claws_step(model, videos, order[step % len(order)].view(1), clusters, config).terms
            optimizer.zero_grad()
            terms["total"].backward()
            optimizer.step()
        step_seconds[threads] = (time.perf_counter() - start) / args.steps
    step_s = step_seconds[config.cpu_threads]
    torch.set_num_threads(2)

    cluster_epoch_s = cluster_subset_s * total_clips / sum(sub_counts)
    epoch_train_s = windows_per_epoch * step_s
    epochs = config.iterations / windows_per_epoch

    # torch batched k-means vs a loop of scikit-learn KMeans on the same 512-d points
    points = torch.randn(args.sklearn_videos * 250, 512)
    points[::2] += 0.5
    counts = torch.full((args.sklearn_videos,), 250)
    start = time.perf_counter()
    batched_kmeans(points, counts, k=2, seed=0)
    torch_s = time.perf_counter() - start
    start = time.perf_counter()
    for chunk in points.numpy().reshape(args.sklearn_videos, 250, 512):
        KMeans(2, n_init=1, random_state=0).fit(chunk)
    sklearn_s = time.perf_counter() - start

    print(json.dumps({
        "bench": "train", "device": "cpu", "threads": torch.get_num_threads(),
        "claws_iterations_per_s": round(1 / step_s, 1),
        "claws_iterations_per_s_1_thread": round(1 / step_seconds[1], 1),
        "claws_iterations_per_s_2_threads": round(1 / step_seconds[2], 1),
        "one_over_two_threads_speed": round(step_seconds[2] / step_seconds[1], 2),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "kmeans_videos": args.sklearn_videos, "kmeans_clips_per_video": 250,
        "torch_kmeans_s": round(torch_s, 3), "sklearn_loop_s": round(sklearn_s, 3),
        "sklearn_over_torch": round(sklearn_s / torch_s, 2),
        "cluster_subset_videos": args.cluster_videos, "cluster_subset_clips": sum(sub_counts),
        "cluster_subset_s": round(cluster_subset_s, 2), **{f"subset_{k}": v for k, v in figures.items()},
        "ucf_videos": len(clips), "ucf_clips": total_clips, "ucf_windows_per_epoch": windows_per_epoch,
        "ucf_cluster_epoch_s_scaled": round(cluster_epoch_s, 1),
        "ucf_epoch_train_s": round(epoch_train_s, 1),
        "clustering_share_of_epoch": round(cluster_epoch_s / (cluster_epoch_s + epoch_train_s), 3),
        "paper_run_100k_hours_extrapolated": round(
            (config.iterations * step_s + epochs * cluster_epoch_s) / 3600, 2),
        "note": "clustering measured on a subset and scaled by clips; 100k time extrapolated from "
                f"{args.steps} timed steps + {epochs:.1f} clustering passes",
    }))


if __name__ == "__main__":
    main()
