"""`claws watch` over UDP, HTTP and RTSP on loopback (claws.pipeline.watching.source): each
stream is scored, its stretch ends when the sender stops, and the final curve equals
`claws score` of its `--record` recording (what was received) to LIVE_ATOL, as over TCP in
test_watch.py.

Senders: tests/pipeline/stream_server.py (PyAV, MPEG-TS: pushed over UDP to the listening reader
in real time, or answered to an HTTP GET) and tests/pipeline/rtsp_server.py (GStreamer's RTSP
server, H.264, under the system Python; the test skips with the reason where it is missing).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from claws.pipeline.cli import main

from .test_watch import free_port, live_run, start_server  # noqa: F401 (live_run: a fixture)
from .watch_streams import (
    assert_recordings_score_the_same, free_udp_port, hang_guard, records, watch_argv,
)

RTSP_SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with python3-gi


def check_one_stretch(folder: Path, frames: int) -> None:
    """One stretch of `frames` frames, ended by the sender's end ("interrupted": a network
    stream is lost, not finished), then the stream finished (never reopened)."""
    ended = records(folder, "stretch ended")
    assert [(r["stretch"], r["frames"], r["status"]) for r in ended] == [(1, frames, "interrupted")]
    assert records(folder, "stream lost") == []
    assert records(folder, "finished")[0]["error"] is None


def test_udp_reads_get_the_protocols_own_timeout(monkeypatch):
    """FFmpeg's UDP reads ignore rw_timeout: `timeout` (microseconds) bounds them."""
    import av

    from claws.pipeline.watching import source

    opened = []

    def fake_open(url, format=None, options=None):
        opened.append((url, options))
        raise av.FFmpegError(2, "stop here")

    monkeypatch.setattr(av, "open", fake_open)
    for url, timeout_s in (("udp://127.0.0.1:5000", 2.0), ("udp://@:5000", 0.0),
                           ("tcp://127.0.0.1:5000", 2.0)):
        with pytest.raises(av.FFmpegError):
            source.open_source(url, timeout_s)
    assert opened == [("udp://127.0.0.1:5000", {"rw_timeout": "2000000", "timeout": "2000000"}),
                      ("udp://@:5000", {}), ("tcp://127.0.0.1:5000", {"rw_timeout": "2000000"})]


@pytest.mark.slow
def test_udp_stream_read_until_the_sender_stops(live_run, tmp_path):
    """The reader listens on the port; the sender pushes 40 frames in real time (UDP does not
    wait for a reader) and stops; --timeout ends the stretch (FFmpeg's UDP reads ignore
    rw_timeout: without its own timeout the watch would wait for ever)."""
    port = free_udp_port()
    server = start_server(port, "--protocol", "udp", "--frames", "40", "--realtime")
    out = tmp_path / "live"
    # overrun_nonfatal, fifo_size: FFmpeg's UDP options, passed through the URL as a user would
    url = f"udp://127.0.0.1:{port}?overrun_nonfatal=1&fifo_size=100000"
    try:
        with hang_guard() as fired:
            code = main(watch_argv(url, live_run, out, "--record", "--timeout", "2",
                                   "--reconnect", "0"))
    finally:
        server.kill()
    assert not fired, "claws watch did not end after the UDP sender stopped"
    assert code == 0
    check_one_stretch(out / "cam", 40)
    assert_recordings_score_the_same({"cam": out / "cam" / "stretch-1.npy"}, live_run, tmp_path)


@pytest.mark.slow
def test_http_stream_read_to_its_end(live_run, tmp_path):
    port = free_port()
    server = start_server(port, "--protocol", "http", "--frames", "40")  # ready: it listens
    out = tmp_path / "live"
    try:
        code = main(watch_argv(f"http://127.0.0.1:{port}/live.ts", live_run, out, "--record",
                               "--timeout", "5", "--reconnect", "0"))
    finally:
        server.kill()
    assert code == 0
    check_one_stretch(out / "cam", 40)
    assert_recordings_score_the_same({"cam": out / "cam" / "stretch-1.npy"}, live_run, tmp_path)


def start_rtsp_server(port: int, frames: int) -> subprocess.Popen:
    """GStreamer's RTSP server for one client, once it listens; skips the test when it cannot run."""
    try:
        server = subprocess.Popen([SYSTEM_PYTHON, str(RTSP_SERVER), str(port), "--frames",
                                   str(frames)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
    except OSError as err:
        pytest.skip(f"no {SYSTEM_PYTHON} for GStreamer's RTSP server: {err}")
    if server.stdout.readline().strip() != "ready":
        error = server.communicate()[1].strip().splitlines()
        pytest.skip("GStreamer's RTSP server does not run (apt-get install python3-gi "
                    "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
                    f"gstreamer1.0-plugins-ugly): {error[-1] if error else 'no output'}")
    return server


def watch_rtsp(run: Path, out: Path) -> str:
    """`claws watch` of a 48-frame RTSP stream (the server ends it with RTCP BYE and serves no
    second client); what the server printed."""
    port = free_port()
    server = start_rtsp_server(port, 48)
    try:
        with hang_guard() as fired:
            code = main(watch_argv(f"rtsp://127.0.0.1:{port}/test", run, out, "--record",
                                   "--timeout", "5", "--reconnect", "0"))
    finally:
        server.kill()
    assert not fired, "claws watch did not end after the RTSP stream ended"
    assert code == 0
    return server.communicate()[0]


@pytest.mark.slow
def test_rtsp_stream_over_tcp_by_default(live_run, tmp_path):
    """rtsp:// asks for RTP inside the RTSP connection (TCP): no UDP ports to open or lose."""
    said = watch_rtsp(live_run, tmp_path / "live")
    transports = [line for line in said.splitlines() if line.startswith("transport ")]
    assert len(transports) == 1 and transports[0].startswith("transport RTP/AVP/TCP"), said
    ended = records(tmp_path / "live" / "cam", "stretch ended")
    assert len(ended) == 1 and ended[0]["frames"] >= 32, ended  # x264 may keep back its last frame
    check_one_stretch(tmp_path / "live" / "cam", ended[0]["frames"])


@pytest.mark.slow
def test_rtsp_recording_scores_as_the_stream(live_run, tmp_path):
    """The RTSP demuxer gives the first keyframe no time stamps: it is recorded all the same, so
    the recording decodes every frame scored live."""
    watch_rtsp(live_run, tmp_path / "live")
    assert_recordings_score_the_same({"cam": tmp_path / "live" / "cam" / "stretch-1.npy"},
                                     live_run, tmp_path)
