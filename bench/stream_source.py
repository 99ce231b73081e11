"""A live loopback camera for bench/watch.py: one MPEG-TS stream over TCP, paced in real time.

    python bench/stream_source.py --port PORT --loop LOOP.ts

Serves one connection on tcp://127.0.0.1:PORT, then exits: the packets of LOOP.ts (a short video
beginning with a keyframe, written by bench/watch.py) are sent over and over with their
timestamps moved on by the loop's length each time, packet i at t0 + i / fps, as a camera sends
its frames. The packets are remuxed, not re-encoded, so a stream costs this process almost no CPU
(the bench measures the watching process, not the sender). Runs in its own process: PyAV holds
the GIL while it waits for a connection.

Lines on stdout: "ready" just before listening, "t0 T" when the first packet is sent (time.time(),
the clock of the `arrived` and `wall` stamps of claws watch), and at the end "sent N late_max_s L":
packets sent and how far, at most, a send came after its time (a reader that stops reading fills
the socket's buffers, and the sender falls behind). Imports PyAV only. Without arguments it prints
this usage and exits 0, so `make bench`, which runs every script in bench/, passes over it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from fractions import Fraction


def read_loop(path: str) -> tuple[list[tuple[bytes, int, int, bool]], int, Fraction, object]:
    """The loop's packets (data, pts, dts, keyframe), its length in stream ticks, its frame rate
    and the container (kept open: its stream is the template of the output stream)."""
    import av

    container = av.open(path)
    stream = container.streams.video[0]
    packets = [(bytes(p), p.pts, p.dts, p.is_keyframe) for p in container.demux(stream) if p.size]
    if not packets or not packets[0][3]:
        raise SystemExit(f"{path}: no packets, or the first is not a keyframe; write the loop "
                         "with bench/watch.py")
    fps = Fraction(stream.guessed_rate or 25)
    ticks = round(len(packets) / fps / stream.time_base)
    return packets, ticks, fps, container


def serve(port: int, path: str) -> None:
    """Send the loop over and over to one client until it leaves or SIGTERM arrives."""
    import av

    packets, ticks, fps, loop = read_loop(path)
    print("ready", flush=True)
    out = av.open(f"tcp://127.0.0.1:{port}?listen=1", "w", format="mpegts")
    stream = out.add_stream_from_template(loop.streams.video[0])
    time_base = loop.streams.video[0].time_base
    out.start_encoding()  # the header now, so the first packet is not late by it
    sent, late_max = 0, 0.0
    t0 = time.time()
    print(f"t0 {t0!r}", flush=True)
    try:
        while True:
            data, pts, dts, key = packets[sent % len(packets)]
            shift = ticks * (sent // len(packets))
            due = t0 + sent / fps
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            packet = av.Packet(data)
            packet.pts, packet.dts, packet.time_base = pts + shift, dts + shift, time_base
            packet.is_keyframe, packet.stream = key, stream
            out.mux(packet)
            late_max = max(late_max, time.time() - due)
            sent += 1
    except (av.FFmpegError, OSError, KeyboardInterrupt):  # the client left, or we were stopped
        pass
    finally:
        print(f"sent {sent} late_max_s {late_max:.3f}", flush=True)
        try:
            out.close()
        except av.FFmpegError:
            pass


def main() -> None:
    if len(sys.argv) == 1:
        usage = __doc__.strip().splitlines()[2].strip()
        print(usage, "(started by bench/watch.py)", file=sys.stderr)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", required=True, help="an MPEG-TS file that begins with a keyframe")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM: print the figures, exit
    serve(args.port, args.loop)


if __name__ == "__main__":
    main()
