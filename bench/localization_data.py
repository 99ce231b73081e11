"""Why the real-feature models classify videos instead of finding events (issue 21): what the
ucf_c3d32 pack and the trained runs can say. Needs ../shared/data and scikit-learn (test extra).

1. Event coverage: how much of each anomalous video its annotated event covers. Measurable on TEST
   videos only: Sultani's training set has video labels and no temporal annotation. All 140
   anomalous test videos, split by length at the pack's training range (544-1108 frames), and the
   pack's 25 anomalous test videos; the pack's anomalous training videos' lengths beside them.
2. What the models learned (with `--out` of a finished bench/real_features.py run): the share of
   frames scored >= 0.5 among event frames, the normal frames of anomalous videos and the frames
   of normal videos (60 test videos, mean over seeds); and, on the TRAINING videos scored here
   with `claws score --split train` (seed 0), the median share of each video's frames >= 0.5.
3. What the features allow, on the 17 anomalous vantage test videos (exact segment bounds; a
   segment is an event segment when at least half of it lies in the annotation): the cosine of
   segments within a video, between video means, and between a video's event and normal segments;
   the own AUC of event segments of two scores: the distance from the video's mean feature (no
   training) and a logistic regression fit on the TRUE segment labels of the other 16 videos
   (leave one video out), a supervised reference that weak labels cannot be expected to beat.

    python bench/localization_data.py --out out/real_features --presets bbn+rbs,claws,mil

Prints one JSON line. Nothing is timed.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from claws.data.annotations import load_ucf_crime, read_ucf_frame_counts
from claws.pipeline.scoring.files import read_curves

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PACK = SHARED / "features" / "ucf_c3d32"
UCF = SHARED / "ucf_crime"
TRAINING_RANGE = (544, 1108)  # frames of the pack's videos (its README)


def summary(shares: list[float]) -> dict:
    """Count, median, mean and how many over half of a list of shares."""
    return {"videos": len(shares), "median": round(statistics.median(shares), 3),
            "mean": round(statistics.fmean(shares), 3), "over_half": sum(s > 0.5 for s in shares)}


def coverage(index: list[dict]) -> dict:
    """How much of each anomalous test video its event covers, by length; training lengths."""
    truth = load_ucf_crime(UCF / "Temporal_Anomaly_Annotation.txt",
                           read_ucf_frame_counts(UCF / "Test_Annotation.txt"))
    rows = [(v, t.num_frames, float(t.frame_labels.mean()))
            for v, t in truth.videos.items() if t.is_anomalous]
    low, high = TRAINING_RANGE
    pack_test = {r["video"] for r in index if r["split"] == "test" and r["label"] == "1"}
    out = {"all": summary([s for _, _, s in rows]),
           f"{low}-{high} frames": summary([s for _, n, s in rows if low <= n <= high]),
           f"over {high} frames": summary([s for _, n, s in rows if n > high]),
           f"under {low} frames": summary([s for _, n, s in rows if n < low]),
           "pack test": summary([s for v, _, s in rows if v in pack_test])}
    frames = [int(r["num_frames"]) for r in index if r["split"] == "train" and r["label"] == "1"]
    out["pack anomalous training videos"] = {
        "videos": len(frames), "frames": [min(frames), statistics.median(frames), max(frames)],
        "event coverage": "not measurable: no temporal annotation of training videos"}
    return out


def learned(out: Path, presets: list[str]) -> dict:
    """Shares of frames scored >= 0.5 on the test videos and on the training videos."""
    truth = load_ucf_crime(UCF / "Temporal_Anomaly_Annotation.txt",
                           read_ucf_frame_counts(UCF / "Test_Annotation.txt"))
    test60 = (out / "test60.txt").read_text().split()
    test: dict[str, list[list[float]]] = {}
    for scores in sorted((out / "scores").iterdir()):
        curves, _ = read_curves(scores)
        parts: list[list[np.ndarray]] = [[], [], []]  # event, normal of anomalous, normal videos
        for vid in test60:
            t, high = truth.videos[vid], curves[vid] >= 0.5
            labels = t.frame_labels.astype(bool)
            if t.is_anomalous:
                parts[0].append(high[labels])
                parts[1].append(high[~labels])
            else:
                parts[2].append(high)
        test.setdefault(scores.name.rsplit("-s", 1)[0], []).append(
            [float(np.concatenate(p).mean()) for p in parts])
    names = ("event_frames", "normal_frames_of_anomalous_videos", "frames_of_normal_videos")
    result = {"test": {p: {n: round(statistics.fmean(r[i] for r in rows), 3)
                           for i, n in enumerate(names)} for p, rows in test.items()},
              "train_seed0": {}}
    for preset in presets:
        run = next((out / "runs").glob(f"{preset}-s0-i*"))
        folder = out / "train_scores" / run.name
        if not (folder / "index.jsonl").is_file():
            subprocess.run([sys.executable, "-m", "claws.pipeline.cli", "score", "--run", str(run),
                            "--shards", str(out / "shards"), "--split", "train", "--out",
                            str(folder), "--no-progress", "--overwrite"], check=True,
                           capture_output=True)
        curves, rows = read_curves(folder)
        shares: dict[int, list[float]] = {0: [], 1: []}
        for row in rows:
            shares[int(row["label"])].append(float((curves[row["video_id"]] >= 0.5).mean()))
        result["train_seed0"][preset] = {
            "anomalous_median_share": round(statistics.median(shares[1]), 3),
            "anomalous_over_90pct": sum(s > 0.9 for s in shares[1]),
            "normal_median_share": round(statistics.median(shares[0]), 3),
            "videos": [len(shares[1]), len(shares[0])]}
    return result


def separability(index: list[dict]) -> dict:
    """How far the features themselves set event segments apart inside their video."""
    features, bounds = np.load(PACK / "vantage_c3d32_test.npz"), np.load(PACK / "segments.npz")
    videos = [r["video"] for r in index if r["split"] == "test" and r["label"] == "1"
              and r["source"] == "vantage"]
    x, y = [], []
    for vid in videos:
        f = features[vid].astype(np.float64)
        x.append(f / (np.linalg.norm(f, axis=1, keepdims=True) + 1e-12))  # (S, 4096)
        y.append(bounds[f"vantage/{vid}/gtfrac"] >= 0.5)  # (S,)
    own_mean, probe = [], []
    for i in range(len(videos)):
        if not (y[i].any() and not y[i].all()):
            continue
        own_mean.append(roc_auc_score(y[i], np.linalg.norm(x[i] - x[i].mean(0), axis=1)))
        rest = [j for j in range(len(videos)) if j != i]
        model = LogisticRegression(max_iter=2000, class_weight="balanced").fit(
            np.concatenate([x[j] for j in rest]), np.concatenate([y[j] for j in rest]))
        probe.append(roc_auc_score(y[i], model.decision_function(x[i])))
    means = np.stack([f.mean(0) / np.linalg.norm(f.mean(0)) for f in x])
    pairs = np.triu_indices(len(x), 1)
    return {
        "videos": len(videos),
        "event_segments_median": statistics.median(int(lab.sum()) for lab in y),
        "segments_median": statistics.median(len(lab) for lab in y),
        "cosine_within_video": round(statistics.fmean(
            float(np.mean((f @ f.T)[np.triu_indices(len(f), 1)])) for f in x), 3),
        "cosine_between_video_means": round(float(np.mean((means @ means.T)[pairs])), 3),
        "cosine_event_to_own_normal": round(statistics.fmean(
            float(np.mean(f[lab] @ f[~lab].T)) for f, lab in zip(x, y) if 0 < lab.sum() < len(lab)),
            3),
        "own_auc_distance_from_video_mean": summary(own_mean),
        "own_auc_supervised_linear_leave_one_video_out": summary(probe),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="a finished bench/real_features.py output folder (for part 2)")
    parser.add_argument("--presets", default="bbn+rbs,bbn+rbs+nsm1,bbn+rbs+nsm1+nsm2,claws,mil",
                        help="presets whose seed-0 run scores the training videos")
    args = parser.parse_args()
    if not PACK.is_dir():
        sys.exit(f"{PACK} not found: this script needs the shared real-feature pack")
    index = list(csv.DictReader((PACK / "index.csv").open()))
    line = {"bench": "localization_data", "coverage": coverage(index),
            "separability": separability(index)}
    if args.out is not None:
        line["learned"] = learned(args.out, [p for p in args.presets.split(",") if p])
    print(json.dumps(line))


if __name__ == "__main__":
    main()
