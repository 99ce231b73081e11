"""The review page of a scores folder: `SCORES_DIR/review/index.html`, a static site for a browser.

Written by `claws review SCORES_DIR`, `claws score --review` and `claws evaluate --review` (which adds
the ground truth). It works from the file system, offline: no server, no network fetch, no
third-party code. Layout of `review/`:

    index.html        the page (triage table; `#video=ID` opens a video's view)
    review.js, .css   the page's code and style (package data: claws/pipeline/review/assets/)
    summaries.js      every video's summary and a SPARKLINE_POINTS-point sparkline: all the triage
                      table loads, so a folder of hundreds of videos opens at once
    curves/STEM.js    one video's per-frame curve, events, ground truth and footage URL, loaded by a
                      <script> tag when the video is opened (fetch() of local files is blocked on
                      file://, a script is not)
    previews/STEM.mp4 H.264 previews of sources a browser cannot play (claws.pipeline.review.video)

Every file is written atomically; curves and summaries are rewritten on each run (cheap), previews
are kept. A live folder's page (claws.pipeline.review.live_site) is the same site, its entries
stretches or streams (summaries' `run.kind`). Shapes: N frames of a video, S sparkline points.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path
from typing import Mapping

import numpy as np
from tqdm import tqdm

from claws.data.atomic import write_text
from claws.data.videos import file_stem
from claws.pipeline.scoring.events import above_threshold_runs
from claws.pipeline.metrics import video_auc
from claws.pipeline.review.video import footage
from claws.pipeline.scoring.files import EVENTS_SUFFIX, REVIEW_DIR, read_curves

logger = logging.getLogger(__name__)

ASSETS = ("review.js", "review.css")  # in claws/pipeline/review/assets/
SPARKLINE_POINTS = 80
# Run fields shown at the top of the page (the same ones every other output carries).
RUN_FIELDS = ("checkpoint", "checkpoint_step", "threshold", "min_duration_s", "merge_gap_s", "window")

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>CLAWS review</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="review.css">
<script src="review.js"></script>
<script src="summaries.js"></script>
</head>
<body>
<noscript>This page needs JavaScript (no network: everything is in this folder).</noscript>
<header id="top"></header>
<main id="main"></main>
</body>
</html>
"""


def asset_text(name: str) -> str:
    """The text of one of the page's static files (package data, found in an installed package too)."""
    return resources.files("claws.pipeline.review").joinpath("assets", name).read_text("utf-8")


def sparkline(frame_scores: np.ndarray, points: int = SPARKLINE_POINTS) -> list[float]:
    """The curve reduced to at most `points` values, each the maximum of its stretch of frames
    (a short peak stays visible in a sparkline)."""
    scores = np.asarray(frame_scores, dtype=np.float64).reshape(-1)  # (N,)
    edges = np.linspace(0, len(scores), min(points, len(scores)) + 1).round().astype(int)
    return [round(float(scores[a:b].max()), 4) for a, b in zip(edges[:-1], edges[1:])]


def truth_intervals(frame_labels: np.ndarray) -> list[list[int]]:
    """Annotated anomalous stretches as [start_frame, end_frame) pairs (0-based, end exclusive)."""
    return [[s, e] for s, e in above_threshold_runs(np.asarray(frame_labels, dtype=np.float32), 0.5)]


def _script(call: str, data: object) -> str:
    # A JS file that hands its data to the page; "</" escaped so it could be inlined too.
    text = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return f"{call}({text});\n"


def rounded(frame_scores: np.ndarray) -> list[float]:
    """A curve as the page gets it: 4 decimals (a browser draws no finer)."""
    return np.round(np.asarray(frame_scores, dtype=np.float64), 4).tolist()


def write_curve(review: Path, stem: str, curve: dict) -> Path:
    """Write `curves/STEM.js`: one video's curve, loaded by the page when the video is opened."""
    return write_text(Path(review) / "curves" / f"{stem}.js", _script("CLAWS.registerCurve", curve))


