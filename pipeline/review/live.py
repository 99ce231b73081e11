"""Reading a live folder written by `claws watch` (claws.pipeline.watching.job), while its job
writes it.

A watch folder OUT holds watch.json (the settings) and one folder per stream. A stream folder
holds JSON-lines files, appended and flushed line by line: stream.jsonl (opened, stream lost,
frames dropped, stretch ended, evidence clip written, finished, failed), clips.jsonl (each clip's provisional score, later its final one),
events.jsonl (each change of an event); per ended stretch `stretch-<n>.npy` (its final curve), with
--record `stretch-<n>.ts`, and per closed event its evidence clip (the record names it).

Reading is safe while the job writes:
- a last line without its newline is the writer's line in progress and is left out (a broken line
  before the last is an error naming the file and line: that is not a writer at work);
- the files are read in the order the job makes them depend on each other (stream.jsonl, then
  events.jsonl, then clips.jsonl), so every event read lies inside the curve read after it;
- a stretch's curve is its .npy once stream.jsonl says it ended (the .npy is written atomically,
  before that line), else it is built from the latest line of each clip of clips.jsonl; frames
  whose latest line is provisional are marked so;
- the job holds OUT/.claws.lock while it runs (claws.pipeline.lock): the file is only read, never
  locked (a watch starting at that moment must not be refused), to tell a live stream from one
  whose job has ended.

Shapes: N frames of a stretch.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from claws.pipeline.lock import LOCK_NAME
from claws.pipeline.watching.job import SETTINGS, STREAM_LINES
from claws.pipeline.watching.stretch import CLIP_LINES, EVENT_LINES

logger = logging.getLogger(__name__)

# The files of a stream folder (the names claws.pipeline.watching.job and .stretch write).
CLOSED = ("confirmed", "interrupted", "stopped")  # an event's last status; the others are open


@dataclass
class LiveStretch:
    """One stretch of a stream as far as it has been written."""

    number: int
    fps: float
    opened: float | None  # wall time it opened
    recording: Path | None  # its recording (--record), whether or not it exists yet
    first_frame: int  # frame of the recording the stretch begins at (stretches may share one)
    ended: dict | None  # its "stretch ended" record; None while it is open
    status: str  # live, open (no job writes it any more) or the end's: confirmed, interrupted, stopped
    curve: np.ndarray  # (N,) float32, the latest score of every frame
    final: np.ndarray  # (N,) bool, frames whose score is final
    events: list[dict]  # the latest record of each event not withdrawn, by event number
    last_wall: float | None  # the latest wall time written for it

    @property
    def video_id(self) -> str:
        return f"stretch-{self.number}"


@dataclass
class LiveStream:
    """One stream's folder: its stretches, the gaps between them, and where it stands."""

    name: str
    folder: Path
    state: str  # live, reconnecting, opening, finished, failed, stopped or not running
    error: str | None  # why it failed
    running: bool  # a job writes the folder now
    stretches: list[LiveStretch] = field(default_factory=list)
    # between consecutive stretches: after_stretch, from, to (wall), gap_s and kind ("lost": the
    # stream was lost and reopened; "unwatched": no job watched it; else the name of the
    # stream.jsonl record that says why the stretch ended there, such as dropped clips)
    gaps: list[dict] = field(default_factory=list)
    # (stretch, event) -> the stream.jsonl record of its evidence clip once written (or failed):
    # file (None when it failed, with the error) and the stretch times from_s, to_s it covers
    evidence: dict[tuple[int, int], dict] = field(default_factory=dict)

    def recording_complete(self, stretch: LiveStretch) -> bool:
        """Whether a stretch's recording is written to its end: no job writes it any more, or the
        stream has finished, or a later stretch records into another file (a stretch ended while
        the source stays open, such as by dropped clips, goes on in the same file)."""
        if not self.running or self.state in ("finished", "failed"):
            return True
        return any(s.number > stretch.number and s.recording != stretch.recording
                   for s in self.stretches)


def read_lines(path: Path) -> list[dict]:
    """The complete lines of a JSON-lines file being appended to ([] when it does not exist yet).

    Raises:
        ValueError: a line before the last is not JSON (names the file and line).
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    lines.pop()  # "" after the last newline, or the line the writer has not finished
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not a JSON line ({err}); only the last line of a "
                             "file `claws watch` writes may be unfinished: the file was changed by "
                             "something else") from None
    return records


def is_stream_folder(folder: Path) -> bool:
    """Whether `folder` is one stream's folder of a watch folder."""
    return (Path(folder) / STREAM_LINES).is_file()


def is_watch_folder(folder: Path) -> bool:
    """Whether `folder` is a `claws watch --out` folder (its settings file, or stream folders)."""
    folder = Path(folder)
    return (folder / SETTINGS).is_file() or bool(stream_folders(folder))


def stream_folders(out: Path) -> list[Path]:
    """The stream folders of a watch folder, by name."""
    out = Path(out)
    return sorted(p for p in out.iterdir() if is_stream_folder(p)) if out.is_dir() else []


