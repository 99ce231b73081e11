"""Benchmark of `claws watch` on live loopback cameras: streams sustained in real time per core,
the latency of provisional scores, and the memory of a long watch; prints one JSON line.

    .venv/bin/python bench/watch.py [--minutes 10] [--trial-seconds 90] [--max-streams 16]
                                    [--precision fp32 bf16] [--device cpu]

Each camera is bench/stream_source.py in its own process: a 320x240 25 fps synthetic scene
(H.264 as cameras send it, libx264 ultrafast: no B-frames; in MPEG-TS; a 4-second loop remuxed
over and over, so a sender costs almost no CPU) sent over TCP on 127.0.0.1 and paced in real
time, packet i at t0 + i / 25. `claws watch` runs as a subprocess (`python -m claws.pipeline.cli
watch ...`) with its defaults (evidence clips on: H.264 is remuxed into them, not transcoded) on a
small CLAWS Net checkpoint (as tests/pipeline/test_watch.py builds it, with the training default
b = 64) and random C3D weights (seeded): C3D is the cost, and its cost does not depend on its
weights' values. The random model's events are arbitrary; each trial counts those opened.

(a) streams sustained: trials of --trial-seconds with n cameras at once, n = 1, 2, 4, ... then
    bisected, up to --max-streams. A trial passes when, after --warmup seconds, no stream has a
    "frames dropped" record in OUT/<name>/stream.jsonl (claws watch drops whole clips of a live
    source when it is slower than real time) or lost its stream, the provisional latency p95 is
    under --latency-bound (2 s, the goal of issue 19), and every stream's real-time factor (stream
    seconds scored per wall second) is at least 0.95 (a drop still in progress at the stop has no
    record yet). Reported: the largest n that passed, per CPU core, and each trial's figures.
(b) latency: a provisional clips.jsonl line ("final": false) says when its clip's last frame was
    decoded ("arrived") and when the line was written ("wall"); latency = wall - arrived, p50 and
    p95 over the lines written after the warm-up, pooled over the streams (clips still queued at
    the stop are not counted, so a job behind real time has a higher latency still). Quoted at one
    stream per core (that trial is run even when a smaller n failed). `latency_from_send_s` counts
    from when the sender sent the clip's last frame instead: it adds the socket, PyAV's probing
    and decoding, which `arrived` leaves out.
(c) memory: VmRSS of the watch process (/proc/<pid>/status, sampled every second) after 1 minute
    and after --minutes of streaming, at the largest n sustained (at least 1) and the first
    precision measured. A sample lands inside or between C3D calls, whose activations come and
    go (hundreds of MB), so growth_mb compares the highest samples of the 30 s before each mark,
    and the trend is the slope of a line fitted to every sample after the first minute. Goal:
    growth under 50 MB.

The figures are per precision: fp32, and bf16 only where the device computes it natively (a CPU
with AMX or AVX512-BF16, as claws.extract.c3d.default_precision decides; elsewhere oneDNN emulates
it about 100x slower and the answer is 0 streams). Compare ratios, not absolute times: the
machine is shared; the JSON names the CPU, its cores and the load average before and after.

GPU: the same script measures a GPU with `--device cuda --precision fp32 bf16 fp16` (C3D in the
watch process on the GPU; decoding and cropping stay one thread per stream on the CPU). It has
not been run on one (none lent); bench/gpu.py's network_clips_per_s / 1.5625 (clips/s of one
25 fps stream) bounds the streams one GPU can take, and its cpu_crop_clips_per_s_per_core what
the CPUs can feed it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from claws.data.clips import CLIP_LEN
from claws.data.shards import NormStats
from claws.extract.c3d import cuda_has_native_bf16, default_precision
from claws.extract.synthetic import synthetic_frames, write_video
from claws.model.claws import ClawsNet
from claws.pipeline.training.checkpoint import save_checkpoint

BENCH = Path(__file__).resolve().parent
FPS = 25
HEIGHT, WIDTH = 240, 320
LOOP_FRAMES = 100  # 4 s of scene per camera, sent over and over
DIM = 2048
WINDOW = 64  # b: TrainConfig's default (paper 4.3)
MIN_REALTIME_FACTOR = 0.95
OPEN_TIMEOUT_S = 300.0  # torch import and C3D's random weights, on a loaded 2-core machine
STOP_TIMEOUT_S = 180.0  # a SIGTERM waits for the C3D call in flight


def bench_run(folder: Path) -> Path:
    """A small CLAWS Net checkpoint over random-weights C3D (as tests/pipeline/test_watch.py)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    stats = NormStats(rng.random(DIM) * 0.1, 0.5 + rng.random(DIM), 2, 20, "train")
    args = {"feature_dim": DIM, "hidden1": 8, "hidden2": 4}
    extractor = {"random": True, "seed": 0, "weights_sha256": "", "feature_dim": DIM}
    save_checkpoint(folder / "checkpoints" / "last.pt", model=ClawsNet(**args), model_name="claws",
                    model_args=args, config={"window": WINDOW}, norm_stats=stats,
                    feature_meta={"feature_dim": DIM, "clip_len": CLIP_LEN, "extractor": extractor},
                    step=1, seed=0, version="bench")
    return folder