def write_page(review: Path, summaries: dict) -> Path:
    """Write the page's files into `review`: the assets, summaries.js (the triage table's data:
    `run` and `videos`) and index.html, last, so that the page opens on complete data."""
    review = Path(review)
    for name in ASSETS:
        write_text(review / name, asset_text(name))
    write_text(review / "summaries.js", _script("CLAWS.registerSummaries", summaries))
    return write_text(review / "index.html", PAGE)


def _read_events(scores: Path, video_id: str) -> list[dict]:
    data = json.loads((scores / f"{file_stem(video_id)}{EVENTS_SUFFIX}").read_text())
    return list(data.get("events", []))


def video_record(info: dict, events: list[dict], frame_scores: np.ndarray,
                 frame_labels: np.ndarray | None) -> dict:
    """One row of the triage table: the summary plus sparkline, event time and ground truth.

    With ground truth the row also holds `auc`, the video's own frame AUC (its annotated frames
    against its other frames: does the curve find the event?), None when the video is anomalous
    throughout or not at all (claws.pipeline.metrics.video_auc).
    """
    row = {k: info.get(k) for k in ("video_id", "num_frames", "fps", "duration_s", "source", "label",
                                    "class_name", "peak", "peak_s", "mean", "num_events")}
    row["event_s"] = round(sum(e["end_s"] - e["start_s"] for e in events), 4)
    row["sparkline"] = sparkline(frame_scores)
    if frame_labels is not None:
        row["truth_s"] = round(float(np.count_nonzero(frame_labels)) / float(info["fps"]), 4)
        own = video_auc(frame_labels, frame_scores)
        row["auc"] = None if own is None else round(own, 4)
    return row


def run_header(rows: list[dict], scores: Path, has_truth: bool) -> dict:
    """What the page shows at the top: folder, checkpoint, threshold, C3D precision, random weights."""
    first = rows[0] if rows else {}
    return {
        "folder": str(Path(scores).resolve()),
        **{k: first.get(k) for k in RUN_FIELDS},
        "random_features": any(r.get("random_features") for r in rows),
        "precision": ", ".join(sorted({str(r.get("precision", "unknown")) for r in rows})),
        "has_truth": has_truth,
    }


def write_review(
    scores: Path,
    truth: Mapping[str, np.ndarray] | None = None,
    previews: bool = True,
    progress: bool = False,
    refresh_s: float | None = None,
) -> Path:
    """Write the review page of a scores folder.

    Args:
        scores: a folder written by `claws score` (index.jsonl and the per-video files).
        truth: video id -> (N,) per-frame labels (1 anomalous) to draw under the curves; videos
            missing from it get none.
        previews: transcode sources a browser cannot play into review/previews/ (slow: once).
        progress: show a progress bar.
        refresh_s: the page reloads itself every this many seconds (`claws review --follow`);
            None: never.

    Returns:
        The path of index.html.

    Raises:
        ScoresError: the folder is not a complete scores folder (named, with what to do).
    """
    scores = Path(scores)
    curves, rows = read_curves(scores)
    review = scores / REVIEW_DIR
    truth = truth or {}
    videos, missing = [], 0
    for info in tqdm(rows, unit="video", disable=not progress, dynamic_ncols=True):
        vid = info["video_id"]
        events = _read_events(scores, vid)
        labels = truth.get(vid)
        shown = footage(info, review, previews)
        missing += shown.src is None
        videos.append({**video_record(info, events, curves[vid], labels), "footage": shown.note,
                       "curve_file": file_stem(vid)})
        write_curve(review, file_stem(vid), {
            "video_id": vid, "fps": info["fps"], "num_frames": info["num_frames"],
            "scores": rounded(curves[vid]), "events": events,
            "truth": truth_intervals(labels) if labels is not None else None,
            "src": shown.src, "footage": shown.note,
        })
    header = {**run_header(rows, scores, bool(truth)), "kind": "scores", "refresh_s": refresh_s}
    page = write_page(review, {"run": header, "videos": videos})
    logger.info("review page of %d videos: %s%s", len(videos), page,
                f" ({missing} without footage, noted on the page)" if missing else "")
    return page
