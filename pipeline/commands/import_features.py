r"""`claws import-features`: published per-video feature files to normalized feature shards.

    claws import-features ucf-crime --features UCF_Train_ten_crop_i3d --network i3d_rgb \
        --train-list Anomaly_Train.txt --test-annotation Temporal_Anomaly_Annotation.txt \
        --frame-counts Train_Annotation.txt Test_Annotation.txt --out feats/ucf_i3d
    claws import-features shanghaitech --features SH_i3d --train-list SH_Train.txt \
        --test-list SH_Test.txt --frame-counts SH_Test_NEW.txt --out feats/sht_i3d
    claws import-features manifest videos.csv --features feats_npy --fps 25 --out feats/mine
    claws import-features ucf-crime --segments 32 --features Anomaly_Features/ --l2-normalize \
        --feature-dim 2048 --network c3d_fc6 --train-list Anomaly_Train.txt \
        --test-annotation Temporal_Anomaly_Annotation.txt \
        --frame-counts Train_Annotation.txt Test_Annotation.txt --allow-missing --out feats/ucf_c3d32
    claws import-features ucf-crime --segments 32 --l2-normalize --feature-dim 2048 \
        --features vantage_c3d32_train.npz vantage_c3d32_test.npz sultani_c3d32_test.npz \
        --segment-bounds segments.npz --bounds-prefix vantage --train-list Anomaly_Train.txt \
        --test-annotation Temporal_Anomaly_Annotation.txt \
        --frame-counts Train_Annotation.txt Test_Annotation.txt --allow-missing --out feats/c3d32

Per-clip files (default): one .npy per video, (T, D) or (T, crops, D) (crops averaged), per-crop
files `<video>__<k>.npy`, or an .npz holding one such array per video keyed by video id. One row
per clip of --clip-len frames (16). A file stem (or npz key) is the video id, optionally followed
by _i3d, _c3d, _C, ... --features takes several folders or files; a video found in more than
one is taken from the first given. The shards are the same as `claws extract` writes: features
normalized with statistics of the training split only (or --stats-from), with num_frames, fps,
label, split and an extractor dict saying the features were imported.

num_frames comes from the --frame-counts lists; a video whose count needs another number of
clips than its file has rows fails (--frames-mismatch clip trusts the rows instead); a video
without a count gets clip_len * T (logged, and recorded as num_frames_source).

Segment-pooled files (--segments N): N rows per video, each the mean of the 16-frame clip
features of one segment: Sultani's `<video>.txt` (whitespace), `<video>_C.txt`, a .csv whose
first line is the segment width in frames, .npy (N, D) or an .npz keyed by video id. Each clip
of the video gets the row of the segment it overlaps most (the shards stay per clip). Segment
frames come from --segment-bounds (keys `<video>/bounds`, `<video>` or `<prefix>/<video>/bounds`
with --bounds-prefix), else a .csv's width line, else Sultani's recipe on the frame count (which
needs exactly N rows). num_frames comes from --frame-counts, else the last frame of the bounds;
a video with neither fails. --l2-normalize divides each row by its L2 norm first (Sultani's
files are normalised, raw fc6 files are not: normalise before mixing sources).

Resumable (rerun the same command); failures in OUT/failures.jsonl; exit code 1 when any video
failed, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from claws.data.shanghaitech import shanghaitech_items
from claws.data.ucf_crime import ucf_crime_items
from claws.data.version import code_version
from claws.data.videos import DatasetError, VideoItem
from claws.pipeline.options import FPS, add_list_options, add_shard_output_options, integer

if TYPE_CHECKING:
    from claws.data.feature_files import FrameCount

logger = logging.getLogger(__name__)

# The job's constants, written here because their modules import numpy and torch, which the
# parser must not (tests/pipeline/test_cli.py checks that they agree):
CLIP_LEN = 16  # claws.data.clips.CLIP_LEN: frames per C3D clip
MISMATCH_POLICIES = ("error", "clip")  # claws.extract.import_job.MISMATCH_POLICIES


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--features", metavar="PATH", type=Path, nargs="+", required=True,
                   help="folders (searched at any depth) or files (.npy, an .npz keyed by video id; "
                   "with --segments also .txt, .csv) holding the per-video features; a video in "
                   "several is taken from the first given")
    p.add_argument("--out", metavar="DIR", type=Path, required=True, help="output directory of shards")
    p.add_argument("--frame-counts", metavar="FILE", type=Path, nargs="+", default=[],
                   help="frame-count lists: Train_Annotation.txt / Test_Annotation.txt (UCF-Crime), "
                   "SH_Test_NEW.txt (ShanghaiTech) or a CSV video,num_frames[,fps]")
    p.add_argument("--clip-len", metavar="N", type=integer(1, 1024), default=CLIP_LEN,
                   help="frames per feature row")
    p.add_argument("--frames-mismatch", choices=MISMATCH_POLICIES, default=MISMATCH_POLICIES[0],
                   help="per-clip files: when ceil(num_frames / clip_len) != rows, fail the video "
                   "(error) or trust the rows and clip num_frames into the range they cover (clip)")
    p.add_argument("--segments", type=integer(1, 100_000), default=None, metavar="N",
                   help="the files hold N segment-pooled rows per video (Sultani's 32-segment "
                   "C3D features): every clip gets the row of its segment")
    p.add_argument("--segment-bounds", type=Path, default=None, metavar="FILE.npz",
                   help="with --segments: (N, 2) 1-based inclusive frame ranges per video, keys "
                   "'<video>/bounds', '<video>' or '<prefix>/<video>/bounds'")
    p.add_argument("--bounds-prefix", default=None, metavar="PREFIX",
                   help="with --segment-bounds: use the keys '<PREFIX>/<video>/bounds' (e.g. vantage)")
    p.add_argument("--l2-normalize", action="store_true",
                   help="divide each feature row by its L2 norm (before --feature-dim averaging)")
    p.add_argument("--feature-dim", type=integer(1, 65_536), default=None, metavar="D",
                   help="store D dims: the files' dim, or half of it (mean of adjacent pairs, e.g. "
                   "4096-d fc6 to 2048)")
    p.add_argument("--network", metavar="NAME", default="unknown",
                   help="what produced the features, recorded as 'imported:NAME' (e.g. c3d_fc6, "
                   "i3d_rgb)")
    p.add_argument("--fps", metavar="FPS", type=FPS, default=0.0,
                   help="frame rate when the frame-count list has none (default: the dataset's)")
    add_shard_output_options(p, missing="without a feature file")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `claws import-features` with one sub-command per kind of list."""
    parser = subparsers.add_parser("import-features",
                                   help="per-video feature files (per clip or per segment) to shards",
                                   description=__doc__)
    kinds = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    about = "UCF-Crime: the videos of its split and annotation lists"
    ucf = kinds.add_parser("ucf-crime", help=about, description=about + ".")
    about = "ShanghaiTech, the weakly supervised split of Zhong et al."
    sht = kinds.add_parser("shanghaitech", help=about, description=about)
    add_list_options(ucf, sht)
    about = "Videos of any kind, listed in a CSV video,label,split[,class]"
    manifest = kinds.add_parser("manifest", help=about, description=about + ".")
    manifest.add_argument("manifest", type=Path, help="CSV with header video,label,split[,class]")
    for sub in (ucf, sht, manifest):
        _common(sub)
        sub.set_defaults(func=run)


