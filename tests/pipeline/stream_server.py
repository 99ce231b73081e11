"""A loopback MPEG-TS stream for the `claws watch` tests: serves synthetic frames over TCP.

    python tests/pipeline/stream_server.py PORT --frames 40 --times 2   # two connections, then exit
    python tests/pipeline/stream_server.py PORT --forever               # until the client leaves

Each connection gets its own `--frames` frames (another seed each time: a new scene after a drop),
encoded with MPEG-4 part 2 (no B-frames), 160x120 at 25 fps, as fast as the client reads. The line
"ready N" is printed just before listening for connection N. Runs in its own process: PyAV holds
the GIL while it waits for a connection.
"""

from __future__ import annotations

import argparse
import sys

import av

from claws.extract.synthetic import synthetic_frames


def serve(port: int, frames: int, seed: int, forever: bool) -> None:
    """One connection: listen, send the frames (or send until the client leaves), close."""
    out = av.open(f"tcp://127.0.0.1:{port}?listen=1", "w", format="mpegts")
    stream = out.add_stream("mpeg4", rate=25)
    stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
    try:
        sent = 0
        while forever or sent < frames:
            batch = synthetic_frames(min(frames, 16), height=120, width=160, seed=seed + sent)
            for image in batch[: frames - sent if not forever else len(batch)]:
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    out.mux(packet)
                sent += 1
        for packet in stream.encode(None):
            out.mux(packet)
    except av.FFmpegError:  # the client left
        return
    finally:
        try:
            out.close()
        except av.FFmpegError:
            pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--times", type=int, default=1)
    parser.add_argument("--forever", action="store_true")
    parser.add_argument("--seed", type=int, default=0, help="added to the seed of every scene")
    args = parser.parse_args()
    for n in range(1, args.times + 1):
        print(f"ready {n}", flush=True)
        serve(args.port, args.frames, args.seed + 100 * n, args.forever)
    sys.exit(0)


if __name__ == "__main__":
    main()