def camera_loop(folder: Path, index: int) -> Path:
    """Camera `index`'s scene: LOOP_FRAMES synthetic frames, H.264 in MPEG-TS (written once)."""
    path = folder / f"camera-{index}.ts"
    if not path.exists():
        frames = synthetic_frames(LOOP_FRAMES, height=HEIGHT, width=WIDTH, seed=index)
        write_video(path, frames, fps=FPS, codec="libx264")  # ultrafast: no B-frames
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Camera:
    """bench/stream_source.py in its own process; its stdout lines collected by a thread."""

    def __init__(self, loop: Path) -> None:
        self.port = free_port()
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, str(BENCH / "stream_source.py"), "--port", str(self.port),
             "--loop", str(loop)], stdout=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._collect, daemon=True)
        self.thread.start()

    def _collect(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.strip())

    def wait_ready(self, timeout: float = 60.0) -> None:
        end = time.time() + timeout
        while "ready" not in self.lines:
            if self.process.poll() is not None or time.time() > end:
                raise RuntimeError(f"stream source on port {self.port} did not start")
            time.sleep(0.05)

    def field(self, name: str) -> float | None:
        """A figure the sender printed ("t0 T", "sent N late_max_s L"), None when not (yet)."""
        for line in self.lines:
            words = line.split()
            if name in words[::2]:
                return float(words[words.index(name) + 1])
        return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.thread.join(timeout=5)


