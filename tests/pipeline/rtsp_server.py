"""A loopback RTSP server for the `claws watch` tests: GStreamer's RTSP server (gst-rtsp-server)
serving H.264 of GStreamer's test pattern on rtsp://127.0.0.1:PORT/test.

    /usr/bin/python3 tests/pipeline/rtsp_server.py PORT --frames 48

Runs under the system Python, which has Debian's GObject bindings (python3-gi,
gir1.2-gst-rtsp-server-1.0; the elements come from gstreamer1.0-plugins-base, -good and -ugly).
Each client gets its own media: `--frames` frames of videotestsrc's moving ball, 160x120 at 25 fps,
x264 without B-frames, in real time, then the end of the stream (RTCP BYE). The line "ready" is
printed once the server listens, and "transport T" for every SETUP request, T being the client's
Transport header (RTP/AVP/TCP when it asks for RTP inside the RTSP connection). After `--clients`
clients have set the stream up, the next ones get 404 Not Found; it exits once those clients have left,
or when killed.
"""

from __future__ import annotations

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

PIPELINE = ("( videotestsrc is-live=true pattern=ball num-buffers={frames} "
            "! video/x-raw,width=160,height=120,framerate=25/1 ! videoconvert "
            "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 "
            "! rtph264pay name=pay0 pt=96 config-interval=1 )")
ELEMENTS = ("videotestsrc", "videoconvert", "x264enc", "rtph264pay")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--clients", type=int, default=1)
    args = parser.parse_args()
    Gst.init(None)
    missing = [name for name in ELEMENTS if Gst.ElementFactory.find(name) is None]
    if missing:
        sys.exit(f"GStreamer elements missing: {', '.join(missing)}")
    loop = GLib.MainLoop()
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE.format(frames=args.frames))
    factory.set_shared(False)
    factory.set_eos_shutdown(True)
    server.get_mount_points().add_factory("/test", factory)
    served: list = []  # clients that set the stream up
    finished: list = []

    def setup(client, context) -> None:
        _, transport = context.request.get_header(GstRtsp.RTSPHeaderField.TRANSPORT, 0)
        print(f"transport {transport}", flush=True)
        if client not in served:
            served.append(client)
            if len(served) == args.clients:  # later clients get 404 Not Found
                server.get_mount_points().remove_factory("/test")

    def closed(client) -> None:
        if client in served:
            finished.append(client)
            if len(finished) == args.clients:
                loop.quit()

    def connected(_server, client) -> None:
        client.connect("setup-request", setup)
        client.connect("closed", closed)

    server.connect("client-connected", connected)
    server.attach(None)
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
