"""Weak-label benchmark without real data: frame AUC of BBN, BBN+RBS, BBN+RBS+NSM, CLAWS and MIL.

Feature-space videos (no pixels): clip counts drawn from the real UCF-Crime training/test frame
counts (../shared/data/ucf_crime/*_Annotation.txt, read by this script only); an anomalous video
holds its anomaly in one contiguous stretch whose share of the video is drawn from the real test
annotations, so most of an anomalous video is normal (the paper's label noise). Normal clips are
noise around a per-video scene offset; anomalous clips add a fixed shift along a few directions.
All five methods train on the same shards with the same seed through `claws train`'s code and are
scored as DESIGN.md prescribes (clip scores -> frame curves -> AUC over all test frames).

Prints one JSON line per method and a final JSON line with the table. Shows only what it shows:
a synthetic separable-but-noisy problem, short runs, no claim about UCF-Crime.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from claws.data.shards import NormStats, VideoRecord, write_shard
from claws.extract.clips import clip_scores_to_frame_scores
from claws.model.inference import clip_scores
from claws.pipeline.checkpoint import load_checkpoint
from claws.pipeline.config import load_config
from claws.pipeline.train import train

UCF = Path(__file__).resolve().parents[2] / "shared" / "data" / "ucf_crime"
METHODS = ("bbn", "bbn+rbs", "bbn+rbs+nsm1+nsm2", "claws", "mil")


def _annotations(name: str) -> list[list[str]]:
    return [line.split() for line in (UCF / name).read_text().splitlines() if line.strip()]


def _anomalous_share(row: list[str]) -> float:
    """Share of annotated anomalous frames: row = path, frames, class, s1, e1, s2, e2 (1-based)."""
    frames = int(row[1])
    pairs = [(int(row[3]), int(row[4])), (int(row[5]), int(row[6]))]
    return sum(min(e, frames) - s + 1 for s, e in pairs if s > 0) / frames


def _video(rng, frames: int, share: float, label: int, dim: int, direction: np.ndarray):
    clips = -(-frames // 16)
    scene = rng.normal(0, 0.5, dim)
    features = scene + rng.normal(0, 1.0, (clips, dim))
    frame_labels = np.zeros(frames, dtype=np.int8)
    if label == 1:
        length = max(1, int(round(share * clips)))
        start = int(rng.integers(0, clips - length + 1))
        features[start : start + length] += direction
        frame_labels[start * 16 : (start + length) * 16] = 1
    return features.astype(np.float32) / 8.0, frame_labels  # roughly the shards' scale


def make_dataset(folder: Path, videos: int, dim: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    train_rows = _annotations("Train_Annotation.txt")
    test_rows = _annotations("Test_Annotation.txt")
    shares = [_anomalous_share(r) for r in test_rows if r[2] != "Normal"]
    direction = np.zeros(dim)
    direction[rng.choice(dim, 8, replace=False)] = 1.5
    records, ground_truth = [], {}
    for split, rows, count in (("train", train_rows, videos), ("test", test_rows, videos // 3)):
        for i, row in enumerate(rng.choice(len(rows), count, replace=False)):
            label = 0 if "Normal" in rows[row][0] else 1
            frames = int(rows[row][1])
            feats, truth = _video(rng, frames, float(rng.choice(shares)), label, dim, direction)
            vid = f"{split}{i:04d}"
            records.append(VideoRecord(vid, feats, frames, 30.0, label, split))
            ground_truth[vid] = truth
    write_shard(folder / "part-000.h5", records, NormStats.identity(dim))
    return ground_truth


def frame_auc(run: Path, shards: Path, truth: dict) -> float:
    from claws.data.shards import ShardSet

    ckpt = load_checkpoint(run)
    window = ckpt.config["window"]
    scores, labels = [], []
    shard_set = ShardSet(shards)
    for info in shard_set.select(split="test"):
        feats = torch.from_numpy(shard_set.features(info.video_id))
        clip = clip_scores(ckpt.model, feats, window).numpy()
        scores.append(clip_scores_to_frame_scores(clip, info.num_frames))
        labels.append(truth[info.video_id])
    return float(roc_auc_score(np.concatenate(labels), np.concatenate(scores)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=240, help="training videos (test: a third)")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    table = {}
    with tempfile.TemporaryDirectory() as tmp:
        shards = Path(tmp) / "shards"
        shards.mkdir()
        truth = make_dataset(shards, args.videos, args.dim, args.seed)
        for method in METHODS:
            start = time.perf_counter()
            config = load_config(method, None, {
                "shards": str(shards), "runs_dir": tmp, "name": method, "feature_dim": args.dim,
                "iterations": args.iterations, "seed": args.seed, "log_every": 500,
                "checkpoint_every": args.iterations, "lr_decay_step": int(args.iterations * 0.8)})
            run = train(config)
            table[method] = round(frame_auc(run, shards, truth), 4)
            print(json.dumps({"method": method, "frame_auc": table[method],
                              "seconds": round(time.perf_counter() - start, 1)}), flush=True)
    print(json.dumps({"bench": "weak_labels", "iterations": args.iterations, "videos": args.videos,
                      "dim": args.dim, "seed": args.seed, "frame_auc": table}))


if __name__ == "__main__":
    main()
