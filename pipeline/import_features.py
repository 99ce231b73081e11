"""The `claws import-features` job: the listed videos, their feature files and frame counts,
checked before any work, then the import (claws.extract.import_features). The command line and
the accepted files are described in claws.pipeline.import_features_cmd.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from claws.data.feature_sources import CLIP_FILE_SUFFIXES, SEGMENT_FILE_SUFFIXES, locate_features
from claws.data.import_features import FrameCount, read_frame_counts, read_import_manifest
from claws.data.segment_features import bounds_key, read_bounds_file
from claws.data.shanghaitech import shanghaitech_items
from claws.data.ucf_crime import ucf_crime_items
from claws.data.version import code_version
from claws.data.videos import DatasetError, VideoItem
from claws.extract.import_features import ImportConfig, run_import, video_fps
from claws.pipeline.checkpoint import stats_from
from claws.pipeline.lock import folder_lock

logger = logging.getLogger(__name__)


def listed_items(args: argparse.Namespace) -> list[VideoItem]:
    """The listed videos with label, split and class (no paths)."""
    if args.dataset == "manifest":
        return read_import_manifest(args.manifest)
    if args.dataset == "ucf-crime":
        return ucf_crime_items(None, args.train_list, args.test_annotation)[0]
    return shanghaitech_items(None, args.train_list, args.test_list)[0]


def frame_counts(paths: list[Path]) -> dict[str, FrameCount]:
    """All lists merged; a video counted differently by two lists is an error."""
    merged: dict[str, FrameCount] = {}
    for path in paths:
        for vid, count in read_frame_counts(path).items():
            old = merged.get(vid)
            if old is not None and old.num_frames > 0 and count.num_frames > 0 and (
                    old.num_frames != count.num_frames):
                raise DatasetError(f"video {vid}: {old.source} says {old.num_frames} frames, "
                                   f"{count.source} says {count.num_frames}; drop one of the lists")
            if old is None or old.num_frames <= 0:
                merged[vid] = count
    return merged


def check_segment_args(args: argparse.Namespace) -> None:
    """Segment options that only make sense together; DatasetError otherwise."""
    if args.segments is None and (args.segment_bounds is not None or args.bounds_prefix):
        raise DatasetError("--segment-bounds and --bounds-prefix need --segments N")
    if args.segments is not None and args.segments < 1:
        raise DatasetError(f"--segments must be >= 1, got {args.segments}")
    if args.bounds_prefix and args.segment_bounds is None:
        raise DatasetError("--bounds-prefix needs --segment-bounds FILE.npz")


def check_bounds_keys(items: list[VideoItem], args: argparse.Namespace) -> None:
    """Fail before any work when --segment-bounds is ambiguous for a video (several prefixes)."""
    if args.segment_bounds is None:
        return
    bounds = read_bounds_file(args.segment_bounds)
    keys = [bounds_key(bounds, i.video_id, args.bounds_prefix, args.segment_bounds) for i in items]
    logger.info("%s: segment bounds for %d of %d videos%s", args.segment_bounds,
                sum(k is not None for k in keys), len(items),
                f" (prefix {args.bounds_prefix})" if args.bounds_prefix else "")


def prepare(args: argparse.Namespace):
    """(items with files, files by id, frame counts); DatasetError before any work."""
    check_segment_args(args)
    items = listed_items(args)
    suffixes = SEGMENT_FILE_SUFFIXES if args.segments else CLIP_FILE_SUFFIXES
    found, missing = locate_features(items, args.features, suffixes)
    sources = " ".join(str(s) for s in args.features)
    if missing and not args.allow_missing:
        raise DatasetError(
            f"{len(missing)} listed videos have no feature file in {sources} "
            f"(e.g. {', '.join(missing[:5])}); fix --features or pass --allow-missing"
        )
    if missing:
        logger.warning("%d listed videos have no feature file, skipped: %s", len(missing),
                       ", ".join(missing[:20]))
    items = [i for i in items if i.video_id in found]
    if not items:
        raise DatasetError(f"no listed video has a feature file in {sources}")
    if args.segments:
        check_bounds_keys(items, args)
    counts = frame_counts(args.frame_counts)
    no_fps = [i.video_id for i in items if video_fps(i, counts.get(i.video_id), args.fps) <= 0]
    if no_fps:
        raise DatasetError(f"no frame rate known for {len(no_fps)} videos (e.g. {no_fps[0]}); "
                           "pass --fps or a frame-count CSV with an fps column")
    uncounted = [i.video_id for i in items
                 if counts.get(i.video_id, FrameCount(-1, 0.0, "")).num_frames <= 0]
    if uncounted:
        rule = ("the last frame of their segment bounds, or the video fails" if args.segments
                else f"{args.clip_len} * rows")
        logger.warning("%d of %d videos have no frame count (e.g. %s): num_frames = %s, "
                       "recorded as num_frames_source", len(uncounted), len(items), uncounted[0],
                       rule)
    return items, found, counts


def run(args: argparse.Namespace) -> int:
    """Import; 0 when every video is in the shards, 1 when any failed, 2 on bad input."""
    try:
        if args.stats_from is not None and not args.stats_from.exists():
            raise DatasetError(f"--stats-from {args.stats_from} does not exist")
        items, found, counts = prepare(args)
        # read (a checkpoint verified) before any work; its feature dim is checked by the job
        given = None if args.stats_from is None else stats_from(args.stats_from)
    except DatasetError as err:
        logger.error("%s", err)
        return 2
    config = ImportConfig(
        out=args.out, features=tuple(args.features), clip_len=args.clip_len,
        frames_mismatch=args.frames_mismatch, feature_dim=args.feature_dim, network=args.network,
        fps=args.fps, shard_size=args.shard_size, stats=given,
        stats_origin=f"--stats-from {args.stats_from}",
        progress=not args.no_progress,
        created_by=f"claws {code_version(commit=False)} import-features {args.dataset}",
        segments=args.segments, segment_bounds=args.segment_bounds,
        bounds_prefix=args.bounds_prefix, l2_normalize=args.l2_normalize,
    )
    with folder_lock(args.out, f"claws import-features {args.dataset}"):  # one job per --out
        result = run_import(items, found, counts, config)
    logger.info("%d videos imported, %d already done, %d shards written to %s",
                result.imported, result.skipped, len(result.shards), args.out)
    for vid, reason in result.failed:
        logger.error("FAILED %s: %s", vid, reason)
    if result.failed:
        logger.error("%d videos failed (see %s); fix them and rerun to import them",
                     len(result.failed), args.out / "failures.jsonl")
    return 1 if result.failed else 0
