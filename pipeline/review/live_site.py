"""The review page of a live folder written by `claws watch`, the choice of page for any folder,
and `--follow` (the page rebuilt every few seconds while the job writes).

A stream folder `OUT/<name>/` gets `OUT/<name>/review/`, laid out as a scores folder's page
(claws.pipeline.review.site) with one entry per stretch: its curve so far (frames whose score is
still provisional marked as such), its events so far with their status (opened and changed ones
are open; withdrawn ones are gone), the gaps between stretches (a drop, or no job watching) and
where the stream stands (claws.pipeline.review.live). The footage of a stretch is an H.264 preview
of its recording once it has ended (--record; review/previews/stretch-<n>.mp4, transcoded once), of
an event its evidence clip (as it is when a browser plays it, else a preview); anything else is
said on the page (not recorded, recording in progress, evidence clip being recorded).

The watch folder `OUT/` gets `OUT/review/`: one entry per stream, each linking to the stream's page,
which this writes too. A page built with `refresh_s` reloads itself at that period, keeping the
view, the sort, the scroll position and the player's time (review.js).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import numpy as np
from tqdm import tqdm

from claws.pipeline.review.live import (
    CLOSED, STREAM_LINES, LiveStream, LiveStretch, is_stream_folder, is_watch_folder, read_settings,
    read_stream, stream_folders,
)
from claws.pipeline.review.site import rounded, sparkline, write_curve, write_page, write_review
from claws.pipeline.review.video import Footage, footage
from claws.pipeline.scoring.events import above_threshold_runs
from claws.pipeline.scoring.files import INDEX, REVIEW_DIR, ScoresError
from claws.pipeline.watching.job import SETTINGS

logger = logging.getLogger(__name__)

UP = f"../../{REVIEW_DIR}/index.html"  # from a stream's page to its watch folder's page
# The watch settings shown at the top of a live page (watch.json).
SETTING_FIELDS = ("window", "threshold", "min_duration_s", "merge_gap_s")


def review_folder(folder: Path, previews: bool = True, progress: bool = False,
                  refresh_s: float | None = None) -> Path:
    """Write the review page a folder gets: a scores folder's, a stream folder's or a watch
    folder's.

    Args:
        folder: written by `claws score`, or by `claws watch` (its --out, or one stream in it).
        previews: transcode footage a browser cannot play.
        progress: show a progress bar.
        refresh_s: the page reloads itself at this period (seconds); None: never.

    Returns:
        The path of index.html.

    Raises:
        ScoresError: the folder is none of those (named, with what to give instead).
    """
    folder = Path(folder)
    if (folder / INDEX).is_file():
        return write_review(folder, previews=previews, progress=progress, refresh_s=refresh_s)
    if is_stream_folder(folder):
        return write_live_review(folder, previews, progress, refresh_s)
    if is_watch_folder(folder):
        return write_watch_review(folder, previews, progress, refresh_s)
    raise ScoresError(f"{folder}: no {INDEX}, {STREAM_LINES} or {SETTINGS}: give a folder written "
                      "by `claws score` (its --out), or by `claws watch` (its --out, or one "
                      "stream's folder in it)")


def follow(folder: Path, every_s: float, previews: bool = True) -> Iterator[Path]:
    """Rebuild a folder's page every `every_s` seconds, for ever (until SIGINT or SIGTERM); the
    page reloads itself at the same period. Yields the page after each build."""
    while True:
        started = time.monotonic()
        yield review_folder(folder, previews, False, every_s)
        time.sleep(max(0.0, every_s - (time.monotonic() - started)))


def write_live_review(folder: Path, previews: bool = True, progress: bool = False,
                      refresh_s: float | None = None) -> Path:
    """Write the review page of one stream's folder (`folder/review/index.html`).

    Args:
        folder: `OUT/<name>/` of `claws watch`, finished or still being written.
        previews: transcode recordings and evidence clips a browser cannot play.
        progress: show a progress bar.
        refresh_s: the page reloads itself at this period (seconds); None: never.

    Returns:
        The path of index.html.
    """
    folder = Path(folder)
    up = UP if (folder.parent / REVIEW_DIR / "index.html").is_file() else None
    return _stream_page(read_stream(folder), previews, progress, refresh_s, up)


def write_watch_review(out: Path, previews: bool = True, progress: bool = False,
                       refresh_s: float | None = None) -> Path:
    """Write the page of a watch folder (`out/review/index.html`, one entry per stream) and the
    page of each of its streams."""
    out = Path(out)
    streams = [read_stream(folder) for folder in stream_folders(out)]
    for stream in streams:
        _stream_page(stream, previews, progress, refresh_s, UP)
    run = {"kind": "watch", "folder": str(out.resolve()), **_settings(out), "refresh_s": refresh_s,
           "built": time.time()}
    page = write_page(out / REVIEW_DIR, {"run": run, "videos": [_stream_row(s) for s in streams]})
    logger.log(logging.DEBUG if refresh_s else logging.INFO, "review page of %d streams: %s",
               len(streams), page)
    return page


def _settings(out: Path) -> dict:
    """What the top of a live page shows of the settings the streams were watched with."""
    settings = read_settings(out)
    return {"checkpoint": settings.get("checkpoint_sha256"),
            **{k: settings.get(k) for k in SETTING_FIELDS},
            "precision": settings.get("precision", "not recorded"),
            "random_features": bool(settings.get("random_features")), "has_truth": False}


def _stream_page(stream: LiveStream, previews: bool, progress: bool, refresh_s: float | None,
                 up: str | None) -> Path:
    """Write one stream's page from what was read of its folder."""
    review = stream.folder / REVIEW_DIR
    gaps = {g["after_stretch"] + 1: g for g in stream.gaps}  # by the stretch after the gap
    rows = []
    for stretch in tqdm(stream.stretches, unit="stretch", disable=not progress, dynamic_ncols=True):
        shown = _recording(stream, stretch, review, previews)
        events = [{**e, "evidence": _evidence(stream, stretch, e, review, previews)}
                  for e in stretch.events]
        rows.append(_stretch_row(stretch, gaps.get(stretch.number), shown))
        write_curve(review, stretch.video_id, {
            "video_id": stretch.video_id, "fps": stretch.fps, "num_frames": len(stretch.curve),
            "scores": rounded(stretch.curve), "provisional": above_threshold_runs(~stretch.final, 0.5),
            "events": events, "truth": None, "src": shown.src, "footage": shown.note,
            "src_start_s": stretch.first_frame / stretch.fps,  # where in `src` the stretch begins
        })
    run = {"kind": "stream", "folder": str(stream.folder.resolve()), "stream": stream.name,
           "state": stream.state, "error": stream.error, **_settings(stream.folder.parent),
           "refresh_s": refresh_s, "built": time.time(), "up": up, "timeline": _timeline(stream)}
    page = write_page(review, {"run": run, "videos": rows})
    logger.log(logging.DEBUG if refresh_s else logging.INFO, "review page of stream %s (%d "
               "stretches, %s): %s", stream.name, len(rows), stream.state, page)
    return page


