"""`claws watch`: live anomaly scores and events for streams (cameras, network feeds, files).

A SOURCE is anything FFmpeg opens through PyAV: rtsp:// (over TCP), tcp://, udp://, http(s)://,
/dev/videoN (V4L2), a file (--follow: one still being written); --streams FILE adds `name,url`
lines. Each stream is
decoded into 16-frame clips as frames arrive, passed through C3D (one network for all streams of
the process, their clips batched together), normalized with the checkpoint's statistics and
scored with the training run's windows of b clips, counted from the first clip of each
uninterrupted stretch. A clip gets a provisional score at once, from its still-open window filled
as offline scoring fills a video's last window (what `claws score` would give were the stream to
end now); when the window holds b clips, or the stretch ends, the scores are final: a stretch's
final curve is what `claws score` gives for its recording (--record), to C3D's float rounding.
Each stream writes OUT/<name>/: clips.jsonl (provisional and final clip scores), events.jsonl
(events opened, changed, withdrawn, confirmed, interrupted, stopped), stream.jsonl (opened,
stream lost with the gap's start and end, frames dropped, stretch ended, evidence written,
finished or failed), stretch-<n>.npy (a stretch's final frame curve), evidence/<stretch>-<event>.mp4
(each event from --evidence-before seconds before its start to --evidence-after after its end)
and with --record stretch-<n>.ts (its packets remuxed, no re-encode). Every line is flushed as it
is written and never rewritten; a rerun into the same OUT appends. Each event change is one line
on stdout, and is handed to --on-event and --webhook. A lost network stream is reopened (backoff
0.5 s doubling to 5 s) for --reconnect seconds; no clip spans the gap: a new stretch starts. When
scoring is slower than real time, a network stream drops whole clips (counted in stream.jsonl)
and a new stretch starts; --no-drop waits instead. SIGINT/SIGTERM end every stretch in progress
(its events "stopped") and exit 0. A source that never opens is an error for that stream; the
others go on and the exit code is 1. MIL runs are refused (MIL scores the 32 segments of a whole
video; a stream has no end). One job at a time per --out.

    torchrun --nproc_per_node=2 -m claws.pipeline.cli -- watch ...   (ranks split the streams)

Under torchrun stream i goes to rank i mod the number of ranks; each rank has its own C3D
(--device cuda: cuda:LOCAL_RANK), and all return the worst exit code once every rank is done.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from claws.pipeline.options import SECONDS, add_c3d_options, add_event_options


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `watch` sub-command."""
    p = subparsers.add_parser(
        "watch", help="live anomaly scores and events for streams as frames arrive",
        description=__doc__,
    )
    p.add_argument("sources", nargs="*", metavar="SOURCE",
                   help="streams or files: rtsp://, tcp://, udp://, http(s)://, /dev/videoN, a "
                   "path")
    p.add_argument("--streams", metavar="FILE", type=Path,
                   help="more streams: a CSV of `name,url` lines (a header line name,url and "
                   "# comments allowed)")
    p.add_argument("--run", metavar="RUN", type=Path, required=True,
                   help="training run directory (its latest checkpoint) or a checkpoint file")
    p.add_argument("--out", metavar="DIR", type=Path, required=True,
                   help="folder with one folder per stream")
    p.add_argument("--name", metavar="NAME", action="append", default=None,
                   help="the stream's folder name, once per SOURCE in order; default: made from "
                   "the source")
    p.add_argument("--record", action="store_true",
                   help="remux each stretch of each stream into OUT/<name>/stretch-<n>.ts")
    p.add_argument("--reconnect", metavar="SECONDS", type=SECONDS, default=30.0,
                   help="how long a lost network stream, or one that does not open, is retried")
    p.add_argument("--timeout", metavar="SECONDS", type=SECONDS, default=10.0,
                   help="a read waiting longer loses the stream (0: FFmpeg's default); a followed "
                   "file not grown for this long has ended")
    p.add_argument("--no-drop", dest="drop", action="store_false",
                   help="wait for the scoring instead of dropping clips when it is slower than "
                   "real time (for a sender that waits for its reader, e.g. a recording served "
                   "over the network; a camera does not wait)")
    p.add_argument("--follow", action="store_true",
                   help="file sources are still being written: follow them like `tail -f` "
                   "(MPEG-TS, Matroska, fragmented MP4), waiting up to --reconnect for them to "
                   "appear")
    tell = p.add_argument_group("integrations")
    tell.add_argument("--on-event", metavar="CMD",
                      help="shell command run for each event change and evidence clip: the JSON "
                      "record on its stdin, CLAWS_STREAM, CLAWS_STATUS, CLAWS_EVENT, CLAWS_PEAK, "
                      "CLAWS_START_S, CLAWS_END_S, CLAWS_EVIDENCE... in its environment")
    tell.add_argument("--webhook", metavar="URL",
                      help="POST each event change and evidence clip as JSON to URL")
    evidence = p.add_argument_group("evidence clips")
    evidence.add_argument("--no-evidence", dest="evidence", action="store_false",
                          help="do not save events as MP4s in OUT/<name>/evidence/")
    evidence.add_argument("--evidence-before", metavar="SECONDS", type=SECONDS, default=5.0,
                          help="footage kept before an event's start in its evidence clip")
    evidence.add_argument("--evidence-after", metavar="SECONDS", type=SECONDS, default=5.0,
                          help="footage kept after a confirmed event's end in its evidence clip")
    c3d = p.add_argument_group("C3D")
    add_c3d_options(c3d)
    c3d.add_argument("--device", metavar="DEVICE", default="cpu",
                     help="device of C3D and the model: cpu, cuda or cuda:N")
    add_event_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `claws watch`; 0 when every source opened (also when stopped by a signal), 1 when one
    never did, 2 on bad input (under torchrun: the worst of all ranks, on every rank)."""
    from claws.extract.distributed import init_rank, rank_device, shutdown
    from claws.pipeline.watching.job import WatchJob, run as watch  # torch, PyAV

    rank = init_rank(args.device)  # ValueError (exit 2): --device cuda:N under torchrun
    try:
        return watch(WatchJob(
            sources=list(args.sources), run=args.run, out=args.out, names=args.name,
            streams=args.streams, weights=args.weights, mean=args.mean,
            precision=args.precision, device=rank_device(args.device, rank),
            threshold=args.threshold, min_duration=args.min_duration, merge_gap=args.merge_gap,
            window=args.window, record=args.record, reconnect=args.reconnect,
            timeout=args.timeout, follow=args.follow, drop=args.drop, evidence=args.evidence,
            evidence_before=args.evidence_before, evidence_after=args.evidence_after,
            on_event=args.on_event, webhook=args.webhook,
        ), emit=lambda line: print(line, flush=True), rank=rank)
    finally:
        shutdown(rank)
