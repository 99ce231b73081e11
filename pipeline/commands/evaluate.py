"""`claws evaluate`: frame-level AUC, AP, false alarms and per-class AUC, with a report folder.

Scores come from a folder written by `claws score`, or are computed in memory from a run and
feature shards (`--run RUN --shards DIR`). Ground truth comes from exactly one of: the UCF-Crime
temporal annotation file (`--ucf-annotations`, with `--ucf-frame-counts Test_Annotation.txt` or
the curve lengths for the frame counts), ShanghaiTech masks plus the split file
(`--sht-masks DIR --sht-split SH_Test_NEW.txt`), or an interval CSV (`--intervals`,
`video,start_frame,end_frame`, 0-based, end exclusive). The annotation defines the test set: an
annotated video without scores or a curve of the wrong length is an error naming the videos; an
annotation that ends past a video's end is clipped and counted as a warning, one that lies
entirely past it is an error naming file, line and video; scored videos that are not annotated
are listed and left out. `--review` then writes the scores folder's review page (`claws review`)
with the annotated intervals under each curve.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from claws.pipeline.options import SCORE


def _reference(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=CSV, got {text!r}")
    return name, Path(path)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `evaluate` sub-command."""
    p = subparsers.add_parser(
        "evaluate", help="frame-level AUC and a report folder from scores and ground truth",
        description=__doc__,
    )
    p.add_argument("scores", nargs="?", type=Path, metavar="SCORES",
                   help="scores folder written by `claws score`")
    p.add_argument("--run", metavar="RUN", type=Path,
                   help="or: a run (or checkpoint) to score --shards with")
    p.add_argument("--shards", metavar="DIR", type=Path,
                   help="feature shards of the test videos (with --run)")
    p.add_argument("--split", choices=("train", "test"), default=None,
                   help="with --shards: only videos of this split; default: all")
    p.add_argument("--out", metavar="DIR", type=Path, required=True, help="report folder to write")
    gt = p.add_argument_group("ground truth (exactly one source)")
    gt.add_argument("--ucf-annotations", metavar="FILE", type=Path,
                    help="Temporal_Anomaly_Annotation.txt")
    gt.add_argument("--ucf-frame-counts", metavar="FILE", type=Path,
                    help="Test_Annotation.txt (frame counts); default: the curve lengths")
    gt.add_argument("--sht-masks", metavar="DIR", type=Path,
                    help="ShanghaiTech test_frame_mask/ folder")
    gt.add_argument("--sht-split", metavar="FILE", type=Path, help="SH_Test_NEW.txt (or SH_Test.txt)")
    gt.add_argument("--intervals", metavar="CSV", type=Path,
                    help="CSV video,start_frame,end_frame (0-based, end exclusive)")
    p.add_argument("--videos", metavar="FILE", type=Path, default=None,
                   help="evaluate only these annotated videos: a text file with one video id per "
                   "line (or a CSV with a 'video' column), e.g. the part of a test set you hold")
    p.add_argument("--threshold", metavar="SCORE", type=SCORE, default=0.5,
                   help="score threshold of the false-alarm rate")
    p.add_argument("--reference-roc", type=_reference, action="append", default=[],
                   metavar="NAME=CSV", help="reference ROC curve to draw beside ours (first column "
                   "FPR, second TPR); repeat for several")
    p.add_argument("--name", metavar="NAME", default=None,
                   help="label of our curve; default: the run name")
    p.add_argument("--no-video-plots", action="store_true", help="skip videos/<id>.png")
    p.add_argument("--review", action="store_true",
                   help="also write SCORES/review/index.html (see `claws review`) with the ground "
                   "truth drawn under each curve; needs a scores folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `claws evaluate`; exit code 0 on success, 2 on inconsistent input."""
    if args.review and not args.scores:
        raise argparse.ArgumentError(None, "--review writes the page into a scores folder: give "
                                     "SCORES (run `claws score` first), not --run/--shards")
    from claws.pipeline.evaluation.job import EvaluateJob, run as evaluate  # numpy, matplotlib, torch

    done = evaluate(EvaluateJob(
        out=args.out, scores=args.scores, run=args.run, shards=args.shards, split=args.split,
        ucf_annotations=args.ucf_annotations, ucf_frame_counts=args.ucf_frame_counts,
        sht_masks=args.sht_masks, sht_split=args.sht_split, intervals=args.intervals,
        videos=args.videos, threshold=args.threshold, reference_roc=dict(args.reference_roc),
        name=args.name, video_plots=not args.no_video_plots, progress=not args.no_progress,
    ))
    if args.review and done.code == 0:
        from claws.pipeline.review.site import write_review  # PyAV for previews

        write_review(args.scores, done.frame_labels, progress=not args.no_progress)
    return done.code
