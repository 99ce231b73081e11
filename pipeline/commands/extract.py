r"""`claws extract`: videos of UCF-Crime, ShanghaiTech or any footage to normalized feature shards.

    claws extract ucf-crime --root UCF_Crimes --train-list Anomaly_Train.txt \
        --test-annotation Temporal_Anomaly_Annotation.txt --weights c3d.pickle --out feats/ucf
    claws extract shanghaitech --root shanghaitech --train-list SH_Train.txt \
        --test-list SH_Test.txt --weights c3d.pickle --out feats/sht
    claws extract footage my_videos/ --split test --stats-from feats/ucf --weights c3d.pickle \
        --out feats/mine
    torchrun --nproc_per_node=2 -m claws.pipeline.cli extract ...   (ranks split the videos)

Resumable (rerun the same command), crash-safe, failures in OUT/failures.jsonl; exit code 1 when
any video failed, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from claws.data.footage import footage_items
from claws.data.shanghaitech import shanghaitech_items
from claws.data.ucf_crime import ucf_crime_items
from claws.data.version import code_version
from claws.data.videos import DatasetError, VideoItem
from claws.extract.cpu_share import default_workers
from claws.pipeline.options import (
    PRECISIONS, SEED, WORKERS, add_list_options, add_shard_output_options, integer,
)

logger = logging.getLogger(__name__)

# The C3D network, the decoders and the job (torch, torchvision, h5py) are imported inside
# build_network and run: `claws --help` builds this parser and must not pay for them.



def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="DIR", type=Path, required=True, help="output directory of shards")
    p.add_argument("--weights", metavar="FILE", required=True,
                   help="C3D weights: c3d.pickle or Keras .h5; 'random' for seeded random weights "
                   "(features are then NOT real and are marked so)")
    p.add_argument("--seed", metavar="N", type=SEED, default=0, help="seed of random weights")
    p.add_argument("--mean", metavar="FILE", type=Path, default=None,
                   help="Sports-1M mean cube (.npy, .npy.bz2, .binaryproto); default: channel means")
    p.add_argument("--feature-dim", type=int, choices=(2048, 4096), default=2048,
                   help="stored feature: 2048 = mean of adjacent fc6 pairs (paper 4.3), 4096 = fc6")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="C3D arithmetic; auto: fp16 on CUDA, bf16 on a CPU with AMX or AVX512-BF16, "
                   "else fp32")
    p.add_argument("--device", metavar="DEVICE", default="auto",
                   help="cpu, cuda or cuda:N; auto: cuda when available (under torchrun each rank "
                   "takes cuda:LOCAL_RANK)")
    p.add_argument("--batch-size", metavar="N", type=integer(0, 4096), default=0,
                   help="clips per network call; 0: 16 on a CPU, 128 on a GPU")
    p.add_argument("--workers", metavar="N", type=WORKERS, default=default_workers(),
                   help="decoding worker processes per rank (the rank's share of the CPUs, less "
                   "one for the network)")
    p.add_argument("--chunk-clips", metavar="N", type=integer(1, 1024), default=8,
                   help="clips decoded at a time per worker")
    add_shard_output_options(p, missing="that are not found")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `claws extract` with one sub-command per kind of input."""
    parser = subparsers.add_parser("extract", help="videos to normalized C3D feature shards",
                                   description=__doc__)
    kinds = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    about = "UCF-Crime videos found by name under --root"
    ucf = kinds.add_parser("ucf-crime", help=about, description=about + ".")
    ucf.add_argument("--root", metavar="DIR", type=Path, required=True,
                     help="folder holding the UCF-Crime videos at any depth")
    about = "ShanghaiTech, the weakly supervised split of Zhong et al."
    sht = kinds.add_parser("shanghaitech", help=about, description=about)
    sht.add_argument("--root", metavar="DIR", type=Path, required=True,
                     help="dataset root holding training/videos/ and testing/frames/")
    add_list_options(ucf, sht)
    about = "Footage of any kind: a folder of videos or frame folders, a video file, or a CSV manifest"
    foot = kinds.add_parser("footage", help=about, description=about + ".")
    foot.add_argument("source", type=Path,
                      help="folder (optional normal/ and anomalous/ subfolders label the videos), "
                      "video file, or .csv with the header path,label,split")
    foot.add_argument("--split", choices=("train", "test"), default=None,
                      help="split of the videos that have none (normalization statistics come "
                      "from 'train'); default: they keep none")
    for sub in (ucf, sht, foot):
        _common(sub)
        sub.set_defaults(func=run)


