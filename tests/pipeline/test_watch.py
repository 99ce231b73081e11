"""`claws watch` on loopback streams (claws.pipeline.watching.job, .source, .stretch): a stretch's
final live curve equals `claws score` of its recording; a drop gives one gap and two stretches;
SIGTERM stops cleanly; a source that never opens fails alone; MIL is refused.

The streams come from tests/pipeline/stream_server.py (PyAV, MPEG-TS over TCP on 127.0.0.1) in a
process of its own. C3D has random weights in fp32 (the reference path on every CPU); the
checkpoint is a small CLAWS Net with b = 2, so windows close every second clip. The live curve
matches offline to LIVE_ATOL (not bit for bit): C3D on the CPU rounds a clip's features differently
with the number of clips in its network call.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from claws.data.shards import NormStats
from claws.extract.synthetic import synthetic_frames, write_video
from claws.model.claws import ClawsNet
from claws.model.mil import MilNet
from claws.pipeline.cli import main
from claws.pipeline.training.checkpoint import save_checkpoint
from claws.pipeline.watching import source
from claws.pipeline.watching import stretch as live_stretch
from claws.pipeline.watching.job import next_stretch, stream_names

DIM = 2048
C3D = ["--weights", "random", "--precision", "fp32"]  # the same C3D live and offline, any CPU
RANDOM_C3D = {"random": True, "seed": 0, "weights_sha256": "", "feature_dim": DIM}
SERVER = Path(__file__).with_name("stream_server.py")
WINDOW = 2
# live and offline C3D differ in the last bits of each feature (2e-6 of its size: the clips in a
# network call differ), which the small random model turns into up to 1.2e-5 on a score
LIVE_ATOL = 5e-5


def _save(run: Path, model: torch.nn.Module, name: str, args: dict) -> Path:
    rng = np.random.default_rng(0)
    stats = NormStats(rng.random(DIM) * 0.1, 0.5 + rng.random(DIM), 2, 20, "train")
    save_checkpoint(run / "checkpoints" / "last.pt", model=model, model_name=name, model_args=args,
                    config={"window": WINDOW}, norm_stats=stats,
                    feature_meta={"feature_dim": DIM, "clip_len": 16, "extractor": RANDOM_C3D},
                    step=1, seed=0, version="test")
    return run


@pytest.fixture
def live_run(tmp_path: Path) -> Path:
    """A small CLAWS Net over random-weights C3D features (seed 0), b = 2."""
    torch.manual_seed(0)
    args = {"feature_dim": DIM, "hidden1": 8, "hidden2": 4}
    return _save(tmp_path / "run", ClawsNet(**args), "claws", args)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, *args: str) -> subprocess.Popen:
    """The stream server, once it is about to listen (`claws watch` retries until it does:
    the tests give --reconnect 3)."""
    server = subprocess.Popen([sys.executable, str(SERVER), str(port), *args],
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline().startswith("ready 1")
    return server


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def watch_args(run: Path, out: Path, port: int, *extra: str) -> list[str]:
    return ["watch", f"tcp://127.0.0.1:{port}", "--run", str(run), "--out", str(out),
            "--name", "cam", *C3D, "--timeout", "5", *extra]


def waiting(args: list[str]) -> list[str]:
    """The test servers send as fast as they are read, and C3D in fp32 here is slower than real
    time: --no-drop waits for the scoring instead of dropping clips (tested on its own)."""
    return [*args, "--no-drop"]


@pytest.mark.slow
def test_a_drop_gives_two_stretches_whose_final_curves_equal_offline_scoring(
        live_run, tmp_path, capsys):
    port = free_port()
    server = start_server(port, "--frames", "40", "--times", "2")  # 3 clips, then 3 more
    out = tmp_path / "live"
    try:
        code = main(waiting(watch_args(live_run, out, port, "--record", "--reconnect", "3",
                                       "--threshold", "0", "--min-duration", "0")))
    finally:
        server.kill()
    assert code == 0
    cam = out / "cam"
    records = lines(cam / "stream.jsonl")
    gaps = [r for r in records if r["record"] == "stream lost"]
    assert len(gaps) == 1 and gaps[0]["after_stretch"] == 1 and gaps[0]["to"] >= gaps[0]["from"]
    ended = [r for r in records if r["record"] == "stretch ended"]
    assert [(r["stretch"], r["clips"], r["frames"], r["status"]) for r in ended] == [
        (1, 3, 40, "interrupted"), (2, 3, 40, "interrupted")]
    clips = lines(cam / "clips.jsonl")
    for number in (1, 2):
        live = np.load(cam / f"stretch-{number}.npy")
        assert main(["score", str(cam / f"stretch-{number}.ts"), "--run", str(live_run),
                     *C3D, "--workers", "0", "--out", str(tmp_path / "offline"),
                     "--no-progress"]) == 0
        offline = np.load(tmp_path / "offline" / f"stretch-{number}.npy")
        assert live.shape == offline.shape == (40,)
        # C3D's float sums depend on how many clips share a network call (live: as they
        # arrive; offline: the video's clips together), as test_curves allows between raw footage
        # and its shard; the model's windows are the same computation (1 window or W at once)
        np.testing.assert_allclose(live, offline, rtol=0, atol=LIVE_ATOL)
        # the final lines of clips.jsonl are the same curve, clip by clip
        final = [c for c in clips if c["stretch"] == number and c["final"]]
        assert [c["clip"] for c in final] == [0, 1, 2]
        assert np.array_equal(np.float32([c["score"] for c in final]), live[::16])
        # clip 0 was provisional first: scored with a window of itself (1 clip padded to b)
        first = [c for c in clips if c["stretch"] == number and c["clip"] == 0]
        assert [c["final"] for c in first] == [False, True]
    # threshold 0: every stretch is one event, opened at once and closed by the drop
    events = lines(cam / "events.jsonl")
    assert [(e["stretch"], e["status"]) for e in events if e["status"] != "changed"] == [
        (1, "opened"), (1, "interrupted"), (2, "opened"), (2, "interrupted")]
    assert events[-1]["end_frame"] == 40
    printed = capsys.readouterr().out
    assert printed.count("cam stretch 2 event 1 interrupted") == 1
    assert next_stretch(cam) == 3  # a restart would append stretch 3


@pytest.mark.slow
def test_two_streams_in_one_process_keep_their_clips_apart(live_run, tmp_path):
    """Clips of both streams share the network's calls; each stream's curve is still its own
    recording's offline curve."""
    ports = [free_port(), free_port()]
    servers = [start_server(port, "--frames", "32", "--seed", str(seed))
               for port, seed in zip(ports, (0, 7))]
    out = tmp_path / "live"
    try:
        code = main(["watch", *(f"tcp://127.0.0.1:{p}" for p in ports), "--run", str(live_run),
                     "--out", str(out), "--name", "north", "--name", "south", *C3D,
                     "--timeout", "5", "--record", "--reconnect", "3", "--no-drop"])
    finally:
        for server in servers:
            server.kill()
    assert code == 0
    curves = {}
    for name in ("north", "south"):
        assert main(["score", str(out / name / "stretch-1.ts"), "--run", str(live_run),
                     *C3D, "--workers", "0", "--out", str(tmp_path / name),
                     "--no-progress"]) == 0
        curves[name] = np.load(out / name / "stretch-1.npy")
        np.testing.assert_allclose(curves[name], np.load(tmp_path / name / "stretch-1.npy"),
                                   rtol=0, atol=LIVE_ATOL)
    assert np.abs(curves["north"] - curves["south"]).max() > 1e-3  # two scenes, two curves


