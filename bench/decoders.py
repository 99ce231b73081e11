"""Benchmark of the video decoders the extractor could use; prints a table, then one JSON line.

Candidates, each run in its own subprocess (decord2 has decord's module name, so it is imported
from its own folder on PYTHONPATH, never beside decord 0.6.0; a process per run also gives a clean
peak-memory reading). All decode a whole file in order into (n <= 128, H, W, 3) uint8 RGB chunks:

    decord_flush  decord 0.6.0 get_batch + seek(0) after every chunk (the reader before issue 13:
                  the seek empties decord's unbounded read-ahead queue, then re-decodes from the
                  last keyframe)
    decord        decord 0.6.0 get_batch, no flush
    decord2       decord2 (maintained fork, module `decord`), get_batch, no flush
    pyav          PyAV streaming decode: container.decode(video=0), thread_type AUTO, RGB by one
                  VideoReformatter for the whole video (as claws.extract.video does)
    pyav_to_ndarray  (not run by default) the same with frame.to_ndarray(format="rgb24"), which
                  builds a swscale context per frame; also the exactness reference, single-threaded
    torchcodec    torchcodec VideoDecoder(seek_mode="exact").get_frames_in_range, sequential
    claws         claws.extract.video.open_video(path).chunks(128): what the extractor ships

Measured:
(a) frames/s of a sequential full decode (open included) of each shared video and of a 1-minute
    10 fps 320x240 synthetic video; best of --repeats, candidates interleaved.
(b) slow consumer: a 1-minute and a 10-minute 10 fps 320x240 video (mpeg4 AVI, as in
    bench/extract.py), the consumer sleeping --consumer-ms after every chunk (the extraction
    worker blocked on a full DataLoader queue): peak RSS (VmHWM) of each run and the 10-minute
    minus the 1-minute one (goal <= 300 MB: bounded memory); frames per second the consumer
    waited for the decoder ("wait fps") and frames per CPU second of the whole process, all threads
    ("cpu fps": what decoding takes from the cores the network also needs).
(c) exactness: the first --exact-frames frames of each video (0: all) against PyAV's per-frame
    to_ndarray(format="rgb24"), one thread, decoded in lockstep (in the process of (a)'s first
    repeat, after it): fraction identical, max abs pixel difference; frames yielded (from (a))
    against what PyAV decodes.

Usage (about 5 minutes at the defaults on the shared 2-core CPU):
    .venv/bin/python bench/decoders.py [--threads 1] [--repeats 1] [--consumer-ms 200]
                                       [--exact-frames 300] [--decord2-path /tmp/decord2_pkg]
    .venv/bin/python bench/decoders.py --quick          # tiny synthetic videos, under a minute
decord2 cannot be installed beside decord 0.6.0; install it in a folder of its own:
    .venv/bin/pip install --no-deps --target /tmp/decord2_pkg decord2
torchcodec needs FFmpeg 4-7 shared libraries (Debian 12: apt-get install libavcodec59
libavformat59 libavutil57 libswscale6 libswresample4 libavfilter8 libavdevice59). A candidate that
cannot be imported is a row that says why. The machine is shared: absolute rates are noisy; compare
the candidates of one run (interleaved), and prefer cpu fps, which load disturbs least.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np

SHARED = Path(os.environ.get("CLAWS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SHARED_VIDEOS = ("vtest.avi", "Megamind.avi", "Megamind_bugy.avi", "wannaworktogether.mp4")
CANDIDATES = ("decord_flush", "decord", "decord2", "pyav", "torchcodec", "claws")
OPTIONAL = ("pyav_to_ndarray",)
DECORD2_PATH = Path(os.environ.get("CLAWS_DECORD2_PATH", "/tmp/decord2_pkg"))
RESULT = "RESULT "  # prefix of the worker's result line on stdout


# ---------------------------------------------------------------- worker (one subprocess per run)

def _import(name: str) -> str:
    """Import the candidate's library; its version. Raises ImportError naming what is missing."""
    if name.startswith("decord"):
        import decord

        version = decord.__version__
        if name == "decord2" and version == "0.6.0":
            raise ImportError("decord2 not installed (decord 0.6.0 found instead; see --decord2-path)")
        if name != "decord2" and version != "0.6.0":
            raise ImportError(f"decord 0.6.0 not installed (found {version})")
        return version
    if name.startswith("pyav"):
        import av

        return av.__version__
    if name == "torchcodec":
        import torchcodec
        from torchcodec.decoders import VideoDecoder  # noqa: F401  (loads the FFmpeg libraries)

        return torchcodec.__version__
    import claws.extract.video as video

    return f"decoder {getattr(video, 'DECODER', 'decord')}"


