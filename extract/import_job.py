"""The import job: published per-video feature files into normalized shards, like an extraction job.

The same plan and finalize steps as `claws.extract.job` (`prepare_job`, `pending_videos`,
`finish_job`) around its own phase 1, which reads each listed video's feature file(s) (per clip:
claws.data.feature_files; segment-pooled, `segments=N`: claws.data.segment_files and the rules
below), checks them against the video's frame count and stores the RAW per-clip features as a
work file (claws.extract.resume); a failure is logged in OUT/failures.jsonl and the rest goes on.
Phase 2 picks the normalization statistics (training split only, or the given `stats`, or those
already stored in OUT) and writes the shards. A rerun skips every video already imported from
the same file(s) with the same settings (the work-file key, `import_key`); the feature dim of
`stats` and the output folder are checked before the first file is read.

Frame counts (per-clip mode): a video's num_frames comes from a frame-count list;
ceil(num_frames / clip_len) must equal the file's T (its clip count), otherwise the video fails
with a message saying what to do, unless `frames_mismatch="clip"`, which trusts T and clips
num_frames into the range T can cover, ((T-1)*clip_len, T*clip_len]. Without a frame count,
num_frames = clip_len * T. How num_frames was obtained is recorded per video in the extractor
dict (`num_frames_source`).

Segment mode (`claws import-features --segments N`): a segment file holds N rows, each the mean
of the clip features of one segment of the video. The shards stay per CLIP, so frame curves,
windows and ground truth remain frame-exact: every clip gets the row of the segment it falls in
(claws.extract.segments.clip_segments). A segment's frames come, in this order, from (a) the
`--segment-bounds` .npz (key `<prefix>/<video>/bounds`, `<video>/bounds` or `<video>`), (b) the
width line of a .csv file, or (c) Sultani's recipe on the video's frame count, which assumes
exactly N = `--segments` rows. Bounds from (a) or (b) describe the file's own rows, so a file
whose row count differs from N (the vantage-vision script keeps 33 segments for some short
videos) is accepted with them; without them it fails. Bounds from a file must have one row per
segment. num_frames comes from the frame-count lists, else from the last frame of bounds (a) or
(b); a video with neither fails. Each video records how it got both (`segment_bounds_source`,
`num_frames_source`).

Rows are L2-normalised first when asked (`l2_normalize`, each row in the file's dimension; a
row of zeros stays zero), then reduced to `feature_dim` (mean of adjacent pairs).

Values: a file holding NaN or inf fails, and so does one whose pair means overflow float32, each
in phase 1 with the file named; a video whose finite values overflow float32 once normalized
fails alone in phase 2 (claws.extract.job.write_shards). None of them reaches the statistics or a
shard.

Shapes: T clips, N segments, D feature dim (D_file = 2 D when adjacent pairs are averaged).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
from tqdm import tqdm

from claws.data.clips import CLIP_LEN, TAIL_POLICY, num_clips
from claws.data.feature_files import FrameCount, load_clip_features
from claws.data.feature_sources import FeatureEntry, FeatureFileError, peek_feature_dim
from claws.data.segment_files import bounds_key, load_segment_file, read_bounds_file
from claws.data.shards import NormStats, VideoRecord
from claws.data.videos import DatasetError, VideoItem, source_stamp
from claws.extract.job import finish_job, pending_videos, prepare_job
from claws.extract.resume import SOURCE_FIELDS, log_failure, work_key, write_work
from claws.extract.segments import (
    check_bounds, clip_segments, sultani_segment_bounds, width_segment_bounds,
)

logger = logging.getLogger(__name__)

MISMATCH_POLICIES = ("error", "clip")


class FramesMismatch(ValueError):
    """A frame count contradicts the number of clips in a feature file."""


@dataclass(frozen=True)
class ImportConfig:
    """How to run an import (everything but the videos and their frame counts)."""

    out: Path  # output directory: shards, .work/, failures.jsonl
    features: tuple[Path, ...]  # --features sources (folders or files), first wins
    clip_len: int = CLIP_LEN  # frames per feature row of the source files
    frames_mismatch: str = "error"  # "error" or "clip" (trust the file's T), see module doc
    feature_dim: int | None = None  # None: as in the files; D_file / 2: mean of adjacent pairs
    network: str = "unknown"  # what produced the features (free text, e.g. "c3d_fc6", "i3d_rgb")
    fps: float = 0.0  # frame rate when neither the frame-count list nor the dataset has one
    shard_size: int = 64  # videos per shard file
    stats: NormStats | None = None  # an earlier run's statistics to normalize with (--stats-from)
    stats_origin: str = "--stats-from"  # what gave `stats`, as the user named it, for messages
    progress: bool = True  # tqdm bar
    created_by: str = "claws import-features"  # recorded in every shard
    segments: int | None = None  # N: files hold N segment rows (None: one row per clip)
    segment_bounds: Path | None = None  # .npz of (N, 2) frame bounds per video (segment mode)
    bounds_prefix: str | None = None  # which `<prefix>/<video>/bounds` keys of that file to use
    l2_normalize: bool = False  # divide each row by its L2 norm before the feature_dim reduction

    def __post_init__(self) -> None:
        if isinstance(self.features, (str, Path)):  # one source given as a plain path
            object.__setattr__(self, "features", (Path(self.features),))
        if self.frames_mismatch not in MISMATCH_POLICIES:
            raise ValueError(f"frames_mismatch must be one of {MISMATCH_POLICIES}, "
                             f"got {self.frames_mismatch!r}")
        if self.clip_len < 1:
            raise ValueError(f"clip_len must be >= 1, got {self.clip_len}")
        if self.segments is not None and self.segments < 1:
            raise ValueError(f"segments must be >= 1, got {self.segments}")
        if self.segments is None and (self.segment_bounds or self.bounds_prefix):
            raise ValueError("--segment-bounds and --bounds-prefix need --segments N")


class ImportResult(NamedTuple):
    """What one import run did."""

    imported: int  # videos imported in this run
    skipped: int  # videos already imported before this run
    failed: list[tuple[str, str]]  # (video_id, reason)
    shards: list[Path]  # shards written by this run


def resolve_num_frames(
    video_id: str, num_rows: int, count: FrameCount | None, clip_len: int, policy: str
) -> tuple[int, str]:
    """num_frames of a video with `num_rows` feature rows, and how it was obtained.

    Raises:
        FramesMismatch: the count needs another number of clips and policy is "error".
    """
    if count is None or count.num_frames <= 0:
        return clip_len * num_rows, "clip_len * T (no frame count)"
    needed = num_clips(count.num_frames, clip_len)
    if needed == num_rows:
        return count.num_frames, f"list {count.source}"
    if policy != "clip":
        raise FramesMismatch(
            f"video {video_id}: {num_rows} feature rows but {count.source} says {count.num_frames} frames, which "
            f"needs ceil({count.num_frames}/{clip_len}) = {needed} clips; check that the file "
            f"belongs to this video and holds one row per {clip_len}-frame clip (segment-pooled "
            "files such as 32-segment features need --segments 32), or pass --frames-mismatch "
            "clip to trust the file's rows"
        )
    clipped = min(max(count.num_frames, clip_len * (num_rows - 1) + 1), clip_len * num_rows)
    logger.warning("video %s: %s lists %d frames but the file has %d rows; num_frames set to %d "
                   "(--frames-mismatch clip)", video_id, count.source, count.num_frames, num_rows,
                   clipped)
    return clipped, f"list {count.source}, clipped to T"


def video_fps(item: VideoItem, count: FrameCount | None, fallback: float) -> float:
    """The list's fps, else `fallback` (--fps), else the dataset's; 0.0 when nobody knows."""
    if count is not None and count.fps > 0:
        return count.fps
    return fallback if fallback > 0 else item.fps


def l2_normalize_rows(rows: np.ndarray) -> np.ndarray:
    """Each row divided by its L2 norm; a row of zeros stays zero."""
    norms = np.linalg.norm(rows.astype(np.float64), axis=1, keepdims=True)
    return (rows / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _reduce(features: np.ndarray, feature_dim: int | None, where: str) -> np.ndarray:
    if feature_dim is None or features.shape[1] == feature_dim:
        return features
    if features.shape[1] == 2 * feature_dim:  # DESIGN.md "2048-d": mean of adjacent pairs
        with np.errstate(over="ignore"):  # checked below, with the file named
            pairs = features.reshape(len(features), feature_dim, 2).mean(-1)
        if not np.isfinite(pairs).all():
            raise FeatureFileError(
                f"{where}: features are not finite after averaging adjacent pairs (values up to "
                f"{np.abs(features).max():.3g} overflow float32); the file is damaged or does "
                "not hold features"
            )
        return pairs
    raise FeatureFileError(
        f"{where}: features of dim {features.shape[1]} cannot become {feature_dim} "
        f"(only D or 2D by averaging adjacent pairs)"
    )


def prepare_rows(rows: np.ndarray, base: dict, config: ImportConfig, where: str) -> np.ndarray:
    """Rows as stored: optional L2 normalisation, then the feature_dim reduction, then the dim check."""
    if config.l2_normalize:
        rows = l2_normalize_rows(rows)
    rows = _reduce(rows, config.feature_dim, where)
    if rows.shape[1] != base["feature_dim"]:
        raise FeatureFileError(
            f"{where}: features of dim {rows.shape[1]}, the other videos have "
            f"{base['feature_dim']}; import videos of one feature type per output directory"
        )
    return rows


def source_of(entry: FeatureEntry, sources: tuple[Path, ...]) -> str:
    """The --features source (resolved) holding an entry."""
    path = entry.paths[0].resolve()
    for source in (Path(s).resolve() for s in sources):
        if path == source or source in path.parents:
            return str(source)
    return str(path.parent)


# --- segment mode: one video's segment-pooled file as per-clip features ----------------------

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


# --- one video's record, and the job ---------------------------------------------------------

def read_video(
    item: VideoItem, entry: FeatureEntry, count: FrameCount | None, base: dict, config: ImportConfig,
    segment_options: SegmentOptions | None = None,
) -> VideoRecord:
    """One video's RAW record from its feature file(s); errors name the video and the file."""
    fields = {"source_folder": source_of(entry, config.features), "source_file": str(entry.paths[0]),
              "npz_key": entry.key}
    if segment_options is not None:
        clips = read_segment_clips(item.video_id, entry, count, segment_options)
        rows = prepare_rows(clips.rows, base, config, entry.where)  # (N, D)
        features, num_frames, size = rows[clips.segment_of_clip], clips.num_frames, clips.size
        fields.update(clips.fields)
    else:
        clip = load_clip_features(entry.paths, entry.key)
        features = prepare_rows(clip.features, base, config, entry.where)
        num_frames, source = resolve_num_frames(item.video_id, len(features), count,
                                                config.clip_len, config.frames_mismatch)
        size = clip.size
        fields.update(crops_averaged=clip.crops, original_dim=int(clip.features.shape[1]),
                      num_frames_source=source)
    return VideoRecord(
        item.video_id, features, num_frames, video_fps(item, count, config.fps), item.label,
        item.split, item.class_name, str(entry.paths[0]), size, config.clip_len, TAIL_POLICY,
        dict(base, **fields),
    )


