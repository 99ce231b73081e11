"""`claws shards info DIR`: what a feature-shard directory holds.

Lists the shards, every video (id, split, label, class, clips, frames, fps, source), totals,
where the normalization statistics came from, the extractor (with a loud warning for random
weights), work files left by an unfinished run and the failure log. `--json` prints one JSON
object instead.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from pathlib import Path

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `claws shards info`."""
    parser = subparsers.add_parser("shards", help="inspect feature shards",
                                   description="Inspect feature shards.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = actions.add_parser("info", help="list the videos, statistics and extractor of shards",
                              description=__doc__.split("\n\n")[1])
    info.add_argument("dir", type=Path, metavar="SHARDS", help="shard directory or one shard file")
    info.add_argument("--json", action="store_true", help="one JSON object")
    info.set_defaults(func=run)


def describe(root: Path) -> dict:
    """Everything `info` shows, as plain data."""
    from claws.data.shards import ShardSet  # h5py: not for the parser
    from claws.extract.resume import read_failures, work_files

    shards = ShardSet(root)
    videos = [
        {"video_id": v.video_id, "split": v.split, "label": v.label, "class": v.class_name,
         "clips": v.num_clips, "frames": v.num_frames, "fps": round(v.fps, 3),
         "source": v.source_path, "shard": v.shard.name}
        for v in shards
    ]
    extractors = {json.dumps(v.extractor, sort_keys=True) for v in shards}
    folder = root if root.is_dir() else root.parent
    failures = read_failures(folder)
    stats = shards.stats
    return {
        "shards": [str(f) for f in shards.files],
        "videos": videos,
        "totals": {
            "videos": len(videos), "clips": sum(v["clips"] for v in videos),
            "frames": sum(v["frames"] for v in videos),
            "by_split": dict(Counter(v["split"] or "-" for v in videos)),
            "by_label": {str(k): n for k, n in Counter(v["label"] for v in videos).items()},
        },
        "feature_dim": shards.feature_dim,
        "normalization": {"source": stats.source, "train_videos": stats.num_videos,
                          "train_clips": stats.num_clips},
        "extractors": [json.loads(e) for e in sorted(extractors)],
        "random_weights": any(json.loads(e).get("random") for e in extractors),
        "work_files_pending": len(work_files(folder)),
        "failures": failures,
    }


def _print(d: dict) -> None:
    print(f"{len(d['shards'])} shard(s), {d['totals']['videos']} videos, {d['totals']['clips']} clips, "
          f"{d['totals']['frames']} frames, feature dim {d['feature_dim']}")
    print(f"  splits {d['totals']['by_split']}  labels {d['totals']['by_label']}")
    n = d["normalization"]
    print(f"normalization: from {n['source']} ({n['train_videos']} train videos, {n['train_clips']} clips)")
    for e in d["extractors"]:
        print("extractor: " + ", ".join(f"{k}={v}" for k, v in sorted(e.items())))
    if d["random_weights"]:
        print("WARNING: RANDOM C3D WEIGHTS - these are NOT real C3D features")
    print(f"{'video':<28} {'split':<5} {'label':>5} {'class':<14} {'clips':>6} {'frames':>7} "
          f"{'fps':>7}  source")
    for v in d["videos"]:
        print(f"{v['video_id']:<28} {v['split'] or '-':<5} {v['label']:>5} {v['class'] or '-':<14} "
              f"{v['clips']:>6} {v['frames']:>7} {v['fps']:>7.2f}  {v['source']}")
    if d["work_files_pending"]:
        print(f"{d['work_files_pending']} videos extracted but not yet in shards: rerun the extraction")
    if d["failures"]:
        print(f"failures.jsonl: {len(d['failures'])} failure(s) logged")
        for f in d["failures"][-20:]:
            print(f"  {f['time']} {f['video_id']}: {f['reason']}")


def run(args: argparse.Namespace) -> int:
    """Print the description; 2 when the directory holds no valid shard."""
    from claws.data.shards import ShardError

    try:
        d = describe(args.dir)
    except ShardError as err:
        logger.error("%s", err)
        return 2
    if args.json:
        print(json.dumps(d))
    else:
        _print(d)
    return 0