def decoder_chunks(name: str, path: Path, chunk: int, threads: int) -> Iterator[np.ndarray]:
    """The candidate's (n, H, W, 3) uint8 RGB chunks of the whole file, in order."""
    if name.startswith("decord"):
        import decord

        reader = decord.VideoReader(str(path), num_threads=threads)
        n = len(reader)
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            yield reader.get_batch(list(range(start, stop))).asnumpy()
            if name == "decord_flush" and stop < n:
                reader.seek(0)  # as extract/video.py did: drops the read-ahead queue
    elif name.startswith("pyav"):
        import av
        from av.video.reformatter import VideoReformatter

        reformatter = VideoReformatter()  # one swscale context for the video
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            stream.thread_count = threads
            batch = []
            for frame in container.decode(stream):
                batch.append(frame.to_ndarray(format="rgb24") if name == "pyav_to_ndarray"
                             else reformatter.reformat(frame, format="rgb24").to_ndarray())
                if len(batch) == chunk:
                    yield np.stack(batch)
                    batch = []
            if batch:
                yield np.stack(batch)
    elif name == "torchcodec":
        from torchcodec.decoders import VideoDecoder

        decoder = VideoDecoder(str(path), dimension_order="NHWC", num_ffmpeg_threads=threads,
                               seek_mode="exact")
        n = decoder.metadata.num_frames
        for start in range(0, n, chunk):
            yield decoder.get_frames_in_range(start, min(start + chunk, n)).data.numpy()
    elif name == "claws":
        from claws.extract.video import open_video

        yield from open_video(path, False, threads=threads).chunks(chunk)
    else:
        raise ValueError(name)


def _status_mb(key: str) -> float:
    line = next(l for l in open("/proc/self/status") if l.startswith(key))
    return int(line.split()[1]) / 1024


def consume(chunks: Iterator[np.ndarray], sleep_s: float) -> dict:
    """Drain `chunks`, sleeping `sleep_s` after each; times the waits on the decoder."""
    frames, wait, shape = 0, 0.0, None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while True:
        t = time.perf_counter()
        try:
            chunk = next(chunks)
        except StopIteration:
            wait += time.perf_counter() - t
            break
        wait += time.perf_counter() - t
        frames += len(chunk)
        shape = list(chunk.shape[1:])
        if sleep_s:
            time.sleep(sleep_s)
    return {"frames": frames, "shape": shape, "wait_s": wait, "cpu_s": time.process_time() - cpu0,
            "wall_s": time.perf_counter() - wall0}