def dataset_items(args: argparse.Namespace) -> list[VideoItem]:
    """The job's videos; DatasetError before any work when something is missing."""
    if args.dataset == "footage":
        from dataclasses import replace

        from claws.extract.resume import job_outputs
        from claws.pipeline.lock import LOCK_NAME

        items = footage_items(args.source, allow_missing=args.allow_missing,
                              exclude=[*job_outputs(args.out), args.out / LOCK_NAME])
        return [i if i.split or not args.split else replace(i, split=args.split) for i in items]
    if args.dataset == "ucf-crime":
        items, missing = ucf_crime_items(args.root, args.train_list, args.test_annotation)
    else:
        items, missing = shanghaitech_items(args.root, args.train_list, args.test_list)
    if missing and not args.allow_missing:
        raise DatasetError(
            f"{len(missing)} listed videos not found under {args.root} (e.g. {', '.join(missing[:5])});"
            " fix the root or pass --allow-missing"
        )
    if missing:
        logger.warning("%d listed videos not found, skipped: %s", len(missing), ", ".join(missing[:20]))
    if not items:
        raise DatasetError(f"no listed video found under {args.root}")
    return items


def build_network(args: argparse.Namespace, device: str):
    """(network callable, picklable preprocess, extractor dict) for the `claws extract` options."""
    from claws.extract.c3d import build_extractor

    built = build_extractor(args.weights, device=device, precision=args.precision, seed=args.seed,
                            mean=args.mean, feature_dim=args.feature_dim)
    return built.network, built.preprocess, built.identity


def run(args: argparse.Namespace) -> int:
    """Run the job; 0 when every video is in the shards, 1 when any failed, 2 on bad input."""
    import torch

    from claws.extract.distributed import init_rank, rank_device, shutdown
    from claws.extract.engine import default_batch_size
    from claws.extract.job import JobConfig, existing_stats, run_job
    from claws.pipeline.training.checkpoint import stats_from
    from claws.pipeline.lock import folder_lock

    try:
        items = dataset_items(args)
        if args.stats_from is not None and not args.stats_from.exists():
            raise DatasetError(f"--stats-from {args.stats_from} does not exist")
        # read (a checkpoint verified) before any work; its feature dim is checked by the job
        given = None if args.stats_from is None else stats_from(args.stats_from)
        if args.stats_from is None and not any(i.split == "train" for i in items) \
                and existing_stats(args.out) is None:
            raise DatasetError(
                f"none of the {len(items)} videos is in the training split, so there are no "
                "statistics to normalize with: pass --stats-from (an earlier run's shards, or the "
                "checkpoint/run folder you will score with), or mark training videos (--split train)"
            )
    except DatasetError as err:
        logger.error("%s", err)
        return 2
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    rank = init_rank(device)  # ValueError (exit 2): --device cuda:N under torchrun
    try:
        device = rank_device(device, rank)
        network, preprocess, extractor = build_network(args, device)
        config = JobConfig(
            out=args.out, batch_size=args.batch_size or default_batch_size(device),
            workers=args.workers,
            chunk_clips=args.chunk_clips, device=device, shard_size=args.shard_size,
            stats=given, stats_origin=f"--stats-from {args.stats_from}",
            progress=not args.no_progress,
            created_by=f"claws {code_version(commit=False)} extract {args.dataset}",
        )
        with folder_lock(args.out, f"claws extract {args.dataset}", rank):
            result = run_job(items, network, preprocess, extractor, config, rank)
    finally:
        shutdown(rank)
    return _summary(args, result, extractor, rank.rank, len(items))


def _summary(args, result, extractor: dict, rank: int, total: int) -> int:
    if result.skipped == total and not result.shards:
        logger.info("nothing to do: all %d videos are already in the shards of %s",
                    result.skipped, args.out)
    else:
        c = result.counters
        logger.info("rank %d: %d videos extracted (%.1f clips/s), %d already done, %d shards written",
                    rank, result.extracted, c.get("clips_per_s", 0.0), result.skipped, len(result.shards))
    for vid, reason in result.failed:
        logger.error("FAILED %s: %s", vid, reason)
    if result.failed_total:
        logger.error("%d videos failed (see %s); rerun to retry them",
                     result.failed_total, args.out / "failures.jsonl")
    if extractor["random"]:
        logger.warning("these features come from RANDOM C3D weights: they are NOT real features")
    return 1 if result.failed_total else 0