def _recording(stream: LiveStream, stretch: LiveStretch, review: Path, previews: bool) -> Footage:
    """The footage of a whole stretch: a preview of its recording once that is complete (made
    once, review/previews/<recording's stem>.mp4, shared by the stretches recorded into it)."""
    if stretch.recording is None:
        return Footage(None, "not recorded (watched without --record)")
    if not stream.recording_complete(stretch):
        return Footage(None, f"recording {stretch.recording.name} in progress: its preview is "
                       "made once it is complete")
    return footage({"video_id": stretch.recording.stem, "source": str(stretch.recording),
                    "fps": stretch.fps}, review, previews)


def _evidence(stream: LiveStream, stretch: LiveStretch, event: dict, review: Path,
              previews: bool) -> dict | None:
    """An event's evidence clip for the page: src (None when there is none yet), the note shown,
    and the stretch time it covers (from_s, to_s: the clip's own, once stream.jsonl reports it
    written; the closing record's plan before). None when the record names no clip."""
    written = stream.evidence.get((stretch.number, event["event"]))
    name = written.get("file") if written else event.get("evidence")
    if written and not name:
        return {"from_s": 0.0, "to_s": None, "src": None,
                "note": f"no evidence clip: {written.get('error') or 'not written'}"}
    if not name:
        return None
    span = ({"from_s": float(written["from_s"]), "to_s": written.get("to_s")} if written else
            {"from_s": float(event.get("evidence_from_s") or 0.0), "to_s": event.get("evidence_to_s")})
    path = stream.folder / name
    if not path.is_file():
        if written:
            note = f"evidence clip {name} not found (written, then removed?)"
        elif stream.running:
            note = "evidence clip being recorded"
        else:
            note = f"evidence clip {name} not found (its job ended before writing it)"
        return {**span, "src": None, "note": note}
    shown = footage({"video_id": f"evidence-{stretch.number}-{event['event']}", "source": str(path),
                     "fps": stretch.fps}, review, previews)
    return {**span, "src": shown.src, "note": f"evidence clip {name}" if shown.note == "source"
            else shown.note}