def _frames(chunks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    for chunk in chunks:
        yield from chunk


def compare(name: str, path: Path, chunk: int, threads: int, limit: int) -> dict:
    """The candidate's first `limit` frames (0: all) against PyAV's documented per-frame
    conversion (one thread), frame by frame, in lockstep. Frame counts of whole files come from
    (a) and `reference_counts`."""
    ours, ref = _frames(decoder_chunks(name, path, chunk, threads)), _frames(
        decoder_chunks("pyav_to_ndarray", path, chunk, 1))
    n_ours = n_ref = identical = compared = 0
    max_diff, shapes = 0, set()
    while not limit or compared < limit:
        a, b = next(ours, None), next(ref, None)
        n_ours += a is not None
        n_ref += b is not None
        if a is None or b is None:
            break
        compared += 1
        if a.shape != b.shape:
            shapes.add(str(a.shape))
            max_diff = 255
            continue
        if np.array_equal(a, b):
            identical += 1
        else:
            max_diff = max(max_diff, int(np.abs(a.astype(np.int16) - b).max()))
    return {"compared": compared, "identical": identical,
            "identical_fraction": identical / max(n_ours, n_ref, 1), "max_abs_diff": max_diff,
            "ended_early": None if n_ours == n_ref else f"{n_ours} frames vs the reference's {n_ref}",
            "shape_mismatch": sorted(shapes)}


def reference_counts(videos: list[str]) -> dict[str, int]:
    """Frames PyAV decodes from each whole file (decoded, not converted to RGB)."""
    import av

    counts = {}
    for video in videos:
        with av.open(video) as container:
            counts[Path(video).name] = sum(1 for _ in container.decode(video=0))
    return counts


def worker(spec: dict) -> dict:
    """Run one candidate's jobs: rate (list of videos), exact (list of videos) or rss (one video)."""
    name, chunk, threads = spec["candidate"], spec["chunk"], spec["threads"]
    try:
        version = _import(name)
    except Exception as err:  # ImportError, OSError of missing shared libraries, ...
        text = str(err).strip().splitlines()
        return {"error": f"not installed: {type(err).__name__}: {text[-1] if text else ''}"[:300]}
    out = {"version": version, "base_rss_mb": _status_mb("VmRSS")}
    for task, videos in spec["tasks"]:
        results = out.setdefault(task, {})
        if task == "rate" and videos:  # warm-up: the first open loads the codec libraries
            try:
                next(decoder_chunks(name, Path(videos[0]), chunk, threads), None)
            except Exception:  # noqa: BLE001  (reported by the timed run below)
                pass
        for video in videos:
            path = Path(video)
            try:
                if task == "exact":
                    results[path.name] = compare(name, path, chunk, threads,
                                                 spec.get("exact_frames", 0))
                else:
                    sleep = spec.get("consumer_ms", 0) / 1000 if task == "rss" else 0.0
                    results[path.name] = consume(decoder_chunks(name, path, chunk, threads), sleep)
                    results[path.name]["vmhwm_after_mb"] = _status_mb("VmHWM")
            except Exception as err:  # a decoder failing on one file is a result, not a crash
                results[path.name] = {"error": f"{type(err).__name__}: {str(err).strip()[:200]}"}
    out["vmhwm_mb"] = _status_mb("VmHWM")  # not ru_maxrss: it carries the parent's peak over exec
    return out


# ---------------------------------------------------------------- parent

def run_worker(spec: dict, folders: dict[str, Path | None]) -> dict:
    """Run one worker; `folders`: where decord2 (and optionally decord 0.6) are installed."""
    env = dict(os.environ)
    own = {str(p) for p in folders.values() if p}
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in own]
    folder = folders.get("decord2" if spec["candidate"] == "decord2" else
                         "decord" if spec["candidate"].startswith("decord") else "")
    if folder:
        paths.insert(0, str(folder))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], env=env,
                          capture_output=True, text=True)
    lines = [l for l in done.stdout.splitlines() if l.startswith(RESULT)]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or [""])[-1][:200]
        return {"error": f"worker exited {done.returncode}: {tail}"}
    return json.loads(lines[-1][len(RESULT):])


def make_videos(folder: Path, quick: bool, short_min: float, long_min: float) -> dict[str, Path]:
    """Synthetic 10 fps 320x240 mpeg4 AVIs: a short and a long one (as bench/extract.py)."""
    from claws.extract.synthetic import synthetic_frames, write_video

    height, width = (120, 160) if quick else (240, 320)
    scene = synthetic_frames(600, height, width, seed=1)
    videos = {}
    for key, minutes in (("short", short_min), ("long", long_min)):
        n = max(1, round(minutes * 60 * 10))
        videos[key] = write_video(folder / f"synthetic_{minutes:g}min.avi",
                                  (scene[i % 600] for i in range(n)), fps=10.0, codec="mpeg4")
    return videos


