"""`claws watch` on loopback TCP streams (tests/pipeline/stream_server.py): an event is placed
where a stream's scene changes, a sender killed mid-stream and restarted gives one gap and a new
stretch, and four streams in one process are batched together and each scored as its own
recording.

The scene test trains a real run: `claws extract footage` (random C3D weights, seed 0, fp32) of
four short 320x240 videos (two of the textured room, two of the Mandelbrot zoom: the anomalous
class), then `claws train` (CLAWS Net, b = 2, 200 steps), and watches a stream whose frames
[40, 88) show the zoom. The other tests use test_watch's small random run.
"""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from claws.extract.batches import NetworkBatches
from claws.extract.synthetic import write_video
from claws.pipeline.cli import main

from .stream_server import scene_frames
from .test_watch import (  # noqa: F401 (live_run: a fixture)
    C3D, SERVER, free_port, lines, live_run, start_server, waiting,
)
from .watch_streams import (
    GUARD_S, assert_recordings_score_the_same, records, start_servers, wait_listening,
    watch_argv,
)

SCENE = (40, 88)  # frames of the stream showing the Mandelbrot zoom


def train_scene_run(root: Path) -> Path:
    """A CLAWS Net run trained to score the Mandelbrot zoom high and the room low."""
    for i in range(2):
        write_video(root / "footage" / "normal" / f"room{i}.mp4",
                    scene_frames(0, 32, 240, 320, seed=1000 + 100 * i))
        # one zoom throughout, one zoom then room: the label is the video's, not the clip's
        write_video(root / "footage" / "anomalous" / f"zoom{i}.mp4",
                    scene_frames(0, 32, 240, 320, seed=2000 + 100 * i, scene=(0, 32 - 16 * i)))
    assert main(["extract", "footage", str(root / "footage"), "--split", "train", "--out",
                 str(root / "shards"), *C3D, "--workers", "0", "--no-progress"]) == 0
    steps = "200"
    assert main(["train", "--shards", str(root / "shards"), "--runs-dir", str(root / "runs"),
                 "--name", "scene", "--window", "2", "--iterations", steps, "--lr", "1e-3",
                 "--lr-decay-step", steps, "--log-every", steps, "--checkpoint-every", steps,
                 "--seed", "0", "--device", "cpu"]) == 0
    return root / "runs" / "scene"


@pytest.mark.slow
def test_an_event_starts_within_one_clip_of_a_scene_change(tmp_path):
    run = train_scene_run(tmp_path / "train")
    port = free_port()
    server = start_server(port, "--size", "320x240", "--frames", "112", "--scene",
                          f"{SCENE[0]}:{SCENE[1]}")
    out = tmp_path / "live"
    try:
        code = main(waiting(watch_argv(f"tcp://127.0.0.1:{port}", run, out, "--timeout", "5",
                                       "--reconnect", "3")))
    finally:
        server.kill()
    assert code == 0
    assert [r["frames"] for r in records(out / "cam", "stretch ended")] == [112]
    events = lines(out / "cam" / "events.jsonl")
    assert {e["event"] for e in events} == {1}, events  # the zoom, and nothing else
    last = events[-1]
    assert last["status"] == "interrupted"  # closed when the sender left
    assert abs(last["start_frame"] - SCENE[0]) <= 16, last
    assert abs(last["end_frame"] - SCENE[1]) <= 16, last


def read_until(server: subprocess.Popen, watch: subprocess.Popen, wanted: str) -> None:
    """Read the server's lines until `wanted`; fail if the watch ends first."""
    deadline = time.monotonic() + GUARD_S
    while True:
        assert watch.poll() is None, watch.communicate()
        assert time.monotonic() < deadline, f"no {wanted!r} from the stream server"
        if select.select([server.stdout], [], [], 0.2)[0]:
            line = server.stdout.readline()
            assert line, f"the stream server ended before {wanted!r}"
            if line.strip() == wanted:
                return


@pytest.mark.slow
def test_a_sender_killed_mid_stream_and_restarted_gives_one_gap(live_run, tmp_path):
    """The first sender streams in real time until it is killed (SIGKILL: no goodbye, its
    kernel closes the connection) after 32 frames; a second one, told to listen on the same port
    just before, sends 32 frames and leaves. One `stream lost` record, two stretches, the second
    scored from its own first clip."""
    port = free_port()
    second = subprocess.Popen([sys.executable, str(SERVER), str(port), "--frames", "32",
                               "--seed", "7", "--go"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # started now: it starts slowly
    assert second.stdout.readline().startswith("waiting 1")
    first = start_server(port, "--forever", "--realtime", "--progress")
    out = tmp_path / "live"
    watch = subprocess.Popen([sys.executable, "-m", "claws.pipeline.cli", *watch_argv(
        f"tcp://127.0.0.1:{port}", live_run, out, "--timeout", "5", "--reconnect", "3")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        read_until(first, watch, "sent 32")
        second.stdin.write("go\n")
        second.stdin.flush()
        assert second.stdout.readline().startswith("ready 1")
        wait_listening(port)  # the first sender's listening socket closed when it accepted
        first.send_signal(signal.SIGKILL)
        _, stderr = watch.communicate(timeout=GUARD_S)
    finally:
        for process in (watch, first, second):
            process.kill()
    assert watch.returncode == 0, stderr[-3000:]
    cam = out / "cam"
    gaps = records(cam, "stream lost")
    assert len(gaps) == 1 and gaps[0]["after_stretch"] == 1 and gaps[0]["to"] >= gaps[0]["from"]
    ended = records(cam, "stretch ended")
    assert [(r["stretch"], r["status"]) for r in ended] == [(1, "interrupted"), (2, "interrupted")]
    assert ended[0]["frames"] >= 32 and ended[1]["frames"] == 32
    assert [r["record"] for r in lines(cam / "stream.jsonl")][-1] == "finished"
    final = [(c["stretch"], c["clip"]) for c in lines(cam / "clips.jsonl") if c["final"]]
    assert final[-2:] == [(2, 0), (2, 1)]


@pytest.mark.slow
def test_four_streams_in_one_process_share_network_calls(live_run, tmp_path, monkeypatch):
    """Four senders, one `claws watch`: every stream gets its own folder and its curve is its
    own recording's offline curve, and at least one network call held clips of several streams."""
    run_batch, calls = NetworkBatches.run, []

    def spy(self, pieces):
        calls.append([p.video_id.split("/")[0] for p in pieces])  # a piece: one clip here
        return run_batch(self, pieces)

    monkeypatch.setattr(NetworkBatches, "run", spy)
    names = ["north", "south", "east", "west"]
    ports = [free_port() for _ in names]
    servers = start_servers(*([str(port), "--frames", "16", "--seed", str(7 * i)]  # a clip each
                              for i, port in enumerate(ports)))
    out = tmp_path / "live"
    try:
        code = main(waiting([
            "watch", *(f"tcp://127.0.0.1:{p}" for p in ports), "--run", str(live_run), "--out",
            str(out), *(a for name in names for a in ("--name", name)), *C3D, "--timeout", "5",
            "--record", "--reconnect", "3"]))
    finally:
        for server in servers:
            server.kill()
    assert code == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(names)
    for name in names:
        assert [(r["frames"], r["clips"]) for r in records(out / name, "stretch ended")] == [
            (16, 1)]
    assert sorted(sum(calls, [])) == sorted(names)  # each clip through the network once
    assert max(len(set(call)) for call in calls) > 1, calls  # clips of several streams in a call
    assert_recordings_score_the_same({n: out / n / "stretch-1.npy" for n in names}, live_run,
                                     tmp_path)