@pytest.mark.slow
def test_sigterm_stops_open_events_and_exits_0(live_run, tmp_path):
    port = free_port()
    server = start_server(port, "--forever")
    out = tmp_path / "live"
    watch = subprocess.Popen([sys.executable, "-m", "claws.pipeline.cli",
                              *waiting(watch_args(live_run, out, port, "--threshold", "0",
                                                  "--min-duration", "0", "--reconnect", "3"))],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        events = out / "cam" / "events.jsonl"
        deadline = time.monotonic() + 300  # a guard against a hang, not a timing assertion
        while not (events.is_file() and events.read_text()) and watch.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        watch.send_signal(signal.SIGTERM)
        stdout, stderr = watch.communicate(timeout=300)
    finally:
        watch.kill()
        server.kill()
    assert watch.returncode == 0, stderr
    last = lines(events)[-1]
    assert last["status"] == "stopped" and last["event"] == 1
    assert "event 1 stopped" in stdout
    ended = [r for r in lines(out / "cam" / "stream.jsonl") if r["record"] == "stretch ended"]
    assert [(r["stretch"], r["status"]) for r in ended] == [(1, "stopped")]
    assert len(np.load(out / "cam" / "stretch-1.npy")) == ended[0]["frames"]


@pytest.mark.slow
def test_a_source_that_never_opens_fails_alone(live_run, tmp_path, caplog):
    video = write_video(tmp_path / "door.mp4", synthetic_frames(16, seed=1), fps=25.0)
    out = tmp_path / "live"
    code = main(["watch", "tcp://127.0.0.1:1", str(video), "--run", str(live_run), "--out",
                 str(out), *C3D, "--reconnect", "0"])
    assert code == 1
    failed = lines(out / "127.0.0.1_1" / "stream.jsonl")
    assert failed[-1]["record"] == "failed" and "refused" in failed[-1]["error"].lower()
    assert "127.0.0.1_1" in caplog.text and "tcp://127.0.0.1:1" in caplog.text
    door = lines(out / "door" / "stream.jsonl")
    assert [r["record"] for r in door] == ["opened", "stretch ended", "finished"]
    assert door[1]["status"] == "confirmed"
    assert main(["score", str(video), "--run", str(live_run), *C3D, "--workers",
                 "0", "--out", str(tmp_path / "offline"), "--no-progress"]) == 0
    np.testing.assert_allclose(np.load(out / "door" / "stretch-1.npy"),
                               np.load(tmp_path / "offline" / "door.npy"), rtol=0, atol=LIVE_ATOL)


def test_mil_is_refused_with_the_reason(tmp_path, caplog):
    args = {"feature_dim": DIM}
    run = _save(tmp_path / "mil", MilNet(**args), "mil", args)
    code = main(["watch", "tcp://127.0.0.1:1", "--run", str(run), "--out", str(tmp_path / "o"),
                 *C3D])
    assert code == 2
    assert "MIL scores the 32 segments of a whole video" in caplog.text
    assert not (tmp_path / "o").exists()


def test_files_are_read_once_network_sources_reopened():
    assert source.is_file("/data/door.mp4") and source.is_file("file:door.mp4")
    assert not any(source.is_file(u) for u in ("tcp://h:1", "rtsp://cam/live", "udp://@:5000",
                                                "/dev/video0"))


def test_rtsp_runs_over_tcp_and_a_capture_device_is_opened_as_v4l2(monkeypatch):
    import av

    opened = []

    def fake_open(url, format=None, options=None):
        opened.append((url, format, options))
        raise av.FFmpegError(2, "stop here")

    monkeypatch.setattr(av, "open", fake_open)
    for url in ("rtsp://10.0.0.5/live", "/dev/video0", "/data/door.mp4"):
        with pytest.raises(av.FFmpegError):
            source.open_source(url, 10.0)
    assert opened == [
        ("rtsp://10.0.0.5/live", None, {"rw_timeout": "10000000", "rtsp_transport": "tcp",
                                        "timeout": "10000000"}),
        ("/dev/video0", "v4l2", {"rw_timeout": "10000000"}),
        ("/data/door.mp4", None, {}),
    ]


def test_stream_names():
    assert stream_names(["tcp://10.0.0.5:554/live/main", "/data/door.mp4", "/x/door.mkv"], None) \
        == ["10.0.0.5_554_live_main", "door", "door-2"]
    with pytest.raises(ValueError, match="one distinct name per source"):
        stream_names(["a.mp4", "b.mp4"], ["cam"])
    for bad in ("../elsewhere", "", ".."):
        with pytest.raises(ValueError, match="is not a folder name"):
            stream_names(["a.mp4"], [bad])


def test_provisional_scores_are_offline_scores_of_the_stretch_so_far(live_run):
    """After each clip, the open window's scores are what claws score gives the clips so far
    (the same function and windows: equal to the bit); closed windows never change again."""
    from claws.pipeline.scoring.curve import score_features
    from claws.pipeline.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(live_run)
    raw = np.random.default_rng(1).random((7, DIM)).astype(np.float32)
    normalized = ckpt.norm_stats.normalize(raw)
    write = _Lines()
    stretch = live_stretch.Stretch("cam", 1, 25.0, ckpt, WINDOW, write, (0.5, 0.0, 0.0))
    kept: list[float] = []
    for n in range(1, 8):
        stretch.add(raw[n - 1], 16, 0.0, 0.0)
        offline, _ = score_features(ckpt, normalized[:n], 16 * n, WINDOW)
        assert np.array_equal(np.float32(stretch.scores), offline)
        assert stretch.final == n // WINDOW * WINDOW
        assert np.float32(stretch.scores[: len(kept)]).tolist() == kept
        kept = np.float32(stretch.scores[: stretch.final]).tolist()
    curve = stretch.end(0.0, "confirmed")
    assert np.array_equal(curve, score_features(ckpt, normalized, 16 * 7, WINDOW)[1])
    finals = [r["clip"] for name, r in write.rows if name == "clips.jsonl" and r["final"]]
    assert finals == list(range(7))  # each clip's final line written once


def test_one_job_per_out(live_run, tmp_path, caplog):
    from claws.pipeline.lock import folder_lock

    with folder_lock(tmp_path / "live", "another claws watch"):
        code = main(["watch", "tcp://127.0.0.1:1", "--run", str(live_run), "--out",
                     str(tmp_path / "live"), *C3D])
    assert code == 2 and "another claws watch" in caplog.text


def test_a_rerun_with_other_settings_is_refused(live_run, tmp_path, caplog):
    out = tmp_path / "live"
    out.mkdir()
    from claws.pipeline.watching.job import SETTINGS
    from claws.extract.c3d_weights import file_sha256

    (out / SETTINGS).write_text(json.dumps({
        "checkpoint_sha256": file_sha256(live_run / "checkpoints" / "last.pt"), "window": WINDOW,
        "threshold": 0.5, "min_duration_s": 1.0, "merge_gap_s": 1.0}))
    code = main(["watch", "tcp://127.0.0.1:1", "--run", str(live_run), "--out", str(out),
                 *C3D, "--threshold", "0.7"])
    assert code == 2 and "threshold 0.5 there, 0.7 now" in caplog.text
    assert sorted(p.name for p in out.iterdir()) == [SETTINGS]


class _Lines:
    def __init__(self) -> None:
        self.rows: list[tuple[str, dict]] = []

    def __call__(self, name: str, record: dict) -> None:
        self.rows.append((name, record))


def test_events_open_change_withdraw_and_confirm(live_run):
    """The event rule on a hand-made curve: provisional scores open an event, closing windows
    withdraw or confirm it (fps 16: one clip a second; merge gap 1 s, shortest 0 s)."""
    from claws.pipeline.training.checkpoint import load_checkpoint

    write = _Lines()
    stretch = live_stretch.Stretch("cam", 1, 16.0, load_checkpoint(live_run), WINDOW, write,
                                   (0.5, 0.0, 1.0))
    events = live_stretch.LiveEvents(stretch)
    stretch.num_frames = 16 * 4

    def step(scores: list[float], final: int) -> list[str]:
        stretch.scores, stretch.final = scores, final
        before = len(write.rows)
        events.update(0.0)
        return [r["status"] for _, r in write.rows[before:]]

    assert step([0.1, 0.9, 0.1, 0.1], 0) == ["opened"]
    assert step([0.1, 0.2, 0.1, 0.1], 2) == ["withdrawn"]
    assert step([0.1, 0.2, 0.8, 0.1], 2) == ["opened"]
    assert step([0.1, 0.2, 0.8, 0.9], 2) == ["changed"]
    stretch.num_frames = 16 * 6
    assert step([0.1, 0.2, 0.8, 0.9, 0.1, 0.1], 6) == ["confirmed"]
    assert step([0.1, 0.2, 0.8, 0.9, 0.1, 0.1], 6) == []


@pytest.mark.parametrize("seed", range(6))
def test_live_events_end_as_offline_events_while_the_search_moves_on(live_run, seed):
    """Scores that arrive clip by clip (provisional ones redrawn until their window closes):
    the events closed along the way are find_events of the whole final curve, and the search
    starts ever later (memory and time per clip stay bounded over hours)."""
    from claws.pipeline.scoring.events import find_events
    from claws.pipeline.training.checkpoint import load_checkpoint

    rng = np.random.default_rng(seed)
    write = _Lines()
    fps, rule = 16.0, (0.5, float(rng.choice([0.0, 1.0, 3.0])), float(rng.choice([0.0, 1.0, 2.5])))
    stretch = live_stretch.Stretch("cam", 1, fps, load_checkpoint(live_run), 4, write, rule)
    final = (rng.random(300) < rng.choice([0.2, 0.5])).astype(float) * 0.8 + 0.1
    bases = []
    for count in range(1, len(final) + 1):
        closed = count // 4 * 4
        stretch.scores = final[:closed].tolist() + rng.random(count - closed).tolist()
        stretch.final, stretch.num_frames = closed, 16 * count - (5 if count == len(final) else 0)
        stretch.events.update(0.0)
        bases.append(stretch.events.base)
    stretch.scores, stretch.final = final.tolist(), len(final)
    stretch.events.update(0.0, closing="confirmed")
    latest: dict[int, dict] = {}
    for name, record in write.rows:
        latest[record["event"]] = record
    kept = [r for r in latest.values() if r["status"] != "withdrawn"]
    offline = find_events(stretch.curve(), fps, *rule)
    assert [(r["start_frame"], r["end_frame"], r["peak"]) for r in kept] == [
        (e.start_frame, e.end_frame, round(e.peak, 6)) for e in offline]
    assert all(r["status"] == "confirmed" for r in kept)
    assert bases == sorted(bases) and bases[-1] > len(final) - 40


@pytest.mark.slow
def test_a_job_slower_than_real_time_drops_whole_clips_and_starts_a_new_stretch(
        live_run, tmp_path, monkeypatch, caplog):
    """The network is made 3 s slower per call and the queue holds 2 clips: once the stream is
    no longer ahead of real time, the reader drops clips (counted, logged) instead of waiting;
    the stretch ends where the drop began and the next one starts at a clip boundary."""
    from claws.pipeline.watching import job as watch_job

    features, calls = watch_job._Watcher._features, []

    def slow(self, clips):
        calls.append(len(clips))
        if len(calls) == 5:
            raise KeyboardInterrupt  # as SIGINT: stop cleanly
        time.sleep(3)
        return features(self, clips)

    monkeypatch.setattr(watch_job._Watcher, "_features", slow)
    monkeypatch.setattr(watch_job, "QUEUE_CLIPS", 2)
    port = free_port()
    server = start_server(port, "--forever")
    out = tmp_path / "live"
    try:
        assert main(watch_args(live_run, out, port, "--reconnect", "3")) == 0
    finally:
        server.kill()
    records = lines(out / "cam" / "stream.jsonl")
    dropped = [r for r in records if r["record"] == "frames dropped"]
    assert dropped and dropped[0]["after_stretch"] == 1
    assert dropped[0]["clips"] >= 1 and dropped[0]["frames"] == 16 * dropped[0]["clips"]
    opened = [r for r in records if r["record"] == "opened"]
    assert opened[0]["first_frame"] == 0
    assert opened[1]["stretch"] == 2 and opened[1]["first_frame"] % 16 == 0
    ended = [r for r in records if r["record"] == "stretch ended"]
    assert ended[0]["stretch"] == 1 and ended[0]["status"] == "interrupted"
    # the new stretch begins after the first stretch's frames and the dropped ones
    assert opened[1]["first_frame"] == ended[0]["frames"] + dropped[0]["frames"]
    assert "slower than real time" in caplog.text and "dropped" in caplog.text
    clips = lines(out / "cam" / "clips.jsonl")
    assert min(c["clip"] for c in clips if c["stretch"] == 2) == 0


def _grow(path: Path, frames: int, pause_s: float) -> None:
    """Write an MPEG-TS file a few frames at a time, as a recorder does."""
    import av

    out = av.open(str(path), "w", format="mpegts")
    stream = out.add_stream("mpeg4", rate=25)
    stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
    for n, image in enumerate(synthetic_frames(frames, height=120, width=160, seed=3)):
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            out.mux(packet)
        if n % 8 == 7:
            time.sleep(pause_s)
    for packet in stream.encode(None):
        out.mux(packet)
    out.close()


@pytest.mark.slow
def test_a_file_still_being_written_is_followed_to_its_end(live_run, tmp_path):
    """--follow: the file appears after the watch started, grows in bursts with pauses, and the
    stream ends once it has not grown for --timeout seconds; every frame is scored, as
    `claws score` scores the finished file. Without --follow, the same file read while it grows
    would stop at its first end."""
    import threading

    growing = tmp_path / "recorder" / "door.ts"
    growing.parent.mkdir()
    writer = threading.Timer(1.0, _grow, (growing, 72, 0.5))
    writer.start()
    out = tmp_path / "live"
    try:
        code = main(["watch", str(growing), "--follow", "--run", str(live_run), "--out",
                     str(out), *C3D, "--timeout", "3", "--reconnect", "20"])
    finally:
        writer.join()
    assert code == 0
    records = lines(out / "door" / "stream.jsonl")
    assert [r["record"] for r in records] == ["opened", "stretch ended", "finished"]
    assert records[1]["frames"] == 72 and records[1]["status"] == "confirmed"
    assert main(["score", str(growing), "--run", str(live_run), *C3D, "--workers", "0",
                 "--out", str(tmp_path / "offline"), "--no-progress"]) == 0
    np.testing.assert_allclose(np.load(out / "door" / "stretch-1.npy"),
                               np.load(tmp_path / "offline" / "door.npy"), rtol=0, atol=LIVE_ATOL)


@pytest.mark.slow
def test_an_event_of_a_file_read_ahead_of_the_scoring_gets_its_evidence_clip(live_run, tmp_path):
    """The reader reaches the file's end before the job scores the clip that opens the event:
    the ended source's packets are kept until its stretch ends, so the clip is still written;
    the closing record names it, stream.jsonl says when it was written, and --webhook and
    --on-event are told of each."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_notify import Hook

    video = write_video(tmp_path / "door.mp4", synthetic_frames(48, seed=4), fps=25.0)
    out = tmp_path / "live"
    hook = Hook()
    told = tmp_path / "told.txt"
    try:
        assert main(["watch", str(video), "--run", str(live_run), "--out", str(out), *C3D,
                     "--threshold", "0", "--min-duration", "0", "--evidence-before", "1",
                     "--webhook", hook.url,
                     "--on-event", f"echo $CLAWS_STATUS $CLAWS_EVIDENCE >> {told}"]) == 0
    finally:
        hook.close()
    door = out / "door"
    # the integrations got every event change and the clip (written as soon as the event
    # opened here: the file had ended, so every packet the clip can hold was there)
    told_hook = [b.get("status") or b["record"] for b in hook.bodies if b.get("status") != "changed"]
    assert told_hook[0] == "opened" and sorted(told_hook[1:]) == ["confirmed", "evidence"]
    assert f"written {door / 'evidence' / '1-1.mp4'}" in told.read_text().splitlines()
    closing = lines(door / "events.jsonl")[-1]
    assert closing["status"] == "confirmed" and closing["evidence"] == "evidence/1-1.mp4"
    assert closing["evidence_from_s"] == 0.0 and closing["evidence_to_s"] == closing["end_s"] + 5
    written = [r for r in lines(door / "stream.jsonl") if r["record"] == "evidence"]
    assert [(r["stretch"], r["event"], r["file"], r["error"]) for r in written] == [
        (1, 1, "evidence/1-1.mp4", None)]
    import av

    with av.open(str(door / "evidence" / "1-1.mp4")) as clip:
        assert clip.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in clip.decode(video=0)) == 48  # the whole file: before its end


def test_a_streams_file_adds_named_streams(tmp_path):
    from claws.pipeline.watching.job import WatchJob, job_streams, read_streams

    listing = tmp_path / "cams.csv"
    listing.write_text("\ufeffname,url\n# the lobby is down\n\ndoor, rtsp://10.0.0.5/live\n"
                       "yard,tcp://10.0.0.6:9000\n")
    assert read_streams(listing) == (["door", "yard"], ["rtsp://10.0.0.5/live",
                                                        "tcp://10.0.0.6:9000"])
    job = WatchJob(sources=["/data/gate.mp4"], run=Path("r"), out=Path("o"), streams=listing)
    assert job_streams(job) == (["gate", "door", "yard"],
                                ["/data/gate.mp4", "rtsp://10.0.0.5/live", "tcp://10.0.0.6:9000"])
    listing.write_text("door,rtsp://10.0.0.5/live\nyard\n")
    with pytest.raises(ValueError, match=r"cams.csv, line 2: 'yard' is not `name,url`"):
        read_streams(listing)
    listing.write_text("gate,rtsp://10.0.0.5/live\n")
    with pytest.raises(ValueError, match="stream name 'gate' is given twice"):
        job_streams(job)
    with pytest.raises(ValueError, match="no streams: give SOURCE arguments or --streams FILE"):
        job_streams(WatchJob(sources=[], run=Path("r"), out=Path("o")))


@pytest.mark.slow  # one torchrun launch of two ranks; about a minute on the shared 2-core CPU
def test_torchrun_two_ranks_split_the_streams(live_run, tmp_path):
    """Three streams (two from a --streams file) and one that never opens, over two ranks: each
    stream is watched once, by rank i mod 2, its final curve what `claws score` gives, and the
    job exits 1 for the stream that failed on rank 1 (rank 0 too: it returns the worst code)."""
    videos = [write_video(tmp_path / f"cam{i}.mp4", synthetic_frames(24 + 8 * i, seed=i),
                          fps=25.0) for i in range(3)]
    listing = tmp_path / "cams.csv"
    listing.write_text("".join(f"cam{i},{v}\n" for i, v in enumerate(videos[1:], 1)))
    out = tmp_path / "live"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node=2", "-m", "claws.pipeline.cli", "--"]
    done = subprocess.run([*torchrun, "watch", str(videos[0]), "tcp://127.0.0.1:1", "--name",
                           "cam0", "--name", "nowhere", "--streams", str(listing), "--run",
                           str(live_run), "--out", str(out), *C3D, "--reconnect", "0",
                           "--no-evidence"], timeout=600, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr[-3000:]
    # the streams in order: cam0, nowhere (the SOURCEs), cam1, cam2 (the file)
    assert "rank 0 of 2: watching cam0, cam1" in done.stderr
    assert "rank 1 of 2: watching nowhere, cam2" in done.stderr
    assert lines(out / "nowhere" / "stream.jsonl")[-1]["record"] == "failed"
    # rank 0's streams were fine: it returns 1 because rank 1's failed (which rank torchrun
    # sees end first, and SIGTERMs the other, varies: the ranks say what they return)
    assert "rank 0 of 2: exit code 1 (its streams: 0;" in done.stderr, done.stderr
    assert "rank 1 of 2: exit code 1 (its streams: 1;" in done.stderr, done.stderr
    for i, video in enumerate(videos):
        records = lines(out / f"cam{i}" / "stream.jsonl")
        assert [r["record"] for r in records] == ["opened", "stretch ended", "finished"]
        assert main(["score", str(video), "--run", str(live_run), *C3D, "--workers", "0",
                     "--out", str(tmp_path / "offline"), "--no-progress"]) == 0
        np.testing.assert_allclose(np.load(out / f"cam{i}" / "stretch-1.npy"),
                                   np.load(tmp_path / "offline" / f"cam{i}.npy"), rtol=0,
                                   atol=LIVE_ATOL)
    assert not (out / ".claws.lock").exists()


@pytest.mark.slow
def test_a_clip_that_cannot_be_scored_ends_its_stretch_and_the_stream_goes_on(
        live_run, tmp_path, monkeypatch, caplog):
    """C3D gives non-finite features for clip 1: that stretch ends there (named in
    stream.jsonl and the log), the reader starts a new stretch at its next clip, exit 0."""
    from claws.pipeline.watching import job as watch_job

    features = watch_job._Watcher._features

    def broken(self, clips):
        return [(raw, ok and not (c.stretch == 1 and c.index == 1))
                for c, (raw, ok) in zip(clips, features(self, clips))]

    monkeypatch.setattr(watch_job._Watcher, "_features", broken)
    monkeypatch.setattr(watch_job, "QUEUE_CLIPS", 1)  # the reader is at most 2 clips ahead
    video = write_video(tmp_path / "door.mp4", synthetic_frames(160, seed=5), fps=25.0)
    out = tmp_path / "live"
    assert main(["watch", str(video), "--run", str(live_run), "--out", str(out), *C3D,
                 "--no-evidence"]) == 0
    records = lines(out / "door" / "stream.jsonl")
    assert [r["record"] for r in records[:3]] == ["opened", "clip not scored", "stretch ended"]
    assert records[1]["clip"] == 1 and "non-finite" in records[1]["error"]
    assert (records[2]["stretch"], records[2]["clips"], records[2]["status"]) == (1, 1,
                                                                                  "interrupted")
    second = [r for r in records if r["record"] == "opened" and r["stretch"] == 2]
    assert len(second) == 1 and second[0]["first_frame"] % 16 == 0
    assert second[0]["first_frame"] >= 32  # after the clip that could not be scored
    assert len(np.load(out / "door" / "stretch-2.npy")) == 160 - second[0]["first_frame"]
    assert records[-1]["record"] == "finished"
    assert "clip 1: C3D gave non-finite features" in caplog.text
    skipped = [r["clips"] for r in records if r["record"] == "clips skipped"]
    # the clips queued behind clip 1 were counted, not scored: none of the frames is lost silently
    assert 16 * (2 + sum(skipped)) == second[0]["first_frame"]


@pytest.mark.slow
def test_a_restart_into_the_same_folder_appends_and_never_rewrites(live_run, tmp_path):
    """Two runs of the same watch into one --out: the second numbers its stretch 2, and every
    line the first wrote (its closed events included) stays as it was, written once."""
    video = write_video(tmp_path / "door.mp4", synthetic_frames(40, seed=6), fps=25.0)
    out = tmp_path / "live"
    args = ["watch", str(video), "--run", str(live_run), "--out", str(out), *C3D,
            "--threshold", "0", "--min-duration", "0"]
    assert main(args) == 0
    door = out / "door"
    before = {name: (door / name).read_text() for name in ("events.jsonl", "stream.jsonl",
                                                            "clips.jsonl")}
    assert main(args) == 0
    for name, text in before.items():
        assert (door / name).read_text().startswith(text)  # appended, nothing rewritten
    events = lines(door / "events.jsonl")
    closed = [(e["stretch"], e["event"]) for e in events if e["status"] == "confirmed"]
    assert closed == [(1, 1), (2, 1)]  # each closed once
    assert [r["stretch"] for r in lines(door / "stream.jsonl") if r["record"] == "opened"] == [1, 2]
    assert sorted(p.name for p in (door / "evidence").iterdir()) == ["1-1.mp4", "2-1.mp4"]


@pytest.mark.parametrize("command", ["watch", "extract"])
def test_an_explicit_gpu_under_torchrun_is_refused_by_watch_and_extract(
        command, live_run, tmp_path, monkeypatch, caplog):
    """Every rank would take that one GPU: exit 2 naming the option, before joining the group
    (claws score's own test is in test_score_torchrun.py)."""
    for name, value in (("WORLD_SIZE", "2"), ("RANK", "0"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(name, value)
    video = write_video(tmp_path / "cams" / "cam.mp4", synthetic_frames(3, 16, 16), fps=8.0)
    out = tmp_path / "out"
    argv = (["watch", str(video), "--run", str(live_run)] if command == "watch" else
            ["extract", "footage", str(video.parent), "--split", "train"])
    assert main([*argv, "--weights", "random", "--device", "cuda:1", "--out", str(out)]) == 2
    assert "--device cuda:1 under torchrun" in caplog.text and not out.exists()
