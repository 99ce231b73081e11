"""A run folder that describes itself: runs/<name>/{config.yaml, metrics.jsonl, train.log, checkpoints/}.

metrics.jsonl holds one JSON object per line with a "kind": "train" (every loss term averaged over
the logging interval, the clustering guard counts, lr, epoch, iterations per second), "clustering"
(one per epoch: seconds, k-means iterations, videos left in one cluster), "val" (video-level AUC
and validation losses) and "resume_other_data" (a resume on other shards, asked for with
--resume-other-data: step, what changed, the shards).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from claws.data.atomic import space_named, write_text
from claws.pipeline.training.checkpoint import LAST

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# metrics.jsonl kinds logged after the checkpoint of their step (see RunDir.truncate_metrics)
AFTER_CHECKPOINT = ("clustering", "resume_other_data")


class RunDir:
    """Paths and writers of one run folder."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.config = self.path / "config.yaml"
        self.metrics = self.path / "metrics.jsonl"
        self.log = self.path / "train.log"
        self.checkpoints = self.path / "checkpoints"
        self.last = self.checkpoints / LAST

    def prepare(self, resume: bool) -> None:
        """Create the folder for a new run, or check that a resumable one is there.

        Raises:
            FileExistsError: a new run would overwrite an earlier run's checkpoints.
            FileNotFoundError: resuming a run that has no last checkpoint.
        """
        if resume and not self.last.is_file():
            raise FileNotFoundError(f"{self.path}: nothing to resume (no checkpoints/{LAST})")
        if not resume and self.checkpoints.exists() and any(self.checkpoints.iterdir()):
            raise FileExistsError(
                f"{self.path}: a run with checkpoints exists; pass --resume to continue it "
                "or choose another --name"
            )
        self.checkpoints.mkdir(parents=True, exist_ok=True)

    def step_checkpoint(self, step: int) -> Path:
        """checkpoints/step-<step>.pt"""
        return self.checkpoints / f"step-{step}.pt"

    def write_metrics(self, record: dict[str, Any]) -> None:
        """Append one JSON line to metrics.jsonl (flushed at once; a full disk is a DiskFullError
        naming the folder)."""
        line = json.dumps(record, sort_keys=False) + "\n"
        with space_named(self.path, self.metrics.name, len(line)), self.metrics.open("a") as handle:
            handle.write(line)

    def truncate_metrics(self, step: int) -> None:
        """Drop what was logged after the checkpoint of `step` (a killed run logged past it).

        That is every line of a later step, and a "clustering" or "resume_other_data" line of
        `step` itself: an epoch's clustering is logged when its first iteration begins, with the
        step of the checkpoint saved just before, and a resume on other data is logged as it
        starts; the resumed run logs them again. The "train" and "val" lines of `step` were
        logged before its checkpoint and stay.
        """
        if not self.metrics.exists():
            return

        def before_checkpoint(record: dict) -> bool:
            at = record.get("step", 0)
            return at < step or (at == step and record.get("kind") not in AFTER_CHECKPOINT)

        text = self.metrics.read_text()
        lines = text.splitlines()
        if lines and not text.endswith("\n"):
            lines.pop()  # cut short by the kill, so written after the checkpoint
        kept = []
        for n, line in enumerate(lines, 1):
            try:
                if line.strip() and before_checkpoint(json.loads(line)):
                    kept.append(line)
            except ValueError as err:
                raise ValueError(f"{self.metrics}:{n}: not a JSON line ({err}); delete that line "
                                 "and resume again") from err
        write_text(self.metrics, "".join(line + "\n" for line in kept))

    def attach_log(self) -> logging.Handler:
        """Copy the `claws` loggers' records into train.log; detach the handler when done."""
        handler = logging.FileHandler(self.log)
        handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
        logger = logging.getLogger("claws")
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        return handler
