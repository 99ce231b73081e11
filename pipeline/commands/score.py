"""`claws score`: per-frame anomaly curves, events and plots for new footage with a trained run.

Inputs are raw videos, folders of videos, frame folders (decoded and passed through C3D with the
weights the user gives, normalized with the CHECKPOINT's statistics, never statistics of the new
footage), or feature shards (`--shards DIR`). Raw input is extracted into `<out>/.features/` by the
extraction job with the checkpoint's statistics, then scored exactly like shards, so a video
scored from raw footage equals the same video scored from its shard. Per video the scores folder
gets <video_id>.npy (the per-frame curve), .csv (frame,time_s,score), .png (the curve, events
shaded) and .events.json (summary and events); for the folder index.jsonl and failures.jsonl.
Finished videos are skipped on a rerun with the same settings (checkpoint, window, threshold,
event settings); a folder holds one set of settings, so a rerun with other settings refuses (exit
2) unless --overwrite. One job at a time per --out (a second is refused, exit 2). Failures make
the exit code 1. `--review` then writes the folder's review page (`claws review`).

    torchrun --nproc_per_node=2 -m claws.pipeline.cli -- score ...   (ranks split the videos)

The `--` keeps torchrun's own parser from taking --run for an abbreviation of its --run-path.
Under torchrun each rank extracts and scores its share of the videos into the same --out, and
rank 0 alone writes index.jsonl, failures.jsonl and the review page once all are done; --shards
are split the same way. --device cuda gives each rank cuda:LOCAL_RANK (cuda:N is refused).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from claws.extract.cpu_share import default_workers
from claws.pipeline.options import FPS, WORKERS, add_c3d_options, add_event_options



def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `score` sub-command."""
    p = subparsers.add_parser(
        "score", help="per-frame anomaly curves, events and plots for videos or shards",
        description=__doc__,
    )
    p.add_argument("inputs", nargs="*", type=Path, metavar="INPUT",
                   help="videos, folders of videos, or frame folders (none with --shards)")
    p.add_argument("--run", metavar="RUN", type=Path, required=True,
                   help="training run directory (its latest checkpoint) or a checkpoint file")
    p.add_argument("--out", metavar="DIR", type=Path, required=True, help="scores folder to write")
    p.add_argument("--shards", metavar="DIR", type=Path,
                   help="score the videos of these feature shards instead")
    p.add_argument("--split", choices=("train", "test"), default=None,
                   help="with --shards: only videos of this split; default: all")
    raw = p.add_argument_group("raw input (videos and frame folders)")
    add_c3d_options(raw)
    raw.add_argument("--fps", metavar="FPS", type=FPS, default=0.0,
                     help="frame rate of frame folders, which carry none (0: the decoder's default)")
    raw.add_argument("--device", metavar="DEVICE", default="cpu",
                     help="device of C3D: cpu, cuda or cuda:N (under torchrun: cuda, each rank "
                     "takes cuda:LOCAL_RANK)")
    raw.add_argument("--workers", metavar="N", type=WORKERS, default=default_workers(),
                     help="decoding worker processes (the CPUs less one)")
    add_event_options(p)
    p.add_argument("--overwrite", action="store_true",
                   help="rescore finished videos; outputs in --out of videos scored with other "
                   "settings that this run does not rescore are removed (never mixed)")
    p.add_argument("--review", action="store_true",
                   help="also write OUT/review/index.html, a page to watch each video beside its "
                   "curve (see `claws review`)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `claws score`; 0 when every video was scored, 1 otherwise, 2 on bad input (the same on
    every rank under torchrun)."""
    from claws.extract.distributed import barrier, init_rank, rank_device, shutdown
    from claws.pipeline.scoring.inputs import RawFootage  # torch, h5py, matplotlib
    from claws.pipeline.scoring.files import INDEX
    from claws.pipeline.scoring.job import ScoreJob, run as score

    rank = init_rank(args.device)  # ValueError (exit 2): --device cuda:N under torchrun
    try:
        footage = RawFootage(
            inputs=list(args.inputs), weights=args.weights, mean=args.mean,
            precision=args.precision, fps=args.fps, device=rank_device(args.device, rank),
            workers=args.workers, progress=not args.no_progress,
        ) if args.inputs else None
        code = score(ScoreJob(
            run=args.run, out=args.out, footage=footage, shards=args.shards, split=args.split,
            threshold=args.threshold, min_duration=args.min_duration, merge_gap=args.merge_gap,
            window=args.window, overwrite=args.overwrite, progress=not args.no_progress,
        ), rank)
        index = args.out / INDEX
        if (args.review and rank.rank == 0 and code != 2 and index.is_file()
                and index.read_text().strip()):
            from claws.pipeline.review.site import write_review  # PyAV for previews

            write_review(args.out, progress=not args.no_progress)
        barrier(rank)  # torchrun stops every rank once one ends with an error: wait for the page
    finally:
        shutdown(rank)
    return code
