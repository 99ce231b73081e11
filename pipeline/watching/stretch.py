"""Scoring one stretch of a live stream as it grows: provisional and final clip scores, and its
events as they open, change and close.

A stretch is scored like one video of `claws score`, with the offline windows (DESIGN.md "Batches
and NSM windows"): window k holds clips kb .. kb+b-1 counted from the stretch's first clip. While
window k is open (it holds fewer than b clips), it is filled by the offline rule for a video's last
window: padded cyclically with the stretch's own clips (claws.model.windows.video_windows of the
clips so far), so a clip's provisional score is what `claws score` would give if the stream ended
now. When the window holds b clips it closes and its scores are final; when the stretch ends its
last, partial window is final as it stands (padded exactly as offline pads a video's last window).
Scores come from claws.model.inference.clip_scores, features are normalized with the checkpoint's
statistics (NormStats.normalize, as the extraction job does), and frame curves from
claws.data.clips, so normalization, windows and scoring are the code of `claws score`.

Events are the offline rule (claws.pipeline.scoring.events.find_events: threshold, shortest event,
merge gap) applied to the curve so far, final frames and provisional ones. An event is "opened"
when it first appears, "changed" when its frames or peak move, "withdrawn" when it disappears (a
provisional score that fell back when its window closed), and "confirmed" once all its frames are
final and more than the merge gap of final frames follows it, so nothing later can extend it. When
the stretch ends, each event still open is closed with the stretch's reason: "confirmed" (a file's
end), "interrupted" (the stream was lost) or "stopped" (SIGINT or SIGTERM). A stretch ended, its
events equal those `claws score` finds in its recording.

Memory stays bounded over hours: a stretch keeps the features of its first b clips (the only
ones a last window's cyclic padding can use) and of its open window, one float per clip score, and
the events are looked for only from the first frame that can still change them (`LiveEvents.base`:
everything before it is final and too far, by more than the merge gap, from anything later).

Shapes: T clips, D feature dim, b clips per window, N frames.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import torch

from claws.data.clips import CLIP_LEN, clip_scores_to_frame_scores
from claws.model.inference import clip_scores
from claws.model.windows import video_windows
from claws.pipeline.scoring.events import Event, find_events, merged_runs
from claws.pipeline.training.checkpoint import Checkpoint

logger = logging.getLogger(__name__)

CLIP_LINES = "clips.jsonl"  # a stream's clip scores, provisional then final
EVENT_LINES = "events.jsonl"  # each change of its events
Write = Callable[[str, dict], None]  # (file name, record): one line of a stream's JSONL file


class NonFinite(ValueError):
    """A clip's features are not finite once normalized with the checkpoint's statistics."""


class Stretch:
    """One uninterrupted stretch of a stream, scored clip by clip.

    Args:
        stream: the stream's name.
        number: the stretch's number within the stream.
        fps: its frame rate.
        ckpt: the checkpoint (its model and normalization statistics).
        window: b, clips per window.
        write: writes one record to one of the stream's files.
        rule: (threshold, shortest event s, merge gap s) of find_events.
    """

    def __init__(self, stream: str, number: int, fps: float, ckpt: Checkpoint, window: int,
                 write: Write, rule: tuple[float, float, float]) -> None:
        self.stream, self.number, self.fps, self.ckpt, self.window = stream, number, fps, ckpt, window
        self.write, self.rule = write, rule
        self.head: list[np.ndarray] = []  # (D,) normalized features of the first b clips
        self.open: list[np.ndarray] = []  # (D,) normalized features of the open window's clips
        self.count = 0  # clips so far
        self.scores: list[float] = []  # the latest score of every clip (final up to `final`)
        self.final = 0  # clips whose score is final
        self.num_frames = 0
        self.events = LiveEvents(self)

    def add(self, raw: np.ndarray, frames: int, arrived: float, wall: float) -> None:
        """Score the next clip from its raw C3D features (D,) whose last frame arrived at
        `arrived`; its window closes at b clips. `wall` is when the clip's lines are written."""
        with np.errstate(over="ignore"):
            feature = self.ckpt.norm_stats.normalize(raw[None])[0]
        if not np.isfinite(feature).all():
            raise NonFinite("features not finite after normalization with the checkpoint's "
                            "statistics")
        self.open.append(feature)
        try:
            window_scores = self._window_scores(self.count + 1)
        except BaseException:  # SIGINT/SIGTERM while scoring: the stretch ends without this clip
            self.open.pop()
            raise
        if self.count < self.window:
            self.head.append(feature)
        index, first = self.count, self.num_frames
        self.count += 1
        self.num_frames += frames
        self.scores[self.final:] = window_scores.tolist()
        self._clip_line(index, first, frames, arrived, wall, final=False)
        if len(self.open) == self.window:
            self._close(wall)
        self.events.update(wall)

    def end(self, wall: float, status: str) -> np.ndarray:
        """Make the last window final and close the events with `status`; the final frame curve."""
        if self.open:
            self._close(wall)
        self.events.update(wall, closing=status)
        return self.curve()

    def curve(self, from_clip: int = 0) -> np.ndarray:
        """(N - 16 from_clip,) float32 frame curve of the latest scores (final ones, then
        provisional) from clip `from_clip` on."""
        scores = np.asarray(self.scores[from_clip:], np.float32)
        frames = self.num_frames - from_clip * CLIP_LEN
        return clip_scores_to_frame_scores(scores, frames) if frames > 0 else np.zeros(0, np.float32)

    def _window_scores(self, count: int) -> np.ndarray:
        """Scores of the open window's clips (`count` clips so far, the newest in `open`): the
        window filled as offline fills a last window, cyclically from the stretch's first clips."""
        index = video_windows(count, self.window).clip_index[-1]  # (b,) clips, cyclic padding
        rows = [self.open[i - self.final] if i >= self.final else self.head[i]
                for i in index.tolist()]
        window = torch.from_numpy(np.stack(rows))  # (b, D)
        device = next(self.ckpt.model.parameters()).device
        scores = clip_scores(self.ckpt.model, window.to(device), self.window)  # one window
        return scores.float().cpu().numpy()[: count - self.final]

    def _close(self, wall: float) -> None:
        """The open window's scores become final (one line per clip)."""
        for index in range(self.final, self.count):
            first = index * CLIP_LEN
            self._clip_line(index, first, min(CLIP_LEN, self.num_frames - first), None, wall,
                            final=True)
        self.final = self.count
        self.open = []

    def _clip_line(self, index: int, first: int, frames: int, arrived: float | None, wall: float,
                   final: bool) -> None:
        record = {
            "stream": self.stream, "stretch": self.number, "clip": index,
            "frames": [first, first + frames], "time_s": round(first / self.fps, 6),
            "score": float(np.float32(self.scores[index])), "final": final, "wall": wall,
        }
        if arrived is not None:  # a line written for a clip that just arrived
            record["arrived"] = arrived
        self.write(CLIP_LINES, record)


