"""One video's segment-pooled feature file as per-clip features (`claws import-features --segments N`).

A segment file holds N rows, each the mean of the clip features of one segment of the video
(claws.data.segment_features). The shards stay per CLIP, so frame curves, windows and ground
truth remain frame-exact: every clip gets the row of the segment it falls in
(claws.extract.segments.clip_segments).

A segment's frames come, in this order, from (a) the `--segment-bounds` .npz (key
`<prefix>/<video>/bounds`, `<video>/bounds` or `<video>`), (b) the width line of a .csv file, or
(c) Sultani's recipe on the video's frame count, which assumes exactly N = `--segments` rows.
Bounds from (a) or (b) describe the file's own rows, so a file whose row count differs from N
(the vantage-vision script keeps 33 segments for some short videos) is accepted with them;
without them it fails. Bounds from a file must have one row per segment.

num_frames comes from the frame-count lists, else from the last frame of bounds (a) or (b);
a video with neither fails. Each video records how it got both (`segment_bounds_source`,
`num_frames_source`).

Shapes: N segments, T clips, D_file feature dim of the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from claws.data.clips import num_clips
from claws.data.feature_sources import FeatureEntry, FeatureFileError
from claws.data.import_features import FrameCount
from claws.data.segment_features import bounds_key, load_segment_file
from claws.extract.segments import (
    check_bounds, clip_segments, sultani_segment_bounds, width_segment_bounds,
)


class SegmentsMismatch(ValueError):
    """A segment file's rows do not fit --segments, its bounds or its video's frame count."""


@dataclass(frozen=True)
class SegmentOptions:
    """How segment files are read (the segment part of an import config)."""

    num_segments: int  # N, rows per file expected by Sultani's recipe (--segments)
    clip_len: int  # frames per clip of the pooled features (16)
    bounds: dict[str, np.ndarray] | None = None  # arrays of the --segment-bounds .npz
    bounds_path: Path | None = None  # that file, recorded with each video
    bounds_prefix: str | None = None  # --bounds-prefix: which `<prefix>/<video>/bounds` to use


class SegmentClips(NamedTuple):
    """One video's segment rows and which row each clip takes."""

    rows: np.ndarray  # (N, D_file) float32 as stored
    segment_of_clip: np.ndarray  # (T,) int64 index into rows
    num_frames: int  # frames of the video
    fields: dict  # per-video extractor fields (bounds and frame-count sources, format, ...)
    size: int  # bytes of the file(s)


def segment_bounds_of(
    video_id: str, entry: FeatureEntry, num_rows: int, width: int | None, num_frames: int | None,
    options: SegmentOptions,
) -> tuple[np.ndarray, str]:
    """The (N, 2) frame bounds of a video's segments and the rule that gave them (module doc).

    Raises:
        SegmentsMismatch: bounds of another row count, or the recipe's N differs from the rows.
        FeatureFileError: bad bounds, a width that cannot be, or no way to get bounds.
    """
    key = None
    if options.bounds is not None:
        key = bounds_key(options.bounds, video_id, options.bounds_prefix, options.bounds_path)
    if key is not None:
        where = f"{options.bounds_path}[{key}]"
        try:
            bounds = check_bounds(options.bounds[key], where)
        except ValueError as err:
            raise FeatureFileError(f"{err}; fix the bounds file") from err
        if len(bounds) != num_rows:
            raise SegmentsMismatch(f"{entry.where} has {num_rows} segment rows but {where} has "
                                   f"{len(bounds)} segments; check that both belong to this video")
        return bounds, f"{Path(options.bounds_path).name}:{key}"
    if width is not None:
        try:
            return width_segment_bounds(width, num_rows, options.clip_len), f"csv width {width}"
        except ValueError as err:
            raise FeatureFileError(f"{entry.where}: {err}; pass --segment-bounds instead") from err
    if num_rows != options.num_segments:
        raise SegmentsMismatch(
            f"{entry.where} has {num_rows} segment rows but --segments is {options.num_segments}; "
            "fix --segments, replace the file, or pass --segment-bounds with this video's bounds")
    if num_frames is None:
        raise FeatureFileError(
            f"video {video_id}: no frame count, and {entry.where} gives no segment bounds; pass "
            "--frame-counts with a list holding this video, or --segment-bounds")
    return sultani_segment_bounds(num_frames, num_rows, options.clip_len), "sultani recipe"


def read_segment_clips(
    video_id: str, entry: FeatureEntry, count: FrameCount | None, options: SegmentOptions
) -> SegmentClips:
    """Read one video's segment file and assign every clip its segment.

    Args:
        video_id: the video.
        entry: its segment file (and npz key).
        count: its frame count from the lists, or None.
        options: segment settings.

    Raises:
        FeatureFileError, SegmentsMismatch: the message names the file (and npz key).
    """
    segments = load_segment_file(entry)
    listed = count.num_frames if count is not None and count.num_frames > 0 else None
    bounds, bounds_source = segment_bounds_of(video_id, entry, len(segments.rows), segments.width,
                                              listed, options)
    last_frame = int(bounds[:, 1].max())
    if listed is not None:
        num_frames, frames_source = listed, f"list {count.source}"
    else:
        num_frames, frames_source = last_frame, f"last frame of the segment bounds ({bounds_source})"
    covered = options.clip_len * num_clips(num_frames, options.clip_len)
    if last_frame > covered:
        raise SegmentsMismatch(
            f"{entry.where}: segment bounds ({bounds_source}) reach frame {last_frame} but video "
            f"{video_id} has {num_frames} frames ({frames_source}); the bounds or the frame count "
            "belong to another video")
    fields = {
        "segment_rows": len(segments.rows), "segment_format": segments.format,
        "segment_bounds_source": bounds_source, "num_frames_source": frames_source,
        "source_file": str(entry.paths[0]), "npz_key": entry.key, "crops_averaged": segments.crops,
        "original_dim": int(segments.rows.shape[1]),
    }
    return SegmentClips(segments.rows, clip_segments(num_frames, bounds, options.clip_len),
                        num_frames, fields, segments.size)
