"""A scores folder written without a model, in the real layout of `claws score`: synthetic curves
(a low noisy baseline, a bump over the known event), their events, and index.jsonl. For the review
page's tests and bench/review.py, where running C3D would only cost time.

Shapes: N frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from claws.pipeline.scoring.events import find_events
from claws.pipeline.scoring.files import write_index, write_video_outputs
from claws.pipeline.scoring.curve import ScoredVideo

# The run fields of a real scores folder (claws.pipeline.scoring.job._run_fields), marked as fake.
FAKE_RUN = {"checkpoint": "runs/fake/checkpoints/last.pt", "checkpoint_sha256": "0" * 64,
            "checkpoint_step": 0, "weights_sha256": "", "window": 64, "threshold": 0.5,
            "min_duration_s": 0.5, "merge_gap_s": 0.5}


def fake_curve(num_frames: int, event: tuple[int, int] | None, seed: int) -> np.ndarray:
    """(N,) float32 scores: clip-constant noise around 0.15, raised towards 0.85 inside `event`."""
    rng = np.random.default_rng(seed)
    clips = -(-num_frames // 16)
    scores = np.repeat(0.15 + 0.08 * rng.random(clips), 16)[:num_frames]
    if event is not None:
        frames = np.arange(num_frames)
        centre, half = (event[0] + event[1]) / 2, max(1.0, (event[1] - event[0]) / 2)
        scores = scores + 0.7 * np.exp(-0.5 * ((frames - centre) / (0.7 * half)) ** 4)
    return np.clip(scores, 0.0, 1.0).astype(np.float32)


def write_fake_scores(
    out: Path, videos: list[dict], random_features: bool = True, precision: str = "fp32"
) -> Path:
    """Write a scores folder of synthetic curves.

    Args:
        out: the scores folder.
        videos: one dict per video: video_id, num_frames, fps, event ([start, end) frames or None),
            source (path of the footage, need not exist) and optionally label and seed.
        random_features: recorded in every summary, as a real run records it.
        precision: C3D precision recorded in every summary.

    Returns:
        The index.jsonl written.
    """
    for i, v in enumerate(videos):
        scores = fake_curve(v["num_frames"], v.get("event"), v.get("seed", i))
        label = v.get("label", int(v.get("event") is not None))
        scored = ScoredVideo(v["video_id"], scores, scores[::16], v["num_frames"], v["fps"],
                             str(v["source"]), label, "Anomaly" if label == 1 else "Normal",
                             random_features, precision)
        events = find_events(scores, v["fps"], FAKE_RUN["threshold"], FAKE_RUN["min_duration_s"],
                             FAKE_RUN["merge_gap_s"])
        write_video_outputs(out, scored, events, FAKE_RUN)
    return write_index(out)