def summarise(runs: list[dict], exact: dict, rss: dict[str, dict], synth: dict[str, Path],
              counts: dict[str, int]) -> dict:
    """One candidate's row from its runs: rate (one per repeat), exact, rss (short and long run;
    in --quick one run that decoded both, its peak read after each)."""
    row: dict = {"status": "ok"}
    errors = [r["error"] for r in runs + [exact] + list(rss.values()) if "error" in r]
    if errors and all("not installed" in e for e in errors):
        return {"status": errors[0]}
    row["version"] = next((r["version"] for r in runs + [exact] if "version" in r), None)
    fps, frames, problems = {}, {}, {}
    for run in runs:
        for video, res in run.get("rate", {}).items():
            if "error" in res:
                problems[video] = res["error"]
                continue
            rate = res["frames"] / res["wall_s"]
            fps[video] = round(max(fps.get(video, 0.0), rate), 1)
            frames[video] = res["frames"]
    row["fps"], row["frames"] = fps, frames
    row["identical_fraction"] = {}
    row["max_abs_diff"] = {}
    for video, res in exact.get("exact", {}).items():
        if "error" in res:
            problems.setdefault(video, res["error"])
            continue
        row["identical_fraction"][video] = round(res["identical_fraction"], 4)
        row["max_abs_diff"][video] = res["max_abs_diff"]
        if res["ended_early"] or res["shape_mismatch"]:
            problems.setdefault(video, (res["ended_early"] or "")
                                + (f" shapes {res['shape_mismatch']}" if res["shape_mismatch"] else ""))
    for video, n in frames.items():
        if n != counts.get(video, n):
            problems.setdefault(video, f"{n} frames, PyAV {counts[video]}")
    peaks = {}
    for key, run in rss.items():
        res = run.get("rss", {}).get(synth[key].name, {"error": run.get("error", "no result")})
        if "error" in res:
            problems[f"rss_{key}"] = res["error"]
            continue
        peaks[key] = res["vmhwm_after_mb"]
        if key == "long":
            row["slow_consumer_wait_fps"] = round(res["frames"] / max(res["wait_s"], 1e-9), 1)
            row["slow_consumer_cpu_fps"] = round(res["frames"] / max(res["cpu_s"], 1e-9), 1)
            row["slow_consumer_frames"] = res["frames"]
    row["peak_rss_short_mb"] = round(peaks["short"], 1) if "short" in peaks else None
    row["peak_rss_long_mb"] = round(peaks["long"], 1) if "long" in peaks else None
    row["peak_long_minus_short_mb"] = (round(peaks["long"] - peaks["short"], 1)
                                       if len(peaks) == 2 else None)
    row["problems"] = problems
    return row