def base_extractor(config: ImportConfig, feature_dim: int) -> dict:
    """The extractor fields shared by every imported video (identity keys: claws.extract.resume)."""
    return {
        "network": f"imported:{config.network}", "imported": True,
        "sources": [str(Path(s).resolve()) for s in config.features],
        "weights": "unknown (imported)", "weights_sha256": "", "random": False, "seed": None,
        "precision": None, "feature_dim": feature_dim, "mean_source": None,
        "clip_len": config.clip_len, "tail_policy": TAIL_POLICY, "segments": config.segments,
        "segment_bounds_file": str(Path(config.segment_bounds).resolve())
        if config.segment_bounds else None,
        "bounds_prefix": config.bounds_prefix, "l2_normalized": config.l2_normalize,
    }


def segment_options(config: ImportConfig) -> SegmentOptions | None:
    """The segment settings of a segment-mode config (reads --segment-bounds), else None."""
    if config.segments is None:
        return None
    bounds = read_bounds_file(config.segment_bounds) if config.segment_bounds else None
    return SegmentOptions(config.segments, config.clip_len, bounds, config.segment_bounds,
                          config.bounds_prefix)


def import_key(
    item: VideoItem, entry: FeatureEntry, count: FrameCount | None, base: dict, config: ImportConfig
) -> dict:
    """The work-file key of one video: its feature file(s), the extractor identity, and what
    else decides its record (frame count and fps used, label, split, segment bounds)."""
    return work_key(
        source_stamp(entry.paths), base, npz_key=entry.key, label=item.label, split=item.split,
        class_name=item.class_name, listed_frames=count.num_frames if count else None,
        fps=video_fps(item, count, config.fps), frames_mismatch=config.frames_mismatch,
        segment_bounds=base["segment_bounds_file"], bounds_prefix=config.bounds_prefix,
    )