def read_settings(out: Path) -> dict:
    """The watch folder's settings (watch.json), {} when it has none."""
    path = Path(out) / SETTINGS
    return json.loads(path.read_text()) if path.is_file() else {}


def job_running(out: Path) -> bool:
    """Whether a `claws watch` job holds the watch folder now (its lock file is there, naming a
    process that is alive when it is of this host)."""
    path = Path(out) / LOCK_NAME
    try:
        holder = json.loads(path.read_text() or "{}")
    except FileNotFoundError:
        return False
    except (OSError, json.JSONDecodeError):
        return True  # being written by a job taking the lock
    pid = holder.get("pid") if isinstance(holder, dict) else None
    if isinstance(pid, int) and holder.get("host") == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False  # killed: its lock file was left behind
        except PermissionError:
            pass
    return True


def read_stream(folder: Path) -> LiveStream:
    """Everything written so far in a stream's folder (see the module docstring)."""
    folder = Path(folder)
    records = read_lines(folder / STREAM_LINES)
    events = _latest(read_lines(folder / EVENT_LINES), "event")
    clips = _latest(read_lines(folder / CLIP_LINES), "clip")
    running = job_running(folder.parent)
    ended = {r["stretch"]: r for r in records if r.get("record") == "stretch ended"}
    stretches = []
    for opened in (r for r in records if r.get("record") == "opened"):
        number = opened["stretch"]
        end = ended.get(number)
        curve, final = _curve(folder, end, clips.get(number, {}))
        shown = [e for _, e in sorted(events.get(number, {}).items()) if e["status"] != "withdrawn"]
        walls = [r["wall"] for r in (*clips.get(number, {}).values(), *shown, *([end] if end else []))
                 if r.get("wall") is not None]
        recording = opened.get("recording")
        stretches.append(LiveStretch(
            number, float(opened["fps"]), opened.get("wall"),
            folder / Path(recording).name if recording else None,
            int(opened.get("first_frame") or 0), end,
            end["status"] if end else ("live" if running else "open"), curve, final, shown,
            max(walls, default=opened.get("wall"))))
    evidence = {(r["stretch"], r["event"]): r for r in records if r.get("record") == "evidence"}
    last = next((r for r in reversed(records) if r.get("record") != "evidence"), {})
    return LiveStream(folder.name, folder, _state(last, stretches, running), last.get("error"),
                      running, stretches, _gaps(records, stretches), evidence)


def _latest(records: list[dict], key: str) -> dict[int, dict[int, dict]]:
    """stretch -> number (clip or event) -> its latest record."""
    latest: dict[int, dict[int, dict]] = {}
    for record in records:
        latest.setdefault(record["stretch"], {})[record[key]] = record
    return latest


def _curve(folder: Path, end: dict | None, clips: dict[int, dict]) -> tuple[np.ndarray, np.ndarray]:
    """(N,) scores and (N,) final flags of a stretch: its .npy once ended, else its clip lines."""
    if end is not None and end.get("curve"):
        path = folder / end["curve"]
        try:
            curve = np.load(path).astype(np.float32)
        except (OSError, ValueError) as err:
            logger.warning("%s: unreadable (%s); the curve comes from %s", path, err, CLIP_LINES)
        else:
            if curve.shape == (end["frames"],):
                return curve, np.ones(len(curve), bool)
            logger.warning("%s: %s frames, but %s says %d; the curve comes from %s", path,
                           curve.shape, STREAM_LINES, end["frames"], CLIP_LINES)
    num_frames = max((c["frames"][1] for c in clips.values()), default=0)
    curve, final = np.zeros(num_frames, np.float32), np.zeros(num_frames, bool)
    for clip in clips.values():
        first, last = clip["frames"]
        curve[first:last], final[first:last] = clip["score"], clip["final"]
    return curve, final


def _state(last: dict, stretches: list[LiveStretch], running: bool) -> str:
    """Where a stream stands, from its last record and whether its job runs."""
    if last.get("record") in ("finished", "failed"):
        return last["record"]
    if last.get("record") == "stretch ended" and last.get("status") == "stopped":
        return "stopped"
    if not running:
        return "not running"
    if stretches and stretches[-1].ended is None:
        return "live"
    return "reconnecting" if stretches else "opening"


def _gaps(records: list[dict], stretches: list[LiveStretch]) -> list[dict]:
    """The gap after each stretch but the last: the record naming it (`after_stretch`: the
    stream lost, clips dropped), else the time no job watched the stream."""
    said = {r["after_stretch"]: r for r in records if "after_stretch" in r}
    gaps = []
    for before, after in zip(stretches, stretches[1:]):
        record = said.get(before.number)
        if record is not None:
            start, end = record.get("from"), record.get("to")
            kind = "lost" if record.get("record") == "stream lost" else str(record.get("record"))
        else:
            start, end, kind = before.last_wall, after.opened, "unwatched"
        gap_s = record.get("gap_s") if record is not None else None
        if gap_s is None and start is not None and end is not None:
            gap_s = round(end - start, 3)
        gaps.append({"after_stretch": before.number, "from": start, "to": end, "gap_s": gap_s,
                     "kind": kind})
    return gaps