def print_table(result: dict, names: list[str]) -> None:
    short = {n: Path(n).stem[:12] for n in names}
    head = ["decoder", "version"] + [f"fps {short[n]}" for n in names] + [
        "wait fps", "cpu fps", "MB short", "MB long", "long-short", "identical", "max diff"]
    rows = []
    for cand, row in result["candidates"].items():
        if row["status"] != "ok":
            rows.append([cand, row["status"][:60]])
            continue
        ident = [row["identical_fraction"][n] for n in names if n in row["identical_fraction"]]
        diffs = [row["max_abs_diff"][n] for n in names if n in row["max_abs_diff"]]
        rows.append([cand, str(row["version"])] + [str(row["fps"].get(n, "fail")) for n in names] + [
            str(row.get("slow_consumer_wait_fps", "-")), str(row.get("slow_consumer_cpu_fps", "-")),
            str(row["peak_rss_short_mb"]), str(row["peak_rss_long_mb"]),
            str(row["peak_long_minus_short_mb"]),
            f"{min(ident):.3f}" if ident else "-", str(max(diffs)) if diffs else "-"])
    widths = [max(len(r[i]) for r in [head] + rows if i < len(r)) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print("frames per video (PyAV reference):",
          ", ".join(f"{n}={result['videos'][n]['frames_ref']}" for n in names))
    for cand, row in result["candidates"].items():
        for where, what in row.get("problems", {}).items():
            print(f"  {cand} / {where}: {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--videos", type=Path, nargs="*", default=None,
                        help="videos for (a) and (c); default: the shared videos present")
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES),
                        choices=CANDIDATES + OPTIONAL)
    parser.add_argument("--threads", type=int, default=1,
                        help="decoder threads (1: as in extraction's DataLoader workers; 0: auto)")
    parser.add_argument("--chunk", type=int, default=128, help="frames per chunk")
    parser.add_argument("--repeats", type=int, default=1, help="(a) best of this many runs")
    parser.add_argument("--consumer-ms", type=float, default=200.0,
                        help="(b) consumer time per chunk (slower than every decoder at 320x240; "
                             "C3D on a 2-core CPU takes ~4 s per 128 frames)")
    parser.add_argument("--exact-frames", type=int, default=300,
                        help="(c) frames compared per video (0: all; the rest are counted)")
    parser.add_argument("--short-minutes", type=float, default=1.0)
    parser.add_argument("--long-minutes", type=float, default=10.0)
    parser.add_argument("--decord2-path", type=Path, default=DECORD2_PATH,
                        help="folder holding decord2 (pip install --no-deps --target FOLDER decord2)")
    parser.add_argument("--decord-path", type=Path, default=None,
                        help="folder holding decord 0.6.0 when the environment has none")
    parser.add_argument("--quick", action="store_true",
                        help="tiny synthetic videos only, one repeat (checks the bench runs)")
    args = parser.parse_args()
    if args.worker:
        print(RESULT + json.dumps(worker(json.loads(args.worker))), flush=True)
        return
    if args.quick:
        args.repeats, args.short_minutes, args.long_minutes = 1, 0.05, 0.25
        args.consumer_ms = min(args.consumer_ms, 10.0)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        synth = make_videos(Path(tmp), args.quick, args.short_minutes, args.long_minutes)
        if args.videos is not None:
            videos = list(args.videos)
        elif args.quick:
            videos = []
        else:
            videos = [SHARED / "videos" / n for n in SHARED_VIDEOS if (SHARED / "videos" / n).is_file()]
        videos = [str(v) for v in videos] + [str(synth["short"])]
        names = [Path(v).name for v in videos]
        base = {"chunk": args.chunk, "threads": args.threads, "consumer_ms": args.consumer_ms,
                "exact_frames": args.exact_frames}
        folders = {"decord2": args.decord2_path, "decord": args.decord_path}
        counts = reference_counts(videos)
        phases = {"prepare": time.perf_counter() - start}
        lengths = [str(synth["short"]), str(synth["long"])]
        rate_runs: dict[str, list[dict]] = {c: [] for c in args.candidates}
        exact, rss = {}, {}
        if args.quick:  # one process per candidate (imports of torch dominate tiny runs)
            for cand in args.candidates:
                run = run_worker({**base, "candidate": cand, "tasks": [
                    ["rate", videos], ["exact", videos], ["rss", lengths]]}, folders)
                rate_runs[cand], exact[cand], rss[cand] = [run], run, {"short": run, "long": run}
        else:
            for repeat in range(args.repeats):  # interleaved: load changes hit every candidate alike
                for cand in args.candidates:  # (c) after (a) in the first repeat's process
                    tasks = [["rate", videos]] + ([["exact", videos]] if repeat == 0 else [])
                    run = run_worker({**base, "candidate": cand, "tasks": tasks}, folders)
                    rate_runs[cand].append(run)
                    exact.setdefault(cand, run)
            phases["rate_and_exact"] = time.perf_counter() - start - sum(phases.values())
            for cand in args.candidates:  # a process per video length: its own peak
                rss[cand] = {key: run_worker({**base, "candidate": cand, "tasks": [["rss", [path]]]},
                                             folders)
                             for key, path in zip(("short", "long"), lengths)}
            phases["slow_consumer"] = time.perf_counter() - start - sum(phases.values())
    candidates = {c: summarise(rate_runs[c], exact[c], rss[c], synth, counts)
                  for c in args.candidates}
    result = {
        "bench": "decoders", "threads": args.threads, "chunk_frames": args.chunk,
        "repeats": args.repeats, "consumer_ms_per_chunk": args.consumer_ms,
        "short_minutes": args.short_minutes, "long_minutes": args.long_minutes,
        "synthetic_size": "160x120" if args.quick else "320x240",
        "rss_process_per_length": not args.quick,
        "videos": {n: {"frames_ref": counts[n]} for n in names},
        "candidates": candidates,
        "exact_frames_per_video": args.exact_frames,
        "seconds": round(time.perf_counter() - start, 1),
        "seconds_per_phase": {k: round(v, 1) for k, v in phases.items()},
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "note": "shared 2-core CPU: absolute rates are noisy; candidates of one run are interleaved; "
                "cpu fps counts all the process's threads",
    }
    print_table(result, names)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
