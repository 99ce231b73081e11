"""`claws review`: a review page for a scores folder, to open in a browser.

Writes SCORES/review/index.html, a static site that works from the file system, offline (no server,
no network). The triage view lists every video with its peak score, number of events, total event
time, duration and a sparkline, sortable by each; the run's checkpoint, threshold and C3D
precision are at the top, with a banner when the features came from random weights. A video's view
plays the footage beside its curve: the playhead follows the video, a click on the curve seeks it,
the events are listed and jump to their start, the threshold is drawn. Sources a browser cannot play
(AVI, MPEG-4 part 2, frame folders) get an H.264 preview (480 px wide) transcoded once into
review/previews/; a missing source is noted on the page. `claws score --review` and
`claws evaluate --review` (which adds the ground truth under the curves) write the same page.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `review` sub-command."""
    p = subparsers.add_parser("review", help="a review page (triage table, video beside its curve) "
                              "for a scores folder", description=__doc__)
    p.add_argument("scores", type=Path, metavar="SCORES", help="scores folder written by `claws score`")
    p.add_argument("--no-previews", action="store_true",
                   help="do not transcode sources a browser cannot play (their view shows the curve only)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `claws review`; 0 on success, 2 when SCORES is not a scores folder."""
    from claws.pipeline.review.site import write_review  # numpy, PyAV

    page = write_review(args.scores, previews=not args.no_previews, progress=not args.no_progress)
    print(f"review page: {page}")
    return 0
