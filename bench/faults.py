"""Fault sweep: what a careless user, a full disk and kill -9 do to extract, train and score.

    .venv/bin/python bench/faults.py [--work DIR] [--kills 2] [--seed 0]

Runs every case end to end through the `claws` command in subprocesses, on synthetic footage with
seeded RANDOM C3D weights (fp32, the reference path), and prints one JSON line: cases tried, cases
passed, finished work lost (must be 0), cases skipped with their reason, and per case what was seen.

Cases:
- extract / train / score killed with SIGKILL at random points (seeded), then rerun: the results
  equal an uninterrupted reference run, and nothing finished before the kill is lost (a video in a
  finished shard or work file, a step-N checkpoint, a scored video).
- bad inputs among good ones: a truncated MP4, an empty file, a text file named .mp4, a video whose
  name starts with a dot, a non-UTF-8 file name: every input ends as done or failed, exit code 1.
- two extractions on one --out at once: one works, the other is refused with exit 2.
- a corrupt checkpoint: `claws score` refuses it (exit 2, the file named); `claws train --resume`
  names the step-N.pt files that could be used instead.
- a corrupt shard: scoring it fails naming the shard; never exit 0 with other curves.
- a resumed copy of a run folder writes the copy, never the original.
- a rerun of `claws score` into the same --out with another threshold: rescored or refused,
  never the old events reported as done.
- out of space (a 1 MB tmpfs; needs root and mount, else skipped with the reason): exit 2 naming
  the folder, and the rerun after space is freed finishes with the reference features.

Round 2, training and values:
- extract and train stopped by SIGINT or SIGTERM sent to their whole process group (extract at
  its first finished video, train a second after its step-20 checkpoint): exit 130/143 with one
  line and no traceback (train: saved at step S), and the rerun (train: --resume) equals the
  reference.
- a training video's features changed under a run: `train --resume` refuses with exit 2 naming
  it; `--resume-other-data` continues and the checkpoint records it.
- a .npy of 1e38 imported with the run's statistics and scored: it may fail alone at either step;
  no NaN or inf reaches a curve, an events file or index.jsonl.
- out of space while training (a tmpfs with room for one checkpoint save) and while evaluating
  (48 kB): exit 2 naming the folder; last.pt stays valid and the resume equals the reference; the
  evaluation rerun after more room finishes (tmpfs: skipped without root and mount).

Round 2, options and text:
- option values out of range on real inputs (score --threshold nan/inf, --min-duration inf/-1,
  --window -3, --merge-gap nan, --fps -5; evaluate --threshold nan; extract --batch-size -1,
  --shard-size 0, --seed 1e20; train --lr 1e30/inf): exit 2 naming the option, nothing started.
- a manifest, an intervals CSV and a --videos list saved with a UTF-8 byte-order mark: the same
  features and figures as without one.
- an annotation class that is HTML reaches summary.md escaped, never as a tag.
- an intervals CSV listing a video both as normal (-1 -1) and with an event: exit 2 naming the
  file, line and video, no report written.

Round 2, inputs:
- a stray `cover.png` beside `normal/` and `anomalous/` videos: both videos extracted, the image
  skipped with a line naming it.
- `extract footage f --out f/feats` and `score D --out D --review`, each run twice: the rerun reads
  none of its own outputs as footage (same videos, same features).
- MPEG-TS and 3GP videos, a dangling .mp4 link and a text file: the videos in the shards, the link
  in failures.jsonl naming its target, the text file skipped with a line; exit 1.
- a 250-character file name through extract and score (raw footage): exit 0, the full id kept.
- a video with a display matrix of 90 degrees and its upright twin: the same features, the turn
  recorded in the shard.
- a folder with failing videos extracted three times: failures.jsonl lists each once every time.

Timings are not measured: the machine is shared; this bench counts behaviours.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLAWS = [sys.executable, "-m", "claws.pipeline.cli"]
EXTRACT = ["--weights", "random", "--seed", "0", "--precision", "fp32", "--workers", "1",
           "--batch-size", "4", "--shard-size", "3", "--no-progress"]
TRAIN = ["--preset", "claws", "--iterations", "120", "--window", "8", "--lr", "1e-4",
         "--checkpoint-every", "20", "--log-every", "20", "--seed", "0"]


def claws(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run `claws ARGS` to the end; stdout and stderr captured as text."""
    return subprocess.run([*CLAWS, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, errors="backslashreplace")


def killed_at(args: list, delay: float) -> subprocess.CompletedProcess | None:
    """Start `claws ARGS`, SIGKILL its whole process group after `delay` s (None if it finished)."""
    proc = subprocess.Popen([*CLAWS, *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=delay)
        return subprocess.CompletedProcess(proc.args, proc.returncode)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


def shard_features(out: Path) -> dict[str, np.ndarray]:
    from claws.data.shards import ShardSet, list_shards

    if not list_shards(out):
        return {}
    shards = ShardSet(out)
    return {v: shards.features(v, raw=True) for v in shards.video_ids}


def work_videos(out: Path) -> set[str]:
    """Video ids with a finished work file (extraction in progress)."""
    return {p.stem for p in (out / ".work").glob("*.npz")} if (out / ".work").is_dir() else set()


# C3D batches clips of several videos together, and oneDNN's result for a clip moves in the last
# float bits with the batch's size: a resumed extraction, whose batches hold other neighbours,
# equals the uninterrupted one to float rounding, not bit for bit (measured: raw fc6 differences
# up to 1.5e-4 on values of scale 30, relative 5e-6). Train and score are compared bit for bit.
FEATURE_RTOL = 1e-5


def feature_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """Largest |a - b| over the common videos, relative to the largest |a| (inf: other videos)."""
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        return float("inf")
    scale = max(float(np.abs(v).max()) for v in a.values()) or 1.0
    return max(float(np.abs(a[k] - b[k]).max()) for k in a) / scale


def same_features(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return feature_difference(a, b) <= FEATURE_RTOL


def file_hashes(folder: Path, pattern: str) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob(pattern))}


def model_state(checkpoint: Path) -> dict:
    import torch

    return torch.load(checkpoint, map_location="cpu", weights_only=True)["model_state"]


def same_state(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def flip_bytes(path: Path, count: int, seed: int, start_fraction: float = 0.3) -> None:
    """Invert `count` bytes in the middle part of a file (seeded positions)."""
    data = bytearray(path.read_bytes())
    rng = random.Random(seed)
    lo = int(len(data) * start_fraction)
    for pos in rng.sample(range(lo, len(data) - 16), count):
        data[pos] ^= 0xFF
    path.write_bytes(bytes(data))


class Sweep:
    """The cases and their bookkeeping."""

    def __init__(self, work: Path, kills: int, seed: int) -> None:
        self.work, self.kills, self.rng = work, kills, random.Random(seed)
        self.results: list[dict] = []
        self.skipped: dict[str, str] = {}

    def record(self, name: str, passed: bool, lost: int = 0, **seen) -> None:
        self.results.append({"case": name, "passed": bool(passed), "lost": int(lost), **seen})
        print(f"{'PASS' if passed else 'FAIL'} {name} lost={lost} {seen}", file=sys.stderr, flush=True)

    # --- reference runs -------------------------------------------------------------------
    def references(self) -> None:
        from claws.pipeline.commands.demo import write_dataset

        self.data = self.work / "data"
        self.manifest, self.intervals, _ = write_dataset(self.data, 4, 2, seed=0, base_frames=20)
        self.ref_shards = self.work / "ref_shards"
        t0 = time.monotonic()
        run = claws("extract", "footage", self.manifest, "--out", self.ref_shards, *EXTRACT)
        self.extract_s = time.monotonic() - t0
        assert run.returncode == 0, run.stderr[-2000:]
        self.ref_features = shard_features(self.ref_shards)
        t0 = time.monotonic()
        run = claws("train", "--shards", self.ref_shards, "--runs-dir", self.work / "runs", "--name",
                    "ref", *TRAIN)
        self.train_s = time.monotonic() - t0
        assert run.returncode == 0, run.stderr[-2000:]
        self.ref_run = self.work / "runs" / "ref"
        self.ref_state = model_state(self.ref_run / "checkpoints" / "last.pt")
        self.ref_scores = self.work / "ref_scores"
        t0 = time.monotonic()
        run = claws("score", "--run", self.ref_run, "--shards", self.ref_shards, "--out",
                    self.ref_scores, "--no-progress")
        self.score_s = time.monotonic() - t0
        assert run.returncode == 0, run.stderr[-2000:]
        self.ref_curves = {p.stem: np.load(p) for p in self.ref_scores.glob("*.npy")}

    def delay(self, total: float) -> float:
        """A random kill time inside a command's run (torch's start-up takes the first seconds)."""
        return self.rng.uniform(0.3, 0.95) * total

    # --- kill -9 and resume -----------------------------------------------------------------
    def extract_kill(self, trial: int) -> None:
        out = self.work / f"extract_kill_{trial}"
        argv = ["extract", "footage", self.manifest, "--out", out, *EXTRACT]
        finished = killed_at(argv, self.delay(self.extract_s))
        before = shard_features(out) if out.exists() else {}
        in_work = work_videos(out) if out.exists() else set()
        run = claws(*argv)
        after = shard_features(out)
        lost = sum(1 for v, f in before.items() if v not in after or not np.array_equal(f, after[v]))
        lost += sum(1 for v in in_work if v not in after)
        self.record(f"extract_kill_{trial}", run.returncode == 0 and same_features(after, self.ref_features),
                    lost, killed=finished is None, done_at_kill=len(before) + len(in_work),
                    relative_difference=feature_difference(self.ref_features, after))

    def train_kill(self, trial: int) -> None:
        runs = self.work / f"train_kill_{trial}"
        argv = ["train", "--shards", self.ref_shards, "--runs-dir", runs, "--name", "r", *TRAIN]
        finished = killed_at(argv, self.delay(self.train_s))
        ckpts = runs / "r" / "checkpoints"
        steps = sorted(ckpts.glob("step-*.pt")) if ckpts.is_dir() else []
        before = {p.name: model_state(p) for p in steps}
        resume = ["--resume"] if (ckpts / "last.pt").exists() else []
        run = claws(*argv, *resume)
        # lost: a step checkpoint of the killed run that is gone or holds other weights now
        lost = sum(1 for name, state in before.items()
                   if not (ckpts / name).exists() or not same_state(model_state(ckpts / name), state))
        ok = run.returncode == 0 and same_state(model_state(ckpts / "last.pt"), self.ref_state)
        self.record(f"train_kill_{trial}", ok, lost, killed=finished is None,
                    checkpoints_at_kill=len(before))

    def score_kill(self, trial: int) -> None:
        out = self.work / f"score_kill_{trial}"
        argv = ["score", "--run", self.ref_run, "--shards", self.ref_shards, "--out", out, "--no-progress"]
        finished = killed_at(argv, self.delay(self.score_s))
        before = file_hashes(out, "*.npy") if out.is_dir() else {}
        run = claws(*argv)
        after = file_hashes(out, "*.npy")
        lost = sum(1 for name, h in before.items() if after.get(name) != h)
        curves = {p.stem: np.load(p) for p in out.glob("*.npy")}
        ok = run.returncode == 0 and curves.keys() == self.ref_curves.keys() and all(
            np.array_equal(curves[k], self.ref_curves[k]) for k in curves)
        self.record(f"score_kill_{trial}", ok, lost, killed=finished is None, scored_at_kill=len(before))

    # --- bad inputs ---------------------------------------------------------------------------
    def bad_inputs(self) -> None:
        folder = self.work / "bad_inputs"
        folder.mkdir()
        good = sorted((self.data / "videos").glob("*.mp4"))[:2]
        for p in good:
            shutil.copy(p, folder / p.name)
        shutil.copy(good[0], folder / ".hidden_start.mp4")
        shutil.copy(good[1], folder / os.fsdecode(b"caf\xe9_latin1.mp4"))
        (folder / "cut.mp4").write_bytes(good[0].read_bytes()[: good[0].stat().st_size // 3])
        (folder / "empty.mp4").write_bytes(b"")
        (folder / "notes.mp4").write_text("not a video\n")
        inputs = 7
        out = self.work / "bad_inputs_out"
        run = claws("extract", "footage", folder, "--out", out, "--split", "train", *EXTRACT)
        done = set(shard_features(out)) if out.exists() else set()
        failures = []
        if (out / "failures.jsonl").exists():
            failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()
                        if line.strip()]
        accounted = len(done) + len({f.get("video_id", f.get("source")) for f in failures})
        self.record("bad_inputs", run.returncode == 1 and accounted == inputs, 0, exit_code=run.returncode,
                    done=len(done), failed=len(failures), inputs=inputs,
                    traceback="Traceback" in run.stderr)

    # --- concurrency --------------------------------------------------------------------------
    def concurrent_extract(self) -> None:
        out = self.work / "concurrent"
        argv = [*CLAWS, "extract", "footage", str(self.manifest), "--out", str(out), *EXTRACT]
        procs = [subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        codes, errs = zip(*[(p.wait(), p.stderr.read()) for p in procs])
        refused = [e for c, e in zip(codes, errs) if c == 2]
        ok = sorted(codes) == [0, 2] and same_features(shard_features(out), self.ref_features) and \
            all(str(out.name) in e for e in refused)
        self.record("concurrent_extract", ok, 0, exit_codes=sorted(codes))

    # --- corruption ---------------------------------------------------------------------------
    def corrupt_checkpoint(self) -> None:
        runs = self.work / "corrupt_ckpt"
        shutil.copytree(self.ref_run.parent, runs)
        last = runs / "ref" / "checkpoints" / "last.pt"
        flip_bytes(last, 200, seed=1)
        score = claws("score", "--run", runs / "ref", "--shards", self.ref_shards, "--out",
                      self.work / "corrupt_ckpt_scores", "--no-progress")
        resume = claws("train", "--shards", self.ref_shards, "--runs-dir", runs, "--name", "ref",
                       *TRAIN, "--resume")
        ok = score.returncode == 2 and "last.pt" in score.stderr and resume.returncode == 2 and \
            "step-" in resume.stderr
        self.record("corrupt_checkpoint", ok, 0, score_exit=score.returncode, resume_exit=resume.returncode)

    def corrupt_shard(self) -> None:
        shards = self.work / "corrupt_shard"
        shutil.copytree(self.ref_shards, shards)
        target = sorted(shards.glob("*.h5"))[0]
        flip_bytes(target, 64, seed=2, start_fraction=0.5)
        out = self.work / "corrupt_shard_scores"
        run = claws("score", "--run", self.ref_run, "--shards", shards, "--out", out, "--no-progress")
        curves = {p.stem: np.load(p) for p in out.glob("*.npy")} if out.is_dir() else {}
        silent = run.returncode == 0 and any(not np.array_equal(c, self.ref_curves[k])
                                             for k, c in curves.items())
        ok = not silent and (run.returncode == 0 or target.name in run.stderr)
        self.record("corrupt_shard", ok, 0, exit_code=run.returncode, silent_change=silent)

    # --- run identity ---------------------------------------------------------------------------
    def resume_copied_run(self) -> None:
        runs = self.work / "copied"
        half = [a if a != "120" else "60" for a in TRAIN]
        assert claws("train", "--shards", self.ref_shards, "--runs-dir", runs, "--name", "orig",
                     *half).returncode == 0
        shutil.copytree(runs / "orig", runs / "copy")
        before = file_hashes(runs / "orig" / "checkpoints", "*.pt")
        run = claws("train", "--shards", self.ref_shards, "--runs-dir", runs, "--name", "copy",
                    *TRAIN, "--resume")
        untouched = file_hashes(runs / "orig" / "checkpoints", "*.pt") == before
        ok = run.returncode == 0 and untouched and same_state(
            model_state(runs / "copy" / "checkpoints" / "last.pt"), self.ref_state)
        self.record("resume_copied_run", ok, 0 if untouched else 1, original_untouched=untouched)

    def rescore_other_threshold(self) -> None:
        out = self.work / "rescore"
        shutil.copytree(self.ref_scores, out)
        run = claws("score", "--run", self.ref_run, "--shards", self.ref_shards, "--out", out,
                    "--threshold", "0.9", "--no-progress")
        thresholds = {json.loads(p.read_text()).get("threshold") for p in out.glob("*.events.json")}
        ok = (run.returncode == 2) or (run.returncode == 0 and thresholds == {0.9})
        self.record("rescore_other_threshold", ok, 0, exit_code=run.returncode,
                    thresholds=sorted(map(str, thresholds)))

    # --- out of space ---------------------------------------------------------------------------
    def out_of_space(self) -> None:
        mount = self.work / "tiny_disk"
        mount.mkdir()
        made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                              capture_output=True, text=True)
        if made.returncode != 0:
            self.skipped["out_of_space"] = f"cannot mount a tmpfs: {made.stderr.strip() or made.returncode}"
            return
        try:
            out = mount / "shards"
            full = claws("extract", "footage", self.manifest, "--out", out, *EXTRACT)
            clean = full.returncode == 2 and "Traceback" not in full.stderr and str(mount) in full.stderr
            subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
            rerun = claws("extract", "footage", self.manifest, "--out", out, *EXTRACT)
            ok = clean and rerun.returncode == 0 and same_features(shard_features(out), self.ref_features)
            self.record("out_of_space", ok, 0, full_exit=full.returncode, rerun_exit=rerun.returncode,
                        message=full.stderr.strip().splitlines()[-1][:200] if full.stderr.strip() else "")
        finally:
            subprocess.run(["umount", str(mount)], capture_output=True)

    # --- round 2: training and values ---------------------------------------------------------
    def signalled(self, name: str, args: list, ready, signum: int) -> tuple[subprocess.CompletedProcess, bool]:
        """Start `claws ARGS` in a session of its own; once `ready()` holds, send `signum` to its
        whole process group (as a terminal's Ctrl-C does: workers too) and let it end.

        Returns:
            (the run with its stderr, whether the signal was sent before the command finished).
        """
        log = self.work / f"{name}.stderr"
        with log.open("w") as err:
            # SIGINT as a foreground command has it: a bench started in the background (`&`)
            # passes it on ignored, and claws keeps an ignored SIGINT ignored
            proc = subprocess.Popen([*CLAWS, *map(str, args)], stdout=subprocess.DEVNULL, stderr=err,
                                    start_new_session=True,
                                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
            sent = False
            while proc.poll() is None:
                if ready():
                    os.killpg(proc.pid, signum)
                    sent = True
                    break
                time.sleep(0.05)
            proc.wait(timeout=900)
        text = log.read_text(errors="backslashreplace")
        return subprocess.CompletedProcess(proc.args, proc.returncode, "", text), sent

    @staticmethod
    def one_line(run: subprocess.CompletedProcess, signum: int, start: str) -> bool:
        """The interrupted command's exit code is 128 + signum and it said one line, no traceback."""
        lines = run.stderr.strip().splitlines()
        return run.returncode == 128 + signum and bool(lines) and lines[-1].startswith(start) \
            and "Traceback" not in run.stderr

    def interrupted_extract(self, signum: int) -> None:
        name = f"extract_{signal.Signals(signum).name.lower()}"
        out = self.work / name
        argv = ["extract", "footage", self.manifest, "--out", out, *EXTRACT]
        run, sent = self.signalled(name, argv, lambda: bool(work_videos(out)), signum)
        before = shard_features(out)
        in_work = work_videos(out)
        said = self.one_line(run, signum, "interrupted: ")
        rerun = claws(*argv)
        after = shard_features(out)
        lost = sum(1 for v, f in before.items() if v not in after or not np.array_equal(f, after[v]))
        lost += sum(1 for v in in_work if v not in after)
        self.record(name, sent and said and rerun.returncode == 0 and same_features(after, self.ref_features),
                    lost, exit_code=run.returncode, line=run.stderr.strip().splitlines()[-1][:160],
                    done_at_signal=len(before) + len(in_work))

    def interrupt_extract(self) -> None:
        self.interrupted_extract(signal.SIGINT)

    def terminate_extract(self) -> None:
        self.interrupted_extract(signal.SIGTERM)

    def interrupted_train(self, signum: int) -> None:
        name = f"train_{signal.Signals(signum).name.lower()}"
        runs = self.work / name
        ckpts = runs / "r" / "checkpoints"
        argv = ["train", "--shards", self.ref_shards, "--runs-dir", runs, "--name", "r", *TRAIN]
        seen: list[float] = []

        def past_step_20() -> bool:  # a second after the step-20 checkpoint: between checkpoints
            if not seen and (ckpts / "step-20.pt").exists():
                seen.append(time.monotonic())
            return bool(seen) and time.monotonic() - seen[0] > 1.0

        run, sent = self.signalled(name, argv, past_step_20, signum)
        before = {p.name: model_state(p) for p in sorted(ckpts.glob("step-*.pt"))}
        import torch

        at = int(torch.load(ckpts / "last.pt", map_location="cpu", weights_only=True)["step"])
        said = self.one_line(run, signum, f"interrupted at step {at}: checkpoint saved to ")
        resume = claws(*argv, "--resume")
        lost = sum(1 for n, state in before.items()
                   if not (ckpts / n).exists() or not same_state(model_state(ckpts / n), state))
        ok = sent and said and at >= 20 and resume.returncode == 0 and same_state(
            model_state(ckpts / "last.pt"), self.ref_state)
        self.record(name, ok, lost, exit_code=run.returncode, saved_at_step=at,
                    line=run.stderr.strip().splitlines()[-1][:160])

    def interrupt_train(self) -> None:
        self.interrupted_train(signal.SIGINT)

    def terminate_train(self) -> None:
        self.interrupted_train(signal.SIGTERM)

    def resume_other_data(self) -> None:
        """Train on shards, change one video's features, resume: refused naming it; resumed
        only with --resume-other-data (and then recorded in the checkpoint)."""
        from claws.data.shards import ShardSet, write_shard

        shards = self.work / "other_data_shards"
        shutil.copytree(self.ref_shards, shards)
        runs = self.work / "other_data"
        half = [a if a != "120" else "60" for a in TRAIN]
        first = claws("train", "--shards", shards, "--runs-dir", runs, "--name", "r", *half)
        data = ShardSet(shards)
        video = data.select(split="train")[0]
        records = [data.record(v) for v in data.video_ids if data.videos[v].shard == video.shard]
        for record in records:
            if record.video_id == video.video_id:
                record.features = record.features * np.float32(1.01)
        video.shard.unlink()
        write_shard(video.shard, records, data.stats)
        refused = claws("train", "--resume", runs / "r", "--iterations", "120")
        allowed = claws("train", "--resume", runs / "r", "--iterations", "120", "--resume-other-data")
        import torch

        meta = torch.load(runs / "r" / "checkpoints" / "last.pt", map_location="cpu",
                          weights_only=True)["feature_meta"]
        named = refused.returncode == 2 and "1 training video changed contents" in refused.stderr \
            and video.video_id in refused.stderr and "Traceback" not in refused.stderr
        ok = first.returncode == 0 and named and allowed.returncode == 0 and bool(
            meta.get("resumed_on_other_data"))
        self.record("resume_other_data", ok, 0, refused_exit=refused.returncode,
                    allowed_exit=allowed.returncode, changed=video.video_id)

    def huge_features(self) -> None:
        """A .npy of 1e38 imported beside real features (with the run's statistics), then scored:
        it may fail alone at either step, but no NaN or inf ever reaches a curve or a summary."""
        from claws.data.shards import ShardSet

        feats = self.work / "huge_feats"
        feats.mkdir()
        ref = ShardSet(self.ref_shards)
        test = [v.video_id for v in ref.select(split="test")]
        for vid in test:
            np.save(feats / f"{vid}.npy", ref.features(vid, raw=True))
        np.save(feats / "huge.npy", np.full((3, ref.feature_dim), 1e38, np.float32))
        manifest = self.work / "huge_manifest.csv"
        manifest.write_text("video,label,split\n" + "".join(f"{v},{ref.videos[v].label},test\n" for v in test)
                            + "huge,1,test\n")
        shards, scores = self.work / "huge_shards", self.work / "huge_scores"
        imported = claws("import-features", "manifest", manifest, "--features", feats, "--fps", "25",
                         "--stats-from", self.ref_run, "--out", shards, "--no-progress")
        scored = claws("score", "--run", self.ref_run, "--shards", shards, "--out", scores,
                       "--no-progress")
        written = "".join(p.read_text() for p in scores.glob("*.json*")) if scores.is_dir() else ""
        curves = [np.load(p) for p in scores.glob("*.npy")] if scores.is_dir() else []
        failed = [json.loads(line)["video_id"] for out in (shards, scores)
                  if (out / "failures.jsonl").is_file()
                  for line in (out / "failures.jsonl").read_text().splitlines() if line.strip()]
        clean = "NaN" not in written and "Infinity" not in written and all(
            np.isfinite(c).all() for c in curves)
        ok = imported.returncode in (0, 1) and scored.returncode in (0, 1) and clean and \
            set(failed) <= {"huge"} and (scored.returncode == 0 or "huge" in failed)
        self.record("huge_features", ok, 0, import_exit=imported.returncode,
                    score_exit=scored.returncode, failed=failed, no_nan_written=clean)

    def tmpfs(self, name: str, size: int) -> Path | None:
        """A tmpfs of `size` bytes at work/<name>; None (the case skipped) when mounting fails."""
        mount = self.work / name
        mount.mkdir()
        made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                              capture_output=True, text=True)
        if made.returncode != 0:
            self.skipped[name] = f"cannot mount a tmpfs: {made.stderr.strip() or made.returncode}"
            return None
        return mount

    def train_disk_full(self) -> None:
        """Room for one save (step-20.pt and last.pt) but not the next: exit 2 naming the folder,
        last.pt of step 20 intact, and the resume after more room equals the reference."""
        size = (self.ref_run / "checkpoints" / "last.pt").stat().st_size
        mount = self.tmpfs("train_disk", int(2.5 * size) + 256 * 1024)
        if mount is None:
            return
        try:
            argv = ["train", "--shards", self.ref_shards, "--runs-dir", mount, "--name", "r", *TRAIN]
            full = claws(*argv)
            last = mount / "r" / "checkpoints" / "last.pt"
            import torch

            kept = int(torch.load(last, map_location="cpu", weights_only=True)["step"]) \
                if last.is_file() else -1
            clean = full.returncode == 2 and "Traceback" not in full.stderr and \
                f"no space left in {mount / 'r' / 'checkpoints'}" in full.stderr
            subprocess.run(["mount", "-o", f"remount,size={12 * size}", str(mount)], check=True)
            resume = claws(*argv, "--resume")
            ok = clean and kept == 20 and resume.returncode == 0 and same_state(
                model_state(last), self.ref_state)
            self.record("train_disk_full", ok, 0 if kept == 20 else 1, full_exit=full.returncode,
                        last_pt_step=kept, resume_exit=resume.returncode,
                        message=full.stderr.strip().splitlines()[-1][:200])
        finally:
            subprocess.run(["umount", str(mount)], capture_output=True)

    def evaluate_disk_full(self) -> None:
        mount = self.tmpfs("evaluate_disk", 48 * 1024)
        if mount is None:
            return
        try:
            argv = ["evaluate", self.ref_scores, "--intervals", self.intervals, "--out",
                    mount / "report", "--no-progress"]
            full = claws(*argv)
            clean = full.returncode == 2 and "Traceback" not in full.stderr and \
                f"no space left in {mount / 'report'}" in full.stderr
            subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
            rerun = claws(*argv)
            self.record("evaluate_disk_full", clean and rerun.returncode == 0, 0,
                        full_exit=full.returncode, rerun_exit=rerun.returncode,
                        message=full.stderr.strip().splitlines()[-1][:200])
        finally:
            subprocess.run(["umount", str(mount)], capture_output=True)

    # --- round 2: options and text ---------------------------------------------------------
    def option_ranges(self) -> None:
        """Option values out of range on real inputs: exit 2 naming the option, nothing started."""
        scores = ["score", "--run", self.ref_run, "--shards", self.ref_shards, "--no-progress"]
        raw = ["score", next((self.data / "videos").glob("*.mp4")), "--run", self.ref_run,
               "--weights", "random", "--no-progress"]
        extract = ["extract", "footage", self.manifest, *EXTRACT]
        train = ["train", "--shards", self.ref_shards, "--runs-dir", self.work / "range_runs", *TRAIN]
        cases = [(scores, "--threshold", "nan"), (scores, "--threshold", "inf"),
                 (scores, "--min-duration", "inf"), (scores, "--min-duration", "-1"),
                 (scores, "--window", "-3"), (scores, "--merge-gap", "nan"), (raw, "--fps", "-5"),
                 (["evaluate", self.ref_scores, "--intervals", self.intervals, "--no-progress"],
                  "--threshold", "nan"),
                 (extract, "--batch-size", "-1"), (extract, "--shard-size", "0"),
                 (extract, "--seed", "99999999999999999999"), (train, "--lr", "1e30"),
                 (train, "--lr", "inf")]
        refused, started = [], []
        for n, (argv, option, value) in enumerate(cases):
            out = self.work / f"range_out_{n}"
            run = claws(*argv, option, value, *([] if argv is train else ["--out", out]))
            named = f"argument {option}: expected" in run.stderr and "Traceback" not in run.stderr
            refused.append(run.returncode == 2 and named)
            started.append(out.exists() or (self.work / "range_runs").exists())
        self.record("option_ranges", all(refused) and not any(started), 0, cases=len(cases),
                    refused=sum(refused), started=sum(started))

    def byte_order_marks(self) -> None:
        """A manifest, an intervals CSV and a --videos list saved with a BOM (Excel, Notepad) read
        as without one: the same features and the same figures."""
        bom = self.work / "bom"
        bom.mkdir()
        # beside the original: the manifest's paths are relative to its folder
        copies = {"manifest.csv": self.manifest.with_name("bom_manifest.csv"),
                  "intervals.csv": bom / "intervals.csv"}
        for name, source in (("manifest.csv", self.manifest), ("intervals.csv", self.intervals)):
            copies[name].write_bytes(b"\xef\xbb\xbf" + source.read_bytes())
        tested = sorted(line.split(",")[0] for line in self.intervals.read_text().splitlines()[1:])
        (bom / "videos.txt").write_bytes(b"\xef\xbb\xbf" + "\n".join(tested).encode())
        extract = claws("extract", "footage", copies["manifest.csv"], "--out", bom / "shards", *EXTRACT)
        figures = []
        for intervals, videos in ((self.intervals, []), (copies["intervals.csv"],
                                                          ["--videos", bom / "videos.txt"])):
            out = bom / f"report_{len(figures)}"
            run = claws("evaluate", self.ref_scores, "--intervals", intervals, *videos, "--out", out,
                        "--no-progress")
            metrics = json.loads((out / "metrics.json").read_text()) if run.returncode == 0 else {}
            figures.append((run.returncode, metrics.get("auc"), metrics.get("num_videos")))
        same = extract.returncode == 0 and same_features(shard_features(bom / "shards"),
                                                         self.ref_features)
        self.record("byte_order_marks", same and figures[0] == figures[1] and figures[0][0] == 0, 0,
                    extract_exit=extract.returncode, same_features=same, evaluate=figures)

    def html_class_names(self) -> None:
        """An annotation class that is HTML reaches summary.md as text, never as a tag."""
        rows = self.intervals.read_text().splitlines()
        evil = "<img src=x onerror=alert(1)>"
        gt = self.work / "html_intervals.csv"
        classes = [f"{r},Normal" if r.endswith(",-1,-1") else f"{r},{evil}" for r in rows[1:]]
        gt.write_text("\n".join([rows[0] + ",class", *classes]) + "\n")
        out = self.work / "html_report"
        run = claws("evaluate", self.ref_scores, "--intervals", gt, "--out", out, "--no-progress")
        summary = (out / "summary.md").read_text() if run.returncode == 0 else ""
        self.record("html_class_names", "&lt;img" in summary and "<img" not in summary, 0,
                    exit_code=run.returncode, raw_tag="<img" in summary)

    def normal_and_event(self) -> None:
        """A video listed both as normal (-1 -1) and with an event: exit 2 naming the file, line
        and video, no report written."""
        rows = self.intervals.read_text().splitlines()
        event = next(r for r in rows[1:] if not r.endswith(",-1,-1"))
        video = event.split(",")[0]
        gt = self.work / "both_intervals.csv"
        gt.write_text("\n".join([*rows, f"{video},-1,-1"]) + "\n")
        out = self.work / "both_report"
        run = claws("evaluate", self.ref_scores, "--intervals", gt, "--out", out, "--no-progress")
        named = f"{gt}:{len(rows) + 1}: video {video} is listed as normal" in run.stderr
        self.record("normal_and_event", run.returncode == 2 and named and not out.exists()
                    and "Traceback" not in run.stderr, 0, exit_code=run.returncode, named=named)

    # --- round 2: inputs ------------------------------------------------------------------------
    def footage(self, name: str, videos: dict[str, int]) -> Path:
        """A folder of synthetic videos (relative path -> frames); the container follows the
        ending, 3GP as phones write it (H.263, 176x144), a name over 100 characters written
        under a short one first (the writer's temporary name would be too long)."""
        import av

        from claws.extract.synthetic import synthetic_frames, write_video

        folder = self.work / name
        for seed, (rel, count) in enumerate(sorted(videos.items())):
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".3gp":
                with av.open(str(path), "w", format="3gp") as container:
                    stream = container.add_stream("h263", rate=15)
                    stream.width, stream.height, stream.pix_fmt = 176, 144, "yuv420p"
                    for frame in synthetic_frames(count, 144, 176, seed=seed):
                        container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
                    container.mux(stream.encode(None))
            else:
                short = write_video(path.parent / f"w{seed}{path.suffix}",
                                    synthetic_frames(count, 48, 64, seed=seed), fps=10.0)
                short.rename(path)
        return folder

    def stray_image(self) -> None:
        """`f/cover.png` beside `f/normal/n.mp4` and `f/anomalous/a.mp4`: both videos extracted,
        the image skipped with a line (it used to make `f` one 1-frame video)."""
        import torch
        from torchvision.io import write_png

        from claws.extract.synthetic import synthetic_frames

        folder = self.footage("stray", {"normal/n.mp4": 20, "anomalous/a.mp4": 24})
        write_png(torch.from_numpy(synthetic_frames(1, 48, 64)[0]).permute(2, 0, 1),
                  str(folder / "cover.png"))
        out = self.work / "stray_out"
        run = claws("extract", "footage", folder, "--out", out, "--split", "train", *EXTRACT)
        found = sorted(shard_features(out)) if out.exists() else []
        said = f"skipped {folder}: its 1 image (cover.png)" in run.stderr
        self.record("stray_image", run.returncode == 0 and found == ["a", "n"] and said, 0,
                    exit_code=run.returncode, videos=found, skipped_line=said)

    def output_in_input(self) -> None:
        """`extract footage f --out f/feats` and `score D --out D --review`, each run twice: the
        rerun reads none of its own outputs (shards, plots, previews) as footage."""
        folder = self.footage("own_out", {"cam.mp4": 20, "door.mp4": 18})
        out = folder / "feats"
        argv = ["extract", "footage", folder, "--out", out, "--split", "train", *EXTRACT]
        first = claws(*argv)
        before = shard_features(out)
        again = claws(*argv)
        after = shard_features(out)
        lost = sum(1 for v, f in before.items() if v not in after or not np.array_equal(f, after[v]))
        scores = self.footage("own_scores", {"cam.mp4": 20, "door.mp4": 18})
        score = ["score", scores, "--run", self.ref_run, "--out", scores, "--workers", "0",
                 "--no-progress", "--review"]
        runs = [claws(*score), claws(*score)]
        index = sorted(json.loads(line)["video_id"]
                       for line in (scores / "index.jsonl").read_text().splitlines())
        ok = first.returncode == again.returncode == 0 and sorted(after) == ["cam", "door"] \
            and "nothing to do" in again.stderr and [r.returncode for r in runs] == [0, 0] \
            and index == ["cam", "door"]
        self.record("output_in_input", ok, lost, extract_exits=[first.returncode, again.returncode],
                    score_exits=[r.returncode for r in runs], scored=index)

    def containers(self) -> None:
        """MPEG-TS and 3GP files, a dangling .mp4 link and a text file: the videos extracted, the
        link in failures.jsonl naming its target, the text file skipped with a line; exit 1."""
        folder = self.footage("containers", {"rec.ts": 20, "phone.3gp": 18})
        (folder / "gone.mp4").symlink_to(self.work / "deleted.mp4")
        (folder / "notes.txt").write_text("camera 3 faces north\n")
        out = self.work / "containers_out"
        run = claws("extract", "footage", folder, "--out", out, "--split", "train", *EXTRACT)
        found = sorted(shard_features(out)) if out.exists() else []
        failed = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()] \
            if (out / "failures.jsonl").exists() else []
        named = [f["video_id"] for f in failed] == ["gone"] and "deleted.mp4" in failed[0]["reason"]
        said = f"skipped {folder / 'notes.txt'}: not a video" in run.stderr
        self.record("containers", run.returncode == 1 and found == ["phone", "rec"] and named and said,
                    0, exit_code=run.returncode, videos=found, failed=[f["video_id"] for f in failed],
                    skipped_line=said)

    def long_name(self) -> None:
        """A 250-character file name beside a short one, through extract and score (raw footage):
        both exit 0 and keep the full id (both used to stop with [Errno 36], exit 2)."""
        long_id = "night_camera_" + "x" * 237
        folder = self.footage("long_name", {f"{long_id}.mp4": 20, "cam.mp4": 18})
        out = self.work / "long_name_out"
        run = claws("extract", "footage", folder, "--out", out, "--split", "train", *EXTRACT)
        found = sorted(shard_features(out)) if out.exists() else []
        scores = self.work / "long_name_scores"
        score = claws("score", folder, "--run", self.ref_run, "--out", scores, "--workers", "0",
                      "--no-progress")
        index = sorted(json.loads(line)["video_id"]
                       for line in (scores / "index.jsonl").read_text().splitlines()) \
            if (scores / "index.jsonl").exists() else []
        longest = max((len(p.name.encode()) for p in scores.rglob("*")), default=0)
        ok = run.returncode == 0 and found == ["cam", long_id] and score.returncode == 0 \
            and index == ["cam", long_id]
        self.record("long_name", ok, 0, extract_exit=run.returncode, score_exit=score.returncode,
                    longest_output_name=longest)

    def rotated(self) -> None:
        """A phone video stored sideways with a display matrix of 90 degrees and the same picture
        stored upright: the same features, and the shard records the turn."""
        import av

        from claws.data.shards import ShardSet
        from claws.extract.synthetic import synthetic_frames, write_video

        folder = self.work / "rotated"
        folder.mkdir()
        shown = synthetic_frames(20, 64, 48, seed=7)  # upright: 64 high, 48 wide
        write_video(folder / "upright.mp4", shown, fps=10.0)
        with av.open(str(folder / "phone.mp4"), "w") as container:
            stream = container.add_stream("libx264rgb", rate=10, options={"crf": "0"})
            stream.height, stream.width, stream.pix_fmt = 48, 64, "rgb24"
            stream.set_display_rotation(90)
            for frame in np.rot90(shown, -1, axes=(1, 2)):  # what the phone stored
                container.mux(stream.encode(av.VideoFrame.from_ndarray(
                    np.ascontiguousarray(frame), format="rgb24")))
            container.mux(stream.encode(None))
        out = self.work / "rotated_out"
        run = claws("extract", "footage", folder, "--out", out, "--split", "train", *EXTRACT)
        features = shard_features(out) if out.exists() else {}
        info = ShardSet(out).videos if features else {}
        difference = feature_difference({"v": features["phone"]}, {"v": features["upright"]}) \
            if len(features) == 2 else float("inf")
        turned = [getattr(info.get(v), "rotation", None) for v in ("phone", "upright")]
        ok = run.returncode == 0 and difference <= FEATURE_RTOL and turned == [90, 0]
        self.record("rotated", ok, 0, exit_code=run.returncode, rotation=turned,
                    relative_difference=difference)

    def failures_rerun(self) -> None:
        """A folder with a good video, a text file named .mp4 and a dangling link, extracted three
        times: failures.jsonl lists the two failed videos once each, every time."""
        folder = self.footage("rerun", {"cam.mp4": 20})
        (folder / "broken.mp4").write_text("not a video\n")
        (folder / "gone.mp4").symlink_to(self.work / "nowhere.mp4")
        out = self.work / "rerun_out"
        lines, codes = [], []
        for _ in range(3):
            codes.append(claws("extract", "footage", folder, "--out", out, "--split", "train",
                               *EXTRACT).returncode)
            lines.append(sorted(json.loads(line)["video_id"]
                                for line in (out / "failures.jsonl").read_text().splitlines()))
        ok = codes == [1, 1, 1] and lines == [["broken", "gone"]] * 3
        self.record("failures_rerun", ok, 0, exit_codes=codes, lines_per_run=[len(x) for x in lines])

    def run(self) -> dict:
        self.references()
        for trial in range(self.kills):
            self.extract_kill(trial)
            self.train_kill(trial)
            self.score_kill(trial)
        for case in (self.bad_inputs, self.concurrent_extract, self.corrupt_checkpoint,
                     self.corrupt_shard, self.resume_copied_run, self.rescore_other_threshold,
                     self.out_of_space,
                     # round 2: training and values
                     self.interrupt_extract, self.terminate_extract, self.interrupt_train,
                     self.terminate_train, self.resume_other_data, self.huge_features,
                     self.train_disk_full, self.evaluate_disk_full,
                     # round 2: options and text
                     self.option_ranges, self.byte_order_marks, self.html_class_names,
                     self.normal_and_event,
                     # round 2: inputs
                     self.stray_image, self.output_in_input, self.containers, self.long_name,
                     self.rotated, self.failures_rerun):
            try:
                case()
            except Exception as err:  # a crash of the bench itself counts as a failed case
                self.record(case.__name__, False, 0, bench_error=repr(err)[:300])
        return {
            "bench": "faults", "cases_tried": len(self.results),
            "cases_passed": sum(r["passed"] for r in self.results),
            "finished_work_lost": sum(r["lost"] for r in self.results),
            "skipped": self.skipped, "cases": self.results,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--kills", type=int, default=2, help="kill -9 trials per command")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill times")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="claws-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    print(json.dumps(Sweep(work, args.kills, args.seed).run()))


if __name__ == "__main__":
    main()