class LiveEvents:
    """The events of a stretch as its curve grows (see the module docstring)."""

    def __init__(self, stretch: Stretch) -> None:
        self.stretch = stretch
        self.open: dict[int, Event] = {}  # event number -> its latest form
        self.closed_until = 0  # frames before this belong to closed events
        self.base = 0  # clip whose first frame is the first one that can still change an event
        self.count = 0

    def update(self, wall: float, closing: str | None = None) -> None:
        """Compare the events of the curve so far with those known and write what changed."""
        stretch = self.stretch
        threshold, min_duration, merge_gap = stretch.rule
        offset = self.base * CLIP_LEN
        curve = stretch.curve(self.base)
        found = [e._replace(start_frame=e.start_frame + offset, end_frame=e.end_frame + offset,
                            start_s=(e.start_frame + offset) / stretch.fps,
                            end_s=(e.end_frame + offset) / stretch.fps,
                            peak_frame=e.peak_frame + offset)
                 for e in find_events(curve, stretch.fps, threshold, min_duration, merge_gap)
                 if e.start_frame + offset >= self.closed_until]
        final_frames = min(stretch.final * CLIP_LEN, stretch.num_frames)
        max_gap = int(round(merge_gap * stretch.fps))
        unmatched = dict(self.open)
        for event in found:
            number = next((n for n, old in unmatched.items() if _overlap(old, event)), None)
            if number is None:
                self.count += 1
                number = self.count
                self._line(number, event, "opened", wall)
            elif unmatched.pop(number) != event:
                self._line(number, event, "changed", wall)
            self.open[number] = event
            if closing is not None:
                self._close(number, closing, wall)
            elif event.end_frame + max_gap < final_frames:
                self._close(number, "confirmed", wall)
        for number, event in unmatched.items():
            del self.open[number]
            self._line(number, event, "withdrawn", wall)
        # the next search begins at the first candidate that a later frame can still extend or
        # merge with, and never after the final frames (provisional ones still change)
        pending = [start + offset for start, end in merged_runs(curve, threshold, max_gap)
                   if end + offset + max_gap >= final_frames]
        self.base = min(pending[:1] + [final_frames]) // CLIP_LEN

    def _close(self, number: int, status: str, wall: float) -> None:
        event = self.open.pop(number)
        self.closed_until = max(self.closed_until, event.end_frame)
        self._line(number, event, status, wall)

    def _line(self, number: int, event: Event, status: str, wall: float) -> None:
        stretch = self.stretch
        self.stretch.write(EVENT_LINES, {
            "stream": stretch.stream, "stretch": stretch.number, "event": number,
            "status": status, **event.to_dict(), "wall": wall,
        })


def _overlap(a: Event, b: Event) -> bool:
    return a.start_frame < b.end_frame and b.start_frame < a.end_frame