def _feature_dim(items: Sequence[VideoItem], found: dict[str, FeatureEntry],
                 config: ImportConfig) -> int:
    """The job's feature dim: --feature-dim, else the last axis of the first readable file."""
    if config.feature_dim is not None:
        return config.feature_dim
    first = None
    for item in items:
        try:
            return peek_feature_dim(found[item.video_id])
        except (OSError, ValueError, IndexError) as err:
            first = first or err
    raise DatasetError(f"none of the {len(items)} feature files to import is readable; the first: "
                       f"{first}")


def run_import(
    items: Sequence[VideoItem], found: dict[str, FeatureEntry], counts: dict[str, FrameCount],
    config: ImportConfig,
) -> ImportResult:
    """Import the feature files of `items` into normalized shards in `config.out` (resumable).

    Args:
        items: the listed videos that have feature files (labels, splits, classes).
        found: video_id -> feature file(s), from `claws.data.feature_sources.locate_features`.
        counts: video_id -> frame count, from the frame-count lists (may miss videos).
        config: import settings.
    """
    out = Path(config.out)
    base = base_extractor(config, _feature_dim(items, found, config))
    stats = prepare_job(out, base, config.stats, config.stats_origin)
    keys = {i.video_id: import_key(i, found[i.video_id], counts.get(i.video_id), base, config)
            for i in items}
    pending = pending_videos(out, items, keys, "imported", "importing it again")
    failed: list[tuple[str, str]] = []
    if pending:
        options = segment_options(config)
        for item in tqdm(pending, desc="import", unit="video", disable=not config.progress):
            entry, key = found[item.video_id], keys[item.video_id]
            try:
                record = read_video(item, entry, counts.get(item.video_id), base, config, options)
                write_work(out, replace(record, **{k: key[k] for k in SOURCE_FIELDS}), key)
            except (FeatureFileError, FramesMismatch, SegmentsMismatch) as err:
                reason = f"{type(err).__name__}: {err}"
                logger.error("%s (%s) failed: %s", item.video_id, entry.where, reason)
                log_failure(out, item.video_id, entry.where, reason)
                failed.append((item.video_id, reason))
    shards = finish_job(out, keys, stats, config.shard_size, config.created_by, failed=failed)
    imported = {i.video_id for i in pending} - {video_id for video_id, _ in failed}
    return ImportResult(len(imported), len(items) - len(pending), failed, shards)