def rss_mb(pid: int) -> float | None:
    """VmRSS of a running process in MB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def read_lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def opened_at(out: Path, names: list[str]) -> float | None:
    """When the last of the streams opened (its first "opened" record), None until all have."""
    walls = []
    for name in names:
        records = read_lines(out / name / "stream.jsonl")
        opened = [r["wall"] for r in records if r["record"] == "opened"]
        if not opened:
            return None
        walls.append(opened[0])
    return max(walls)


def stream_figures(folder: Path, start: float, stop: float, t0: float | None) -> dict:
    """One stream's figures over [start, stop] from its clips.jsonl and stream.jsonl.

    Args:
        folder: OUT/<name>.
        start, stop: the measured span (time.time(), the watch process's clock).
        t0: when the sender sent the first frame of the first connection (None: unknown).

    Returns:
        over the provisional lines written in the span: latencies (wall - arrived), latencies
        from the send of the clip's last frame, frames scored; clips dropped by drops that
        overlap the span, stream losses, events opened in the span.
    """
    records = read_lines(folder / "stream.jsonl")
    first_frame, fps, lost_after = {}, float(FPS), None
    for r in records:
        if r["record"] == "opened":
            first_frame[r["stretch"]] = r.get("first_frame", 0)
            fps = float(r["fps"])
        elif r["record"] == "stream lost" and lost_after is None:
            lost_after = r["after_stretch"]  # later stretches are another connection
    latency, from_send, frames = [], [], 0
    for line in read_lines(folder / "clips.jsonl"):
        if line["final"] or not start <= line["wall"] <= stop:
            continue
        frames += line["frames"][1] - line["frames"][0]
        latency.append(line["wall"] - line["arrived"])
        stretch = line["stretch"]
        if t0 is not None and (lost_after is None or stretch <= lost_after):
            last = first_frame.get(stretch, 0) + line["frames"][1] - 1  # frame of the connection
            from_send.append(line["wall"] - (t0 + last / fps))
    dropped = sum(r["clips"] for r in records if r["record"] == "frames dropped"
                  and r["to"] >= start and r["from"] <= stop)
    lost = sum(r["record"] == "stream lost" for r in records)
    events = sum(e["status"] == "opened" and start <= e["wall"] <= stop
                 for e in read_lines(folder / "events.jsonl"))
    return {"latency": latency, "from_send": from_send, "frames": frames, "fps": fps,
            "dropped_clips": dropped, "lost": lost, "events_opened": events}


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "clips": 0}
    p50, p95 = np.percentile(values, [50, 95])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "clips": len(values)}


def verdict(streams: list[dict], span_s: float, bound_s: float) -> dict:
    """A trial's figures from its streams' (stream_figures), and whether it kept real time."""
    factors = [s["frames"] / s["fps"] / span_s for s in streams]
    latency = percentiles([x for s in streams for x in s["latency"]])
    dropped = sum(s["dropped_clips"] for s in streams)
    lost = sum(s["lost"] for s in streams)
    why_not = []
    if dropped:
        why_not.append(f"{dropped} clips dropped")
    if lost:
        why_not.append(f"{lost} stream losses")
    if latency["p95"] is None or latency["p95"] >= bound_s:
        why_not.append(f"latency p95 {latency['p95']} s, bound {bound_s} s")
    if min(factors, default=0.0) < MIN_REALTIME_FACTOR:
        why_not.append(f"real-time factor {min(factors, default=0.0):.3f} < {MIN_REALTIME_FACTOR}")
    return {
        "streams": len(streams), "passed": not why_not, "why_not": why_not,
        "realtime_factor_per_stream": [round(f, 3) for f in factors],
        "latency_s": latency,
        "latency_from_send_s": percentiles([x for s in streams for x in s["from_send"]]),
        "dropped_clips": dropped, "stream_losses": lost,
        "events_opened": sum(s["events_opened"] for s in streams),
        "clips_per_s": round(sum(s["frames"] for s in streams) / CLIP_LEN / span_s, 3),
        "needed_clips_per_s": round(len(streams) * FPS / CLIP_LEN, 3),
    }


def rss_at(samples: list[tuple[float, float]], seconds: float) -> float | None:
    """The RSS sample nearest to `seconds` of streaming (None without samples)."""
    if not samples:
        return None
    return round(min(samples, key=lambda sample: abs(sample[0] - seconds))[1], 1)


def rss_trend(samples: list[tuple[float, float]], after: float) -> float | None:
    """MB per minute of a least-squares line through the samples after `after` seconds: the
    activations' coming and going averages out over hundreds of samples, a leak does not."""
    later = [(t, mb) for t, mb in samples if t >= after]
    if len(later) < 2:
        return None
    times, mbs = np.array(later).T
    return round(float(np.polyfit(times / 60, mbs, 1)[0]), 2)


def rss_peak_before(samples: list[tuple[float, float]], seconds: float,
                    span: float) -> float | None:
    """The highest RSS sampled in the `span` seconds up to `seconds` of streaming: a sample
    lands inside or between C3D calls, whose activations come and go (hundreds of MB a batch)."""
    inside = [mb for t, mb in samples if seconds - span <= t <= seconds + 0.5]
    return round(max(inside), 1) if inside else rss_at(samples, seconds)


def trial(work: Path, run: Path, streams: int, seconds: float, precision: str, device: str,
          warmup: float, bound: float) -> dict:
    """`claws watch` on `streams` cameras for `seconds` of streaming; its figures (verdict) with
    the RSS samples of the watch process."""
    out = work / f"watch-{precision}-{streams}-{int(time.time() * 1000)}"
    cameras = [Camera(camera_loop(work, i)) for i in range(streams)]
    names = [f"cam{i}" for i in range(streams)]
    log = out.with_suffix(".log")
    watch = None
    try:
        for camera in cameras:
            camera.wait_ready()
        command = [sys.executable, "-m", "claws.pipeline.cli", "watch",
                   *[c.url for c in cameras], "--run", str(run), "--out", str(out),
                   *[a for n in names for a in ("--name", n)], "--weights", "random",
                   "--precision", precision, "--device", device]
        with log.open("w") as err:
            watch = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        began, samples = time.time(), []
        opened = None
        while opened is None:
            if watch.poll() is not None or time.time() - began > OPEN_TIMEOUT_S:
                raise RuntimeError(f"claws watch did not open its streams (exit {watch.poll()}): "
                                   + log.read_text()[-2000:])
            time.sleep(0.5)
            opened = opened_at(out, names)
        while time.time() < opened + seconds:
            mb = rss_mb(watch.pid)
            if mb is None or watch.poll() is not None:
                raise RuntimeError(f"claws watch ended early (exit {watch.poll()}): "
                                   + log.read_text()[-2000:])
            samples.append((time.time() - opened, mb))
            time.sleep(1.0)
        stop = time.time()
        watch.send_signal(signal.SIGTERM)
        code = watch.wait(timeout=STOP_TIMEOUT_S)
        if code != 0:
            raise RuntimeError(f"claws watch exited {code} after SIGTERM: "
                               + log.read_text()[-2000:])
    finally:
        if watch is not None and watch.poll() is None:
            watch.kill()
            watch.wait()
        for camera in cameras:
            camera.stop()
    start = opened + warmup
    figures = [stream_figures(out / n, start, stop, c.field("t0")) for n, c in zip(names, cameras)]
    result = verdict(figures, stop - start, bound)
    late = [c.field("late_max_s") for c in cameras]
    result["sender_late_max_s"] = max((x for x in late if x is not None), default=None)
    result["measured_s"] = round(stop - start, 1)
    result["rss_samples"] = samples
    return result


def search(work: Path, run: Path, precision: str, args: argparse.Namespace, cores: int) -> dict:
    """The largest number of cameras sustained (doubling, then bisecting), and the trial at one
    stream per core."""
    trials: dict[int, dict] = {}

    def passes(n: int) -> bool:
        if n not in trials:
            trials[n] = trial(work, run, n, args.trial_seconds, precision, args.device,
                              args.warmup, args.latency_bound)
            trials[n].pop("rss_samples")
            print(json.dumps({"partial": True, "precision": precision, **trials[n]}),
                  file=sys.stderr, flush=True)
        return trials[n]["passed"]

    best, n = 0, 1
    while n <= args.max_streams and passes(n):
        best, n = n, 2 * n
    high = min(n, args.max_streams + 1)  # the first n that failed (or one past the cap)
    while high - best > 1:
        middle = (best + high) // 2
        if passes(middle):
            best = middle
        else:
            high = middle
    per_core = min(cores, args.max_streams)
    passes(per_core)
    return {"streams_sustained": best, "streams_per_core": round(best / cores, 3),
            "latency_at_one_stream_per_core": {"streams": per_core, **{
                k: trials[per_core][k] for k in ("latency_s", "latency_from_send_s",
                                                 "realtime_factor_per_stream")}},
            "trials": [trials[k] for k in sorted(trials)]}


def measured_precisions(wanted: list[str], device: str) -> tuple[list[str], dict]:
    """The precisions to measure here, and a reason for each one skipped."""
    skipped = {}
    native_bf16 = (default_precision("cpu") == "bf16" if device == "cpu"
                   else cuda_has_native_bf16(device))
    if "bf16" in wanted and not native_bf16:
        skipped["bf16"] = ("skipped: bf16 is emulated on this CPU (no AMX or AVX512-BF16; "
                           "claws.extract.c3d.default_precision), about 100x slower than fp32"
                           if device == "cpu" else "skipped: this GPU has no bf16 tensor cores")
    if "fp16" in wanted and device == "cpu":
        skipped["fp16"] = "skipped: fp16 C3D is measured on a GPU only"
    return [p for p in wanted if p not in skipped], skipped


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="streaming time of the memory run (RSS after 1 minute and after this)")
    parser.add_argument("--trial-seconds", type=float, default=90.0,
                        help="streaming time of each trial of the search (warm-up included)")
    parser.add_argument("--warmup", type=float, default=15.0,
                        help="seconds after the streams open that no figure counts")
    parser.add_argument("--max-streams", type=int, default=16)
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU machine")
    parser.add_argument("--latency-bound", type=float, default=2.0, help="p95 seconds (issue 19)")
    parser.add_argument("--memory-only", action="store_true",
                        help="skip the search: the memory run alone, at one stream")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the watch folders and logs here (default: a temporary folder)")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    load_before = os.getloadavg()
    precisions, skipped = measured_precisions(args.precision, args.device)
    result: dict = {"bench": "watch", "device": args.device, "cpu": cpu_model(), "cores": cores,
                    "stream": f"{WIDTH}x{HEIGHT} {FPS} fps H.264 in MPEG-TS over TCP on "
                    "127.0.0.1, paced in real time, one sender process each",
                    "checkpoint": f"CLAWS Net {DIM}-8-4, b = {WINDOW}; C3D random weights (seeded)",
                    "criterion": f"no clip dropped, no stream lost, latency p95 < "
                    f"{args.latency_bound} s, real-time factor >= {MIN_REALTIME_FACTOR} per "
                    f"stream, after a {args.warmup:g} s warm-up, over {args.trial_seconds:g} s",
                    "precisions": dict(skipped)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) if args.keep is None else args.keep
        work.mkdir(parents=True, exist_ok=True)
        run = bench_run(work / "run")
        for precision in [] if args.memory_only else precisions:
            result["precisions"][precision] = search(work, run, precision, args, cores)
        if precisions:
            first = precisions[0]
            streams = max(1, result["precisions"].get(first, {}).get("streams_sustained", 1))
            seconds = args.minutes * 60
            long = trial(work, run, streams, seconds, first, args.device, args.warmup,
                         args.latency_bound)
            samples = long.pop("rss_samples")
            early = min(60.0, seconds / 10)
            span = early / 2
            peak_early, peak_end = (rss_peak_before(samples, early, span),
                                    rss_peak_before(samples, seconds, span))
            result["rss"] = {
                "streams": streams, "precision": first, "minutes": args.minutes,
                f"mb_after_{early:g}s": rss_at(samples, early),
                f"mb_after_{seconds:g}s": rss_at(samples, seconds),
                f"peak_mb_in_the_{span:g}s_before": [peak_early, peak_end],
                "growth_mb": (None if None in (peak_early, peak_end)
                              else round(peak_end - peak_early, 1)),
                "max_mb": round(max(mb for _, mb in samples), 1), "goal_growth_mb": 50,
                "peak_mb_per_minute": [rss_peak_before(samples, 60 * m, 60)
                                       for m in range(1, int(seconds // 60) + 1)],
                f"trend_mb_per_minute_after_{early:g}s": rss_trend(samples, early),
                "samples_every_s": 1.0, "run": long,
            }
    result["gpu"] = ("measured" if args.device != "cpu" else
                     "not measured here: run bench/watch.py --device cuda --precision fp32 bf16 "
                     "fp16 where a GPU is lent (see the docstring)")
    result["load_before"] = [round(x, 2) for x in load_before]
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
