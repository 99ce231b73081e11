"""Helpers of the `claws watch` loopback tests beside test_watch.py: the command line, a guard
against a watch that never ends, the stream's records, and the live = offline check of a stretch
(its final curve against `claws score` of its recording, to test_watch's LIVE_ATOL: C3D rounds
with the clips per network call)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from claws.pipeline.cli import main

from .test_watch import C3D, LIVE_ATOL, SERVER, lines

GUARD_S = 300.0  # a guard against a hang, not a timing assertion


def watch_argv(url: str, run: Path, out: Path, *extra: str, name: str = "cam") -> list[str]:
    """`claws watch URL` of one stream named `name`, C3D as in test_watch."""
    return ["watch", url, "--run", str(run), "--out", str(out), "--name", name, *C3D, *extra]


@contextmanager
def hang_guard(seconds: float = GUARD_S) -> Iterator[list[bool]]:
    """SIGINT to this process after `seconds` (an in-process `claws watch` then stops); the
    yielded list holds True once it fired, for the test to fail with that reason."""
    fired: list[bool] = []

    def fire() -> None:  # to the main thread: a signal raised in this one would not wake it
        fired.append(True)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    timer = threading.Timer(seconds, fire)
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


def start_servers(*arguments: list[str]) -> list[subprocess.Popen]:
    """Stream servers (test_watch.SERVER, one per argument list), started together (each one
    imports torch: seconds), returned once each is about to listen."""
    servers = [subprocess.Popen([sys.executable, str(SERVER), *args], stdout=subprocess.PIPE,
                                text=True) for args in arguments]
    for server in servers:
        assert server.stdout.readline().startswith("ready 1")
    return servers


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, seconds: float = GUARD_S) -> None:
    """Wait until a TCP socket listens on 127.0.0.1:`port` (/proc/net/tcp state 0A)."""
    wanted = f"0100007F:{port:04X}"
    deadline = time.monotonic() + seconds
    while not any(f[1] == wanted and f[3] == "0A" for f in
                  (line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:])):
        assert time.monotonic() < deadline, f"nothing listens on port {port}"
        time.sleep(0.05)


def records(folder: Path, kind: str) -> list[dict]:
    """The `kind` records of a stream's stream.jsonl ("opened", "stretch ended", ...)."""
    return [r for r in lines(folder / "stream.jsonl") if r["record"] == kind]


def assert_recordings_score_the_same(stretches: dict[str, Path], run: Path,
                                     scratch: Path) -> None:
    """Each stretch's final live curve (name -> its stretch-<n>.npy) equals `claws score` of its
    recording (the .ts beside it) to LIVE_ATOL, C3D as live; one `claws score` for all."""
    (scratch / "recordings").mkdir(parents=True)
    videos = []
    for name, curve in stretches.items():
        videos.append(scratch / "recordings" / f"{name}.ts")
        videos[-1].symlink_to(curve.with_suffix(".ts"))
    assert main(["score", *map(str, videos), "--run", str(run), *C3D, "--workers", "0",
                 "--out", str(scratch / "scores"), "--no-progress"]) == 0
    for name, curve in stretches.items():
        live, offline = np.load(curve), np.load(scratch / "scores" / f"{name}.npy")
        assert live.shape == offline.shape, name
        np.testing.assert_allclose(live, offline, rtol=0, atol=LIVE_ATOL, err_msg=name)
