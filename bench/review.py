"""Benchmark of the review page on a UCF-Crime-sized folder: does the triage table of 290 videos
open in under a second, and a video's view (its curve loaded on demand) too?

    .venv/bin/python bench/review.py [--videos 290] [--repeats 3]

Writes a scores folder of synthetic curves (tests/pipeline/fake_scores.py; lengths drawn around the
UCF-Crime test set's mean of 3,834 frames at 30 fps, up to 30,000), runs `claws review` on it,
then loads in headless Chromium (tests/pipeline/review_browser.py) the triage page, one video's view
(the longest video) and a trivial page that only marks itself loaded. Each page records
performance.now() when drawn; best of --repeats. Prints one JSON line: the times in ms and the
ratios over the trivial page (the cost of the page beyond opening any page in this browser).
Compare the ratios, not absolute times: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import sys
import time
from pathlib import Path

import numpy as np

from claws.pipeline.review.site import write_review

# The fake scores folder and the headless-browser helpers are test helpers (tests/pipeline/).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "pipeline"))
from fake_scores import write_fake_scores  # noqa: E402
from review_browser import chromium_binary, dump_dom, html_attribute, page_url  # noqa: E402

TRIVIAL = ("<!DOCTYPE html><html><head><script>document.addEventListener('DOMContentLoaded', "
           "function () { document.documentElement.setAttribute('data-rendered-ms', "
           "performance.now().toFixed(1)); });</script></head><body>trivial</body></html>\n")


def best_ms(url: str, attribute: str, repeats: int) -> float:
    """The smallest value of a page's timing attribute over `repeats` fresh browser runs."""
    times = []
    for _ in range(repeats):
        value = html_attribute(dump_dom(url, budget_ms=10000), attribute)
        if value is None:
            raise RuntimeError(f"{url}: the page never set {attribute}")
        times.append(float(value))
    return min(times)


def plan(count: int, seed: int) -> list[dict]:
    """UCF-Crime-like test videos: lengths around 3,834 frames at 30 fps, half with an event."""
    rng = np.random.default_rng(seed)
    videos = []
    for i in range(count):
        frames = int(np.clip(rng.lognormal(np.log(2500), 0.8), 200, 30000))
        start = int(rng.integers(0, frames // 2))
        event = (start, start + frames // 5) if i % 2 else None
        videos.append({"video_id": f"Video{i:03d}_x264", "num_frames": frames, "fps": 30.0,
                       "event": event, "source": f"/nonexistent/Video{i:03d}_x264.mp4", "seed": i})
    return videos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=290, help="synthetic videos in the folder")
    parser.add_argument("--repeats", type=int, default=3, help="page loads of each; the best counts")
    args = parser.parse_args()
    if chromium_binary() is None:
        raise SystemExit("bench/review.py needs chromium on PATH (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        scores, videos = Path(tmp) / "scores", plan(args.videos, seed=0)
        write_fake_scores(scores, videos)
        start = time.perf_counter()
        page = write_review(scores)
        write_s = time.perf_counter() - start
        trivial = Path(tmp) / "trivial.html"
        trivial.write_text(TRIVIAL)
        longest = max(videos, key=lambda v: v["num_frames"])
        trivial_ms = best_ms(page_url(trivial), "data-rendered-ms", args.repeats)
        triage_ms = best_ms(page_url(page), "data-rendered-ms", args.repeats)
        video_ms = best_ms(page_url(page, f"video={longest['video_id']}"), "data-video-ms",
                           args.repeats)
        summaries_kb = (page.parent / "summaries.js").stat().st_size / 1024
    print(json.dumps({
        "videos": args.videos, "frames": sum(v["num_frames"] for v in videos),
        "longest_video_frames": longest["num_frames"], "summaries_kb": round(summaries_kb, 1),
        "claws_review_s": round(write_s, 2), "trivial_page_ms": trivial_ms,
        "triage_ms": triage_ms, "video_view_ms": video_ms,
        "triage_over_trivial": round(triage_ms / trivial_ms, 2),
        "video_view_over_trivial": round(video_ms / trivial_ms, 2),
    }))


if __name__ == "__main__":
    main()
