"""`claws review`: a review page for a scores folder or a live folder, to open in a browser.

Writes FOLDER/review/index.html, a static site that works from the file system, offline (no
server, no network). The triage view lists every video with its peak score, number of events, total
event time, duration and a sparkline, sortable by each; the run's checkpoint, threshold and C3D
precision are at the top, with a banner when the features came from random weights. A video's view
plays the footage beside its curve: the playhead follows the video, a click on the curve seeks it,
the events are listed and jump to their start, the threshold is drawn. Sources a browser cannot play
(AVI, MPEG-4 part 2, frame folders) get an H.264 preview (480 px wide) transcoded once into
review/previews/; a missing source is noted on the page. `claws score --review` and
`claws evaluate --review` (which adds the ground truth under the curves) write the same page.

A folder written by `claws watch`, while it runs or after: for one stream (OUT/NAME) each stretch
is an entry, its curve so far (provisional scores marked), its events so far with their status, the
gaps between stretches shown; an event plays its evidence clip, an ended stretch recorded with
--record an H.264 preview of its recording. For the watch folder (OUT) one entry per stream, each
linking to the stream's page (written too). --follow rebuilds the page every SECONDS until
Ctrl-C or SIGTERM (exit 0), and the page reloads itself at that period, keeping its place.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from claws.pipeline.options import number

FOLLOW = number(0.5, 86400.0)  # seconds between rebuilds: twice a second to once a day


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `review` sub-command."""
    p = subparsers.add_parser("review", help="a review page (triage table, video beside its curve) "
                              "for a scores folder or a live folder", description=__doc__)
    p.add_argument("scores", type=Path, metavar="FOLDER",
                   help="scores folder written by `claws score`, or a folder written by "
                   "`claws watch` (its --out, or one stream's folder in it)")
    p.add_argument("--no-previews", action="store_true",
                   help="do not transcode sources a browser cannot play (their view shows the curve only)")
    p.add_argument("--follow", metavar="SECONDS", type=FOLLOW, default=None,
                   help="rebuild the page every SECONDS until Ctrl-C or SIGTERM (exit 0); the page "
                   "reloads itself as often")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `claws review`; 0 on success (also when --follow is stopped by a signal), 2 when
    FOLDER is neither a scores folder nor a live folder."""
    from claws.pipeline.review.live_site import follow, review_folder  # numpy, PyAV

    if args.follow is None:
        page = review_folder(args.scores, previews=not args.no_previews,
                             progress=not args.no_progress)
        print(f"review page: {page}")
        return 0
    pages = follow(args.scores, args.follow, previews=not args.no_previews)
    try:
        print(f"review page: {next(pages)} (rebuilt every {args.follow:g} s until Ctrl-C)",
              flush=True)
        for _ in pages:
            pass
    except KeyboardInterrupt:
        print("stopped following; the page stays as last built", flush=True)
    return 0
