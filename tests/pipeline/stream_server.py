"""A loopback MPEG-TS stream for the `claws watch` tests: serves synthetic frames over TCP, HTTP
or UDP on 127.0.0.1.

    python tests/pipeline/stream_server.py PORT --frames 40 --times 2   # two connections, then exit
    python tests/pipeline/stream_server.py PORT --forever --realtime    # 25 fps until it is killed
    python tests/pipeline/stream_server.py PORT --protocol udp          # push to a listening reader
    python tests/pipeline/stream_server.py PORT --size 320x240 --scene 40:88   # a scene change

Each connection gets its own `--frames` frames (another seed each time: a new scene after a drop),
encoded with MPEG-4 part 2 (no B-frames), 160x120 (or `--size`) at 25 fps, as fast as the client
reads or, with `--realtime`, one frame every 1/25 s. With `--scene START:END` frames [START, END)
of each connection show another scene (`scene_frames`: a zooming Mandelbrot set instead of the
textured room with its walking object); with `--progress` the line "sent N" follows every 16
frames muxed; with `--go` it prints "waiting N" and waits for a line on stdin before connection N
(a server started early listens at once when told). Over TCP (FFmpeg's `listen=1`) and HTTP (Python's server
answering one GET) this process listens for the reader; over UDP the reader listens, and this
process sends to it once its port is bound (UDP does not wait for a reader). The line "ready N"
is printed just before listening for connection N (HTTP: once listening; UDP: before waiting
for the reader). Runs in its own process: PyAV holds the GIL while it waits for a connection.
"""

from __future__ import annotations

import argparse
import http.server
import sys
import time
from pathlib import Path

import av
import numpy as np

from claws.extract.synthetic import synthetic_frames

FPS = 25
BLOCK = 16  # frames drawn with one seed: the room's texture changes every block


def mandelbrot(t: int, height: int, width: int) -> np.ndarray:
    """Frame t of a zoom into the Mandelbrot set, (H, W, 3) uint8 RGB: bright bands on black."""
    zoom = 1.6 * 0.98 ** t
    y, x = np.mgrid[-1:1:height * 1j, -1:1:width * 1j]
    c = (-0.7436 + 0.1318j) + zoom * (x * width / height + 1j * y)
    z = np.zeros_like(c)
    escaped = np.zeros(c.shape, np.int32)
    for step in range(1, 25):
        inside = np.abs(z) <= 2
        z[inside] = z[inside] ** 2 + c[inside]
        escaped[inside] = step
    phase = escaped * 0.5 + t * 0.2
    rgb = np.stack([np.sin(phase), np.sin(phase + 2.1), np.sin(phase + 4.2)], axis=-1)
    return np.where(escaped[..., None] == 24, 0, 127.5 + 127.5 * rgb).astype(np.uint8)


def scene_frames(first: int, count: int, height: int, width: int, seed: int,
                 scene: tuple[int, int] | None = None) -> np.ndarray:
    """Frames [first, first + count) of one connection, (count, H, W, 3) uint8 RGB.

    The room of claws.extract.synthetic (a new texture every 16 frames: seed + block start) and,
    for frames inside `scene` = [start, end), the Mandelbrot zoom instead.
    """
    frames, blocks = [], {}
    for t in range(first, first + count):
        if scene is not None and scene[0] <= t < scene[1]:
            frames.append(mandelbrot(t - scene[0], height, width))
            continue
        block = t - t % BLOCK
        if block not in blocks:
            blocks[block] = synthetic_frames(BLOCK, height, width, seed=seed + block)
        frames.append(blocks[block][t - block])
    return np.stack(frames)


def wait_until_bound(port: int) -> None:
    """Wait until a UDP socket is bound to `port` (the reader listens): /proc/net/udp lists it."""
    suffix = f":{port:04X}"
    while not any(line.split()[1].endswith(suffix)
                  for line in Path("/proc/net/udp").read_text().splitlines()[1:]):
        time.sleep(0.05)


def send(target, args: argparse.Namespace, seed: int) -> None:
    """Encode one connection's frames as MPEG-TS into `target` (a URL or a file object)."""
    width, height = args.size
    try:
        out = av.open(target, "w", format="mpegts")
    except av.FFmpegError:
        return
    stream = out.add_stream("mpeg4", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    start = None  # when the first frame went out (TCP and HTTP: once the reader connected)
    try:
        sent = 0
        while args.forever or sent < args.frames:
            count = BLOCK if args.forever else min(BLOCK, args.frames - sent)
            for image in scene_frames(sent, count, height, width, seed, args.scene):
                if args.realtime and start is not None:
                    time.sleep(max(0.0, start + sent / FPS - time.monotonic()))
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    out.mux(packet)
                start = start or time.monotonic()
                sent += 1
            if args.progress:
                print(f"sent {sent}", flush=True)
        for packet in stream.encode(None):
            out.mux(packet)
    except (av.FFmpegError, OSError):  # the client left
        return
    finally:
        try:
            out.close()
        except (av.FFmpegError, OSError):
            pass


def serve(args: argparse.Namespace, seed: int, number: int) -> None:
    """Connection `number`: listen (or wait for the UDP reader), send the frames, close."""
    if args.go:
        print(f"waiting {number}", flush=True)
        sys.stdin.readline()
    if args.protocol == "http":
        serve_http(args, seed, number)
        return
    print(f"ready {number}", flush=True)
    if args.protocol == "tcp":
        send(f"tcp://127.0.0.1:{args.port}?listen=1", args, seed)
    else:
        wait_until_bound(args.port)
        send(f"udp://127.0.0.1:{args.port}?pkt_size=1316", args, seed)  # 7 TS packets a datagram


def serve_http(args: argparse.Namespace, seed: int, number: int) -> None:
    """One HTTP GET answered with the stream (200, no length: it ends when the server closes).

    Python's HTTP server: PyAV opens an output URL without protocol options, so FFmpeg's own
    HTTP server (`listen=1`) cannot be asked for.
    """

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp2t")
            self.send_header("Connection", "close")
            self.end_headers()
            send(self.wfile, args, seed)

        def log_message(self, *_) -> None:
            pass

    with http.server.HTTPServer(("127.0.0.1", args.port), Handler) as server:
        print(f"ready {number}", flush=True)
        server.handle_request()


def pair(text: str, sep: str) -> tuple[int, int]:
    a, b = text.split(sep)
    return int(a), int(b)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--protocol", choices=("tcp", "http", "udp"), default="tcp")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--times", type=int, default=1)
    parser.add_argument("--forever", action="store_true")
    parser.add_argument("--realtime", action="store_true", help="one frame every 1/25 s")
    parser.add_argument("--size", type=lambda s: pair(s, "x"), default=(160, 120), help="WxH")
    parser.add_argument("--scene", type=lambda s: pair(s, ":"), default=None,
                        help="START:END, frames showing the other scene")
    parser.add_argument("--seed", type=int, default=0, help="added to the seed of every scene")
    parser.add_argument("--progress", action="store_true",
                        help='print "sent N" after every 16 frames sent')
    parser.add_argument("--go", action="store_true",
                        help="wait for a line on stdin before each connection (started early, "
                        "it listens at once when told)")
    args = parser.parse_args()
    for n in range(1, args.times + 1):
        serve(args, args.seed + 100 * n, n)
    sys.exit(0)


if __name__ == "__main__":
    main()