def listed_items(args: argparse.Namespace) -> list[VideoItem]:
    """The listed videos with label, split and class (no paths)."""
    # numpy, h5py, torch: imported when the command runs, not for the parser
    from claws.data.feature_files import read_import_manifest

    if args.dataset == "manifest":
        return read_import_manifest(args.manifest)
    if args.dataset == "ucf-crime":
        return ucf_crime_items(None, args.train_list, args.test_annotation)[0]
    return shanghaitech_items(None, args.train_list, args.test_list)[0]


def frame_counts(paths: list[Path]) -> dict[str, FrameCount]:
    """All lists merged; a video counted differently by two lists is an error."""
    # numpy, h5py, torch: imported when the command runs, not for the parser
    from claws.data.feature_files import read_frame_counts

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
    # numpy, h5py, torch: imported when the command runs, not for the parser
    from claws.data.segment_files import bounds_key, read_bounds_file

    if args.segment_bounds is None:
        return
    bounds = read_bounds_file(args.segment_bounds)
    keys = [bounds_key(bounds, i.video_id, args.bounds_prefix, args.segment_bounds) for i in items]
    logger.info("%s: segment bounds for %d of %d videos%s", args.segment_bounds,
                sum(k is not None for k in keys), len(items),
                f" (prefix {args.bounds_prefix})" if args.bounds_prefix else "")


def prepare(args: argparse.Namespace):
    """(items with files, files by id, frame counts); DatasetError before any work."""
    # numpy, h5py, torch: imported when the command runs, not for the parser
    from claws.data.feature_sources import CLIP_FILE_SUFFIXES, SEGMENT_FILE_SUFFIXES, locate_features
    from claws.data.feature_files import FrameCount
    from claws.extract.import_job import video_fps

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
    """Run `claws import-features`; 0 when every video is in the shards, 1 when any failed, 2 on
    bad input."""
    # numpy, h5py, torch: imported when the command runs, not for the parser
    from claws.extract.import_job import ImportConfig, run_import
    from claws.pipeline.training.checkpoint import stats_from
    from claws.pipeline.lock import folder_lock

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