def _stretch_row(stretch: LiveStretch, gap: dict | None, shown: Footage) -> dict:
    """One row of a stream page's table."""
    curve, fps = stretch.curve, stretch.fps
    peak_at = int(np.argmax(curve)) if len(curve) else None
    return {
        "video_id": stretch.video_id, "stretch": stretch.number, "status": stretch.status,
        "num_frames": len(curve), "fps": fps, "duration_s": round(len(curve) / fps, 4),
        "final_frames": int(stretch.final.sum()),
        "peak": None if peak_at is None else round(float(curve[peak_at]), 4),
        "peak_s": None if peak_at is None else round(peak_at / fps, 4),
        **_event_counts(stretch.events), "sparkline": sparkline(curve),
        "started": stretch.opened, "last": stretch.last_wall,
        "gap_before_s": gap["gap_s"] if gap else None, "gap_kind": gap["kind"] if gap else None,
        "footage": shown.note, "curve_file": stretch.video_id,
    }


def _event_counts(events: list[dict]) -> dict:
    return {"num_events": len(events),
            "open_events": sum(e["status"] not in CLOSED for e in events),
            "event_s": round(sum(e["end_s"] - e["start_s"] for e in events), 4)}


def _stream_row(stream: LiveStream) -> dict:
    """One row of a watch folder's page: a stream, linking to its own page."""
    stretches = stream.stretches
    curve = np.concatenate([s.curve for s in stretches]) if stretches else np.zeros(0, np.float32)
    frames = sum(len(s.curve) for s in stretches)
    peak = max(stretches, key=lambda s: s.curve.max(initial=-1.0), default=None)
    return {
        "video_id": stream.name, "href": f"../{quote(stream.name)}/{REVIEW_DIR}/index.html",
        "state": stream.state, "error": stream.error, "stretches": len(stretches),
        "num_frames": frames, "duration_s": round(sum(len(s.curve) / s.fps for s in stretches), 4),
        "peak": round(float(curve.max()), 4) if frames else None,
        "peak_stretch": peak.number if frames else None,
        **_event_counts([e for s in stretches for e in s.events]),
        "gaps": len(stream.gaps), "lost_s": round(sum(g["gap_s"] or 0.0 for g in stream.gaps if g["kind"] == "lost"), 3),
        "last": max((s.last_wall for s in stretches if s.last_wall is not None), default=None),
        "sparkline": sparkline(curve),
    }


def _timeline(stream: LiveStream) -> list[dict]:
    """The stream in wall time: its stretches and the gaps between them, in order."""
    gaps = {g["after_stretch"]: g for g in stream.gaps}
    spans = []
    for stretch in stream.stretches:
        spans.append({"kind": "stretch", "stretch": stretch.number, "status": stretch.status,
                      "from": stretch.opened, "to": stretch.last_wall,
                      "duration_s": round(len(stretch.curve) / stretch.fps, 4)})
        gap = gaps.get(stretch.number)
        if gap:
            spans.append({"kind": gap["kind"], "after_stretch": gap["after_stretch"],
                          "from": gap["from"], "to": gap["to"], "gap_s": gap["gap_s"]})
    return spans
