"""The reference benchmark: Table 3 presets and MIL on REAL UCF-Crime C3D features, end to end.

Real Sports-1M C3D fc6 features pooled into 32 segments per video (../shared/data/features/ucf_c3d32,
see its README.md: 244 training videos, 133 anomalous; 60 test videos, 25 anomalous, 58,775 frames)
go through the product's own commands only:

1. `claws import-features ucf-crime --segments 32` with the real UCF-Crime lists: each 16-frame clip
   takes its segment's feature (exact segment frame bounds from segments.npz for the vantage files,
   Sultani's recipe for the sultani/bku test files), every segment L2-normalised (the sources differ
   in scale), 4096 -> 2048 by averaging adjacent pairs, mean-normalised with training statistics.
2. `claws train --preset P --seed S` for every preset and seed, with `--val-fraction` of the TRAINING
   videos held out for the validation curve (never the test videos).
3. `claws score --split test` and `claws evaluate --videos` on the 60 test videos and on the 46
   vantage ones alone (exact segment bounds).

Every method gets the same number of passes over the training videos: `--epochs E` (or
`--iterations N`, the CLAWS iterations, converted to passes). A CLAWS iteration is one window of
b=64 clips (one pass = one epoch of windows); a MIL iteration is 30 + 30 videos (one pass = V/60
iterations). The learning rate is stepped down x0.1 at 80% of the run, as the paper does at 80k of
100k.

Prints one JSON line: {"results": {preset: {"auc", "ap", "gap", "auc_a", ..., "auc_sd", ...,
"vantage46": {...}}}, "claws_minus": {preset: {figure: [claws minus it, seed by seed]}},
"steps": {"A -> B": {figure: [B minus A, seed by seed]}} for each bottom-up step, "runs": [...],
"test_events": {...}, ...}; writes OUT/table.md (the README's tables) and OUT/results.json.

Figures, over all test frames concatenated: frame AUC / AP and the score gap (mean anomalous-frame
score minus mean normal-frame score). Localization (issue 21), over the anomalous test videos
only: AUC_A / AP_A (their frames alone), the mean and median of each anomalous video's own frame
AUC (videos anomalous throughout have none; `video_auc_undefined` counts them), and the score
gap inside them (event frames minus their normal frames). `test_events` gives how much of each
anomalous test video its event covers. Nothing here is timed against a threshold.

    python bench/real_features.py --presets claws,mil,bbn+rbs --seeds 0 --iterations 3000
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PACK = SHARED / "features" / "ucf_c3d32"
UCF = SHARED / "ucf_crime"
MIL_VIDEOS_PER_ITERATION = 60  # 30 anomalous + 30 normal (TrainConfig.mil_videos_per_class)
BOTTOM_UP = ("bbn", "bbn+rbs", "bbn+rbs+nsm1", "bbn+rbs+nsm1+nsm2", "bbn+rbs+nsm1+nsm2+ls", "claws")
# metrics.json key -> the bench's name for it, for each test subset.
FIGURES = {"auc": "auc", "average_precision": "ap", "score_gap": "gap", "auc_anomalous": "auc_a",
           "average_precision_anomalous": "ap_a", "score_gap_anomalous": "gap_a",
           "video_auc_mean": "video_auc_mean", "video_auc_median": "video_auc_median"}
# Frame AUC (%) of the paper's Table 3 on the full UCF-Crime, for context only.
PAPER_AUC = {"bbn": 69.50, "bbn+rbs": 75.95, "bbn+rbs+nsm1": 78.60, "bbn+rbs+nsm1+nsm2": 80.94,
             "bbn+rbs+nsm1+nsm2+ls": 81.53, "claws-rbs": 80.23, "claws-nsm1": 77.39,
             "claws-nsm2": 79.78, "claws": 83.03, "mil": 75.41}


def claws(*args: str, log: Path) -> None:
    """Run one `claws` command in a subprocess; its output goes to `log`; failure raises."""
    command = [sys.executable, "-m", "claws.pipeline.cli", *map(str, args)]
    with log.open("a") as handle:
        handle.write("$ claws " + " ".join(map(str, args)) + "\n")
        handle.flush()
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"claws {args[0]} failed (exit {done.returncode}); see {log}")


def import_pack(out: Path, log: Path) -> Path:
    """The pack as normalized shards through `claws import-features` (skipped when done)."""
    shards = out / "shards"
    claws("import-features", "ucf-crime", "--segments", "32", "--features",
          PACK / "vantage_c3d32_train.npz", PACK / "vantage_c3d32_test.npz",
          PACK / "sultani_c3d32_test.npz", PACK / "bku_c3d32_test.npz",
          "--segment-bounds", PACK / "segments.npz", "--bounds-prefix", "vantage",
          "--l2-normalize", "--feature-dim", "2048", "--network", "c3d_fc6_sports1m",
          "--train-list", UCF / "Anomaly_Train.txt",
          "--test-annotation", UCF / "Temporal_Anomaly_Annotation.txt",
          "--frame-counts", UCF / "Train_Annotation.txt", UCF / "Test_Annotation.txt",
          "--allow-missing", "--no-progress", "--out", shards, log=log)
    return shards


def test_lists(shards: Path, out: Path) -> dict[str, Path]:
    """Video lists of the 60 test videos and of the 46 with exact (vantage) segment bounds."""
    from claws.data.shards import ShardSet

    test = ShardSet(shards).select(split="test")
    vantage = [v.video_id for v in test if "vantage" in str(v.extractor.get("segment_bounds_source", ""))]
    lists = {"test60": [v.video_id for v in test], "vantage46": vantage}
    paths = {}
    for name, ids in lists.items():
        paths[name] = out / f"{name}.txt"
        paths[name].write_text("\n".join(ids) + "\n")
    return paths


def training_sizes(shards: Path, val_fraction: float, seed: int, window: int) -> tuple[int, int]:
    """(training videos, training windows) after the seeded validation hold-out."""
    from claws.data.shards import ShardSet
    from claws.pipeline.training.data import split_validation

    train, _ = split_validation(ShardSet(shards).select(split="train"), val_fraction, seed)
    return len(train), sum(math.ceil(v.num_clips / window) for v in train)


def iterations_for(preset: str, passes: float, videos: int, windows: int) -> int:
    """Iterations that give `passes` passes over the training videos."""
    per_pass = videos / MIL_VIDEOS_PER_ITERATION if preset == "mil" else windows
    return max(1, round(passes * per_pass))


def one_run(preset: str, seed: int, passes: float, args: argparse.Namespace, shards: Path,
            lists: dict[str, Path]) -> dict:
    """Train, score and evaluate one (preset, seed); returns its figures."""
    videos, windows = training_sizes(shards, args.val_fraction, seed, 64)
    iterations = iterations_for(preset, passes, videos, windows)
    name = f"{preset}-s{seed}-i{iterations}{'-' + args.tag if args.tag else ''}"
    log = args.out / "logs" / f"{name}.log"
    run = args.out / "runs" / name
    start = time.perf_counter()
    if not (run / "checkpoints" / "last.pt").is_file():
        claws("train", "--preset", preset, "--seed", seed, "--shards", shards, "--runs-dir",
              args.out / "runs", "--name", name, "--iterations", iterations,
              "--lr-decay-step", max(1, int(0.8 * iterations)), "--val-fraction", args.val_fraction,
              "--val-every", max(1, iterations // 10), "--log-every", max(1, iterations // 20),
              "--checkpoint-every", iterations, *args.train_args, log=log)
    trained = time.perf_counter() - start
    scores = args.out / "scores" / name
    claws("score", "--run", run, "--shards", shards, "--split", "test", "--out", scores,
          "--no-progress", "--overwrite", log=log)
    figures = {"preset": preset, "seed": seed, "iterations": iterations,
               "passes": round(iterations * (MIL_VIDEOS_PER_ITERATION if preset == "mil" else 1)
                               / (videos if preset == "mil" else windows), 2),
               "train_s": round(trained, 1)}
    for subset, video_list in lists.items():
        report = args.out / "reports" / f"{name}-{subset}"
        claws("evaluate", scores, "--ucf-annotations", UCF / "Temporal_Anomaly_Annotation.txt",
              "--ucf-frame-counts", UCF / "Test_Annotation.txt", "--videos", video_list,
              "--no-video-plots", "--no-progress", "--out", report, log=log)
        metrics = json.loads((report / "metrics.json").read_text())
        figures[subset] = {name: metrics[key] for key, name in FIGURES.items()}
        figures[subset].update(videos=metrics["num_videos"],
                               video_auc_undefined=metrics["num_video_auc_undefined"],
                               per_video=metrics["per_video"])
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    figures["validation"] = [{k: x.get(k) for k in ("step", "video_auc", "val_regression", "val_ranking")
                              if x.get(k) is not None} for x in lines if x["kind"] == "val"]
    shown = {k: v for k, v in figures["test60"].items() if k != "per_video"}
    print(f"{name}: {shown}", file=sys.stderr, flush=True)
    return figures


def mean_sd(values: list[float | None]) -> tuple[float | None, float]:
    """Mean and sd over seeds of the defined values (None: undefined in that run)."""
    values = [v for v in values if v is not None]
    if not values:
        return None, 0.0
    return (round(statistics.fmean(values), 4),
            round(statistics.stdev(values), 4) if len(values) > 1 else 0.0)


def summarize(runs: list[dict], presets: list[str]) -> dict:
    """Mean and sd over seeds of every figure, per preset."""
    out = {}
    for preset in presets:
        chosen = [r for r in runs if r["preset"] == preset]
        entry = {}
        for subset in ("test60", "vantage46"):
            figures = {}
            for key in FIGURES.values():
                figures[key], figures[f"{key}_sd"] = mean_sd([r[subset][key] for r in chosen])
            figures["video_auc_undefined"] = max(r[subset]["video_auc_undefined"] for r in chosen)
            entry[subset] = figures
        result = dict(entry["test60"])
        result["vantage46"] = entry["vantage46"]
        result["seeds"] = len(chosen)
        result["passes"] = chosen[0]["passes"]
        result["iterations"] = chosen[0]["iterations"]
        out[preset] = result
    return out


PAIRED = ("auc", "auc_a", "video_auc_mean")  # figures compared seed by seed


def difference(runs: list[dict], first: str, second: str) -> dict[str, list[float]] | None:
    """Each PAIRED figure of `first` minus that of `second`, seed by seed (same data, same
    seed); None when they share no seed."""
    by_run = {(r["preset"], r["seed"]): r["test60"] for r in runs}
    seeds = sorted(s for p, s in by_run if p == second and (first, s) in by_run)
    if not seeds:
        return None
    return {key: [None if by_run[first, s][key] is None or by_run[second, s][key] is None
                  else round(by_run[first, s][key] - by_run[second, s][key], 4) for s in seeds]
            for key in PAIRED}


def paired_differences(runs: list[dict], reference: str = "claws") -> dict:
    """`reference` minus each other preset, figure by figure, seed by seed."""
    presets = sorted({r["preset"] for r in runs} - {reference})
    found = {p: difference(runs, reference, p) for p in presets}
    return {p: d for p, d in found.items() if d is not None}


def bottom_up_steps(runs: list[dict]) -> dict:
    """What each bottom-up step (Table 3's rows in order) changes: the next preset minus the one
    before, figure by figure, seed by seed."""
    steps = {f"{a} -> {b}": difference(runs, b, a) for a, b in zip(BOTTOM_UP, BOTTOM_UP[1:])}
    return {step: d for step, d in steps.items() if d is not None}


def event_coverage(runs: list[dict]) -> dict:
    """How much of each anomalous test video its annotated event covers (from any one run)."""
    rows = [row for row in runs[0]["test60"]["per_video"] if row["num_frames"]] if runs else []
    shares = [row["num_anomalous_frames"] / row["num_frames"] for row in rows]
    if not shares:
        return {}
    return {"videos": len(shares), "median": round(statistics.median(shares), 4),
            "mean": round(statistics.fmean(shares), 4), "min": round(min(shares), 4),
            "max": round(max(shares), 4),
            "frames_median": statistics.median(row["num_frames"] for row in rows)}


def cell(value: float | None, sd: float, scale: float = 100, digits: int = 2) -> str:
    """'mean ± sd' (scaled), or 'undefined'."""
    if value is None:
        return "undefined"
    return f"{scale * value:.{digits}f} ± {scale * sd:.{digits}f}"


def markdown(results: dict, passes: float, seeds: list[int]) -> str:
    """The README tables: overall figures, then localization."""
    lines = [
        f"Real UCF-Crime C3D features, 244 training / 60 test videos, {passes:g} passes over the "
        f"training videos, seeds {','.join(map(str, seeds))} (mean ± sd).", "",
        "| method | frame AUC, 60 test | AP, 60 test | score gap | frame AUC, 46 vantage | "
        "paper, full UCF-Crime |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for preset, r in results.items():
        v = r["vantage46"]
        paper = f"{PAPER_AUC[preset]:.2f}" if preset in PAPER_AUC else ""
        lines.append(f"| {preset} | {cell(r['auc'], r['auc_sd'])} | {cell(r['ap'], r['ap_sd'])} | "
                     f"{cell(r['gap'], r['gap_sd'], 1, 3)} | {cell(v['auc'], v['auc_sd'])} | "
                     f"{paper} |")
    lines += [
        "", "Localization: the 25 anomalous test videos alone (AUC_A, AP_A over their frames; "
        "each video's own frame AUC, mean and median over videos; score gap inside them).", "",
        "| method | AUC_A | AP_A | video AUC, mean | video AUC, median | gap inside | "
        "AUC_A, 46 vantage |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for preset, r in results.items():
        v = r["vantage46"]
        undefined = (f" ({r['video_auc_undefined']} undefined)" if r["video_auc_undefined"]
                     else "")
        lines.append(
            f"| {preset} | {cell(r['auc_a'], r['auc_a_sd'])} | {cell(r['ap_a'], r['ap_a_sd'])} | "
            f"{cell(r['video_auc_mean'], r['video_auc_mean_sd'])}{undefined} | "
            f"{cell(r['video_auc_median'], r['video_auc_median_sd'])} | "
            f"{cell(r['gap_a'], r['gap_a_sd'], 1, 3)} | {cell(v['auc_a'], v['auc_a_sd'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="claws,mil,bbn+rbs",
                        help="comma-separated presets of `claws train` (default %(default)s)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default %(default)s)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=float, default=None,
                        help="passes over the training videos, the same for every method")
    budget.add_argument("--iterations", type=int, default=None,
                        help="CLAWS iterations (windows); converted to passes for every method")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="training videos held out for the validation curve (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (default %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("out/real_features"),
                        help="shards, runs, scores, reports, table.md (default %(default)s)")
    parser.add_argument("--train-arg", dest="train_args", action="append", default=[],
                        help="extra `claws train` argument for every run, e.g. --train-arg=--lr=1e-3")
    parser.add_argument("--tag", default="", help="suffix of run names (with --train-arg)")
    args = parser.parse_args()
    if not PACK.is_dir():
        sys.exit(f"{PACK} not found: this benchmark needs the shared real-feature pack")
    args.train_args = [part for arg in args.train_args for part in arg.split("=", 1)]
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    seeds = [int(s) for s in args.seeds.split(",")]
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    shards = import_pack(args.out, args.out / "logs" / "import.log")
    lists = test_lists(shards, args.out)
    _, windows = training_sizes(shards, args.val_fraction, 0, 64)
    passes = args.epochs if args.epochs is not None else (args.iterations or 3000) / windows
    passes = round(passes, 2)
    jobs = [(p, s) for p in presets for s in seeds]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        runs = list(pool.map(lambda job: one_run(*job, passes, args, shards, lists), jobs))
    results = summarize(runs, presets)
    (args.out / "table.md").write_text(markdown(results, passes, seeds))
    line = {"bench": "real_features", "features": "real Sports-1M C3D fc6, 32 segments (ucf_c3d32)",
            "passes": passes, "seeds": seeds, "val_fraction": args.val_fraction,
            "results": results, "claws_minus": paired_differences(runs),
            "steps": bottom_up_steps(runs), "test_events": event_coverage(runs), "runs": runs,
            "seconds": round(time.perf_counter() - start, 1)}
    (args.out / "results.json").write_text(json.dumps(line, indent=1))
    print(json.dumps(line))


if __name__ == "__main__":
    main()
