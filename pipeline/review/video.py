"""The footage of the review page: the source itself when a browser plays it, else an H.264 preview.

Browsers play MP4/WebM/Ogg holding H.264, VP8, VP9 or AV1 video; everything else (AVI, MPEG-4
part 2, MJPEG, lossless RGB H.264, JPEG/PNG frame folders) gets a small preview transcoded once
with PyAV's bundled libx264 into `review/previews/<stem>.mp4` (claws.data.videos.file_stem: the
id, shortened when long): PREVIEW_WIDTH pixels wide, aspect kept, even sizes, yuv420p, at the
curve's fps with one preview frame per decoded frame, so time t in the player is frame t*fps of
the curve. A preview is written to a temporary name and renamed,
so one that exists is complete and a rerun skips it.

PyAV is imported inside the functions, so that the `claws` parser starts without it.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

import numpy as np

from claws.data.atomic import atomic_path
from claws.data.videos import file_stem

logger = logging.getLogger(__name__)

PREVIEW_WIDTH = 480  # pixels; bounded size whatever the source (UCF-Crime is 320, SHT 856)
PLAYABLE_CONTAINERS = (".mp4", ".m4v", ".webm", ".ogg", ".ogv")
# PyAV decoder names; h264 only in yuv420p (browsers reject 4:4:4 and RGB H.264)
PLAYABLE_CODECS = ("h264", "vp8", "vp9", "av1", "libdav1d", "theora")


class Footage(NamedTuple):
    """What the video view plays: a URL relative to review/ (None when there is nothing) and why."""

    src: str | None
    note: str  # shown on the page: "source", "preview", or why there is no footage


def browser_playable(path: Path) -> bool:
    """True when a browser plays this file as it is (container by suffix, codec probed with PyAV)."""
    import av

    if Path(path).suffix.lower() not in PLAYABLE_CONTAINERS:
        return False
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return False
            stream = container.streams.video[0]
            name, pix_fmt = stream.codec_context.name, stream.codec_context.pix_fmt
    except av.FFmpegError:
        return False
    return name in PLAYABLE_CODECS and (name != "h264" or pix_fmt in ("yuv420p", "yuvj420p"))


def preview_size(height: int, width: int, max_width: int = PREVIEW_WIDTH) -> tuple[int, int]:
    """(height, width) of a preview: at most `max_width` wide, aspect kept, both even, >= 2."""
    scale = min(1.0, max_width / width)
    even = lambda v: max(2, int(round(v * scale / 2)) * 2)  # noqa: E731
    return even(height), even(width)


def write_preview(source: Path, target: Path, fps: float, is_frame_folder: bool) -> Path:
    """Transcode a video or frame folder into an H.264 MP4 preview (atomically).

    Args:
        source: the video file or frame folder that was scored.
        target: the preview to write (.mp4).
        fps: the curve's frame rate; every decoded frame becomes one preview frame at this rate.
        is_frame_folder: read `source` as a folder of JPEG/PNG frames.

    Returns:
        The preview path.
    """
    import av

    from claws.extract.video import open_video

    reader = open_video(Path(source), is_frame_folder, fps)
    with atomic_path(Path(target)) as tmp:
        with av.open(str(tmp), "w", format="mp4") as container:
            stream = None
            for chunk in reader.chunks(64):  # (n, H, W, 3) uint8 RGB
                for frame in chunk:
                    if stream is None:
                        stream = container.add_stream(
                            "libx264", rate=Fraction(fps).limit_denominator(1001),
                            options={"crf": "28", "preset": "veryfast", "movflags": "+faststart"})
                        stream.height, stream.width = preview_size(*frame.shape[:2])
                        stream.pix_fmt = "yuv420p"
                    image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                    image = image.reformat(stream.width, stream.height, format="yuv420p")
                    container.mux(stream.encode(image))
            if stream is None:
                raise ValueError(f"{source}: no frames to write a preview of")
            container.mux(stream.encode(None))
    return Path(target)


def relative_url(path: Path, start: Path) -> str:
    """A URL to `path` relative to the folder `start` (percent-encoded, forward slashes)."""
    return quote(Path(os.path.relpath(Path(path).resolve(), Path(start).resolve())).as_posix())


def footage(info: dict, review_dir: Path, previews: bool) -> Footage:
    """The footage of one scored video for the page, writing its preview if one is needed.

    Args:
        info: the video's summary (video_id, source, fps).
        review_dir: the review/ folder the page lives in.
        previews: transcode sources a browser cannot play (False: leave them without footage).
    """
    import av

    source = Path(str(info.get("source") or ""))
    if not info.get("source") or not source.exists():
        return Footage(None, f"source {info.get('source') or '(not recorded)'} not found: "
                       "no footage, the curve only")
    if source.is_file() and browser_playable(source):
        return Footage(relative_url(source, review_dir), "source")
    target = Path(review_dir) / "previews" / f"{file_stem(info['video_id'])}.mp4"
    if not target.is_file():
        if not previews:
            return Footage(None, "the browser cannot play the source and previews are off")
        try:
            write_preview(source, target, float(info.get("fps") or 25.0), source.is_dir())
        except (ValueError, OSError, RuntimeError, av.FFmpegError) as err:  # RuntimeError: DecodeError
            logger.error("%s: no preview (%s)", info["video_id"], err)
            return Footage(None, f"preview failed: {err}")
        logger.info("%s: wrote preview %s", info["video_id"], target)
    return Footage(relative_url(target, review_dir), "H.264 preview of " + source.name)
