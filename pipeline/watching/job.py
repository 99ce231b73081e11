"""The `claws watch` job: live sources read by one thread each, their clips batched together
through one C3D network, each stretch scored as it grows (claws.pipeline.watching.stretch), and
every record written to the stream's folder as it happens.

Each stream gets `<out>/<name>/` with JSON-lines files, each line flushed when written and never
rewritten: `clips.jsonl` (every clip's provisional score when it arrives, its final score when its
window closes), `events.jsonl` (every change of an event), `stream.jsonl` (the stream opened, lost
with the gap's start and end, ended, failed); and per stretch `stretch-<n>.npy` (its final frame
curve, written when it ends) and, with `record`, `stretch-<n>.ts` (its packets, remuxed). A restart
into the same folder appends: stretches are numbered after those already there; `watch.json` holds
the settings (checkpoint, window, event rule), and a rerun with others is refused.

SIGINT and SIGTERM end the job cleanly: each stretch in progress is ended with its clips scored
so far (its events closed as "stopped"), and the job returns 0. A source that never opens is an
error for that stream alone; the others go on and the job returns 1 at the end.
"""

from __future__ import annotations

import csv
import json
import logging
import queue
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, TextIO

import numpy as np
import torch

from claws.data.atomic import save_npy, write_json
from claws.data.text_files import read_text
from claws.extract.c3d_weights import file_sha256
from claws.extract.batches import ClipChunk, NetworkBatches, read_parts
from claws.extract.distributed import Rank, all_gather
from claws.model.mil import MilNet
from claws.pipeline.lock import folder_lock
from claws.pipeline.scoring.curve import checkpoint_window, check_features
from claws.pipeline.scoring.inputs import RawFootage, extraction_settings
from claws.pipeline.training.checkpoint import Checkpoint, load_checkpoint
from claws.pipeline.watching.source import (
    RECORD_PREFIX, Clip, Dropped, Reader, Source, StreamDone, StretchEnd, StretchStart, is_file,
)
from claws.pipeline.watching.evidence import Evidence, evidence_name
from claws.pipeline.watching.notify import Notifier
from claws.pipeline.watching.stretch import EVENT_LINES, NonFinite, Stretch

logger = logging.getLogger(__name__)

STREAM_LINES = "stream.jsonl"  # a stream's life: opened, lost, dropped, ended, evidence, failed
READER_EXIT_S = 5.0  # beyond --timeout, how long a stopped reader is waited for
QUEUE_CLIPS = 8  # clips waiting between a reader and the network (5 s at 25 fps), per stream
STATUS_OF_END = {"ended": "confirmed", "lost": "interrupted", "dropped": "interrupted",
                 "restarted": "interrupted"}


@dataclass(frozen=True)
class WatchJob:
    """What `claws watch` was asked to do (its options, typed)."""

    sources: list[str]  # URLs or files
    run: Path  # training run folder or checkpoint file
    out: Path  # one folder per stream inside
    names: list[str] | None = None  # stream names; None: made from the sources
    streams: Path | None = None  # CSV of `name,url` rows: more streams
    weights: str | None = None  # C3D weights or "random"; None: the training features'
    mean: Path | None = None
    precision: str | None = None
    device: str = "cpu"
    threshold: float = 0.5
    min_duration: float = 1.0
    merge_gap: float = 1.0
    window: int | None = None  # clips per window; None: the training run's
    record: bool = False  # remux each stretch into stretch-<n>.ts
    reconnect: float = 30.0  # seconds a lost (or never opened) source is retried
    timeout: float = 10.0  # seconds a read may wait before the stream counts as lost
    follow: bool = False  # file sources are still being written: follow them like `tail -f`
    drop: bool = True  # a network source slower than real time drops clips (False: waits)
    evidence: bool = True  # save each event as an MP4 (evidence/<stretch>-<event>.mp4)
    evidence_before: float = 5.0  # seconds of footage before an event's start in its evidence
    evidence_after: float = 5.0  # seconds after its end
    on_event: str | None = None  # shell command run per event change and evidence clip
    webhook: str | None = None  # URL each of them is POSTed to as JSON


def stream_name(url: str) -> str:
    """A folder name for a source: a file's stem, else host, port and path, safe characters only."""
    text = Path(url).stem if is_file(url) else url.split("://", 1)[1]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "stream"


def stream_names(sources: list[str], names: list[str] | None) -> list[str]:
    """One unique name per source (given ones kept; made ones numbered when they collide)."""
    if names is not None:
        if len(names) != len(sources):
            raise ValueError(f"--name gives {len(names)} names for {len(sources)} sources; give one "
                             "distinct name per source")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"stream name {twice[0]!r} is given twice (--name, --streams); give "
                             "one distinct name per source")
        bad = [n for n in names if n in ("", ".", "..") or "/" in n or "\0" in n]
        if bad:
            raise ValueError(f"--name {bad[0]!r} is not a folder name; give a name without '/'")
        return names
    made: list[str] = []
    for url in sources:
        base, n = stream_name(url), 1
        name = base
        while name in made:
            n += 1
            name = f"{base}-{n}"
        made.append(name)
    return made


def read_streams(path: Path) -> tuple[list[str], list[str]]:
    """The (names, urls) of a --streams file: CSV rows `name,url`, an optional header row
    `name,url`, blank lines and lines starting with # ignored. ValueError names the file and the
    line of a row that is not two fields."""
    names, urls = [], []
    rows = csv.reader(read_text(path).splitlines())
    for number, row in enumerate(rows, 1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        row = [field.strip() for field in row]
        if number == 1 and [f.lower() for f in row] == ["name", "url"]:
            continue
        if len(row) != 2 or not all(row):
            raise ValueError(f"{path}, line {number}: {','.join(row)!r} is not `name,url`; give "
                             "one stream per line as name,url")
        names.append(row[0])
        urls.append(row[1])
    if not urls:
        raise ValueError(f"{path}: no streams (one `name,url` per line)")
    return names, urls


def job_streams(job: "WatchJob") -> tuple[list[str], list[str]]:
    """The (names, urls) of every stream of the job: SOURCEs (named by --name or after their
    URLs), then the --streams file's; names are unique folder names (ValueError otherwise)."""
    urls = list(job.sources)
    names = stream_names(urls, job.names) if urls else []
    if job.streams is not None:
        more_names, more_urls = read_streams(job.streams)
        names, urls = names + more_names, urls + more_urls
    if not urls:
        raise ValueError("no streams: give SOURCE arguments or --streams FILE")
    return stream_names(urls, names), urls


def next_stretch(folder: Path) -> int:
    """The number of the next stretch in a stream's folder (after those of earlier runs)."""
    pattern = re.compile(rf"^{RECORD_PREFIX}(\d+)\.")
    used = [int(m.group(1)) for p in folder.glob(f"{RECORD_PREFIX}*") if (m := pattern.match(p.name))]
    if (folder / STREAM_LINES).is_file():
        records = [json.loads(line) for line in (folder / STREAM_LINES).read_text().splitlines()
                   if line.strip()]
        used += [int(r["stretch"]) for r in records if "stretch" in r]
    return max(used, default=0) + 1


SETTINGS = "watch.json"  # the settings every stream of the folder was scored with


def check_settings(out: Path, fields: dict) -> None:
    """Keep a watch folder to one set of settings: the first run records them in watch.json, a
    rerun with others is refused (ValueError, exit 2) before anything is written."""
    path = out / SETTINGS
    if not path.is_file():
        return
    then = json.loads(path.read_text())
    differ = {k: (then.get(k), v) for k, v in fields.items() if then.get(k) != v}
    if differ:
        shown = "; ".join(f"{k} {a!r} there, {b!r} now" for k, (a, b) in differ.items())
        raise ValueError(f"{out} holds streams watched with other settings ({shown}); a watch "
                         "folder holds one set of settings: choose another --out")


class Lines:
    """The JSON-lines files of all streams, opened for appending; each line flushed."""

    def __init__(self, out: Path) -> None:
        self.out, self.files = out, {}
        self.lock = threading.Lock()  # the job's thread and the evidence finisher's write

    def write(self, stream: str, name: str, record: dict) -> None:
        key = (stream, name)
        with self.lock:
            if key not in self.files:
                self.files[key] = (self.out / stream / name).open("a", encoding="utf-8")
            handle: TextIO = self.files[key]
            handle.write(json.dumps(record) + "\n")
            handle.flush()

    def close(self) -> None:
        with self.lock:
            for handle in self.files.values():
                handle.close()
            self.files = {}


def run(job: WatchJob, emit: Callable[[str], None], rank: Rank = Rank()) -> int:
    """Run `claws watch`; `emit` gets one line per event change. Returns 0 when every source
    opened (also after SIGINT or SIGTERM), 1 when one never did, 2 on bad input. Under torchrun
    (`rank`, claws.extract.distributed.init_rank) the streams are dealt out to the ranks in turn
    (stream i to rank i mod world size), each rank watches its own with its own network, rank 0
    holds the folder's lock, and every rank returns the job's worst code once all are done."""
    ckpt = load_checkpoint(job.run)
    if isinstance(ckpt.model, MilNet):
        raise ValueError(f"{job.run} is a MIL checkpoint: MIL scores the 32 segments of a whole "
                         "video, and a live stream has no end to cut into segments; watch with a "
                         "CLAWS Net run")
    names, urls = job_streams(job)
    fields = {"checkpoint_sha256": file_sha256(ckpt.path), "window": job.window or
              checkpoint_window(ckpt), "threshold": job.threshold,
              "min_duration_s": job.min_duration, "merge_gap_s": job.merge_gap}
    footage = RawFootage(inputs=[], weights=job.weights, mean=job.mean, precision=job.precision,
                         device=job.device)
    settings = extraction_settings(ckpt, footage)
    from claws.extract.c3d import build_extractor
    from claws.extract.engine import default_batch_size

    built = build_extractor(settings.weights, device=job.device, precision=settings.precision,
                            seed=settings.seed, mean=settings.mean, feature_dim=settings.feature_dim)
    random_features = check_features(ckpt, settings.feature_dim, built.identity,
                                     f"C3D weights {settings.weights}")
    # what the review page shows (a random-weights banner, the precision); part of the settings
    fields.update(precision=built.identity.get("precision"), random_features=random_features)
    check_settings(job.out, fields)
    batches = NetworkBatches(built.network, default_batch_size(job.device), torch.device(job.device))
    with folder_lock(job.out, "claws watch", rank):
        if rank.rank == 0:
            check_settings(job.out, fields)  # again, now that no other job can write it
            write_json(job.out / SETTINGS, fields)
        sources = []
        for index, (name, url) in enumerate(zip(names, urls)):
            if index % rank.world_size == rank.rank:
                (job.out / name).mkdir(parents=True, exist_ok=True)
                sources.append(Source(name, url, job.out / name, next_stretch(job.out / name)))
        if rank.distributed:
            logger.info("rank %d of %d: watching %s", rank.rank, rank.world_size,
                        ", ".join(s.name for s in sources) or "no stream (more ranks than streams)")
        code = _watch(job, ckpt, sources, built.preprocess, batches, emit) if sources else 0
        if rank.distributed:
            worst = max(all_gather(code, rank))
            logger.info("rank %d of %d: exit code %d (its streams: %d; the worst of all ranks)",
                        rank.rank, rank.world_size, worst, code)
            return worst
        return code


def _watch(job: WatchJob, ckpt: Checkpoint, sources: list[Source], preprocess, batches,
           emit: Callable[[str], None]) -> int:
    """Read every source, score, write; the rest of `run` with the folder locked."""
    items: queue.Queue = queue.Queue(maxsize=QUEUE_CLIPS * len(sources))
    stop = threading.Event()
    lines = Lines(job.out)
    notifier = Notifier(job.on_event, job.webhook) if job.on_event or job.webhook else None
    if notifier is not None:
        notifier.start()
    finisher = ThreadPoolExecutor(1, thread_name_prefix="claws-evidence")
    evidence = {s.name: Evidence(s.folder, job.evidence_before, job.evidence_after, finisher,
                                 partial(_evidence_written, lines, notifier, s))
                for s in sources} if job.evidence else {}
    readers = [Reader(s, preprocess, items, stop, job.record, job.reconnect, job.timeout,
                      job.follow, job.drop, evidence.get(s.name)) for s in sources]
    watcher = _Watcher(job, ckpt, lines, batches, emit, evidence, notifier, readers)
    for reader in readers:
        reader.start()
    try:
        while watcher.finished < len(sources):
            watcher.handle(_take(items, batches.batch_size))
    except KeyboardInterrupt:
        stop.set()
        watcher.stop_all()
        logger.info("stopped: %d stretches ended as 'stopped'; everything written is in %s",
                    watcher.stopped, job.out)
        return 0
    finally:
        stop.set()
        for reader in readers:  # each finishes its evidence writers as it leaves
            reader.join(job.timeout + READER_EXIT_S)
        finisher.shutdown(wait=True)
        for clips in evidence.values():
            clips.shutdown()
        if notifier is not None:
            notifier.finish()
        lines.close()
    return 1 if watcher.failed else 0


def _evidence_written(lines: "Lines", notifier: Notifier | None, source: Source, stretch: int,
                      event: int, path: Path | None, first_s: float, last_s: float,
                      error: str | None) -> None:
    """A stream.jsonl record for an evidence clip written (or not, with the reason)."""
    record = {"stream": source.name, "record": "evidence", "stretch": stretch, "event": event,
              "file": evidence_name(stretch, event) if path is not None else None,
              "from_s": first_s, "to_s": last_s, "error": error}
    lines.write(source.name, STREAM_LINES, record)
    if notifier is not None:
        notifier.send("evidence", source.folder, record)


def _take(items: queue.Queue, most: int) -> list:
    """At least one item (waiting for it), then up to `most` clips more that are already there."""
    taken = [items.get()]
    while sum(isinstance(i, Clip) for i in taken) < most:
        try:
            taken.append(items.get_nowait())
        except queue.Empty:
            break
    return taken


class _Watcher:
    """The job's state: the stretch in progress of every stream, and the streams finished."""

    def __init__(self, job: WatchJob, ckpt: Checkpoint, lines: Lines, batches: NetworkBatches,
                 emit: Callable[[str], None], evidence: dict[str, Evidence],
                 notifier: Notifier | None, readers: list[Reader]) -> None:
        self.job, self.lines, self.batches, self.emit = job, lines, batches, emit
        self.evidence, self.notifier = evidence, notifier
        self.readers = {r.source.name: r for r in readers}  # stream name -> its reader
        self.skipped: dict[str, int] = {}  # clips queued behind an unscorable one, not scored
        self.ckpt, self.window = ckpt, job.window or checkpoint_window(ckpt)
        self.stretches: dict[str, Stretch] = {}
        self.failed: dict[str, str] = {}
        self.finished = 0  # streams finished for good
        self.stopped = 0

    def handle(self, taken: list) -> None:
        """Score the clips (one network batch), then act on the other items in order."""
        clips = [i for i in taken if isinstance(i, Clip)]
        features = self._features(clips) if clips else []
        scored = iter(zip(clips, features))
        for item in taken:
            if isinstance(item, Clip):
                clip, (raw, finite) = next(scored)
                stretch = self.stretches.get(clip.stream)
                if stretch is None or stretch.number != clip.stretch:
                    # queued behind a clip that could not be scored: its stretch has ended
                    self.skipped[clip.stream] = self.skipped.get(clip.stream, 0) + 1
                    continue
                error = None if finite else "C3D gave non-finite features"
                if error is None:
                    try:
                        stretch.add(raw, clip.frames, clip.wall, time.time())
                    except NonFinite as err:
                        error = str(err)
                if error is not None:
                    self._unscorable(clip, error)
            elif isinstance(item, StretchStart):
                self._start(item)
            elif isinstance(item, StretchEnd):
                current = self.stretches.get(item.stream)
                if current is not None and current.number == item.stretch:
                    self._end(item.stream, item.wall, STATUS_OF_END[item.reason])
            elif isinstance(item, Dropped):
                self.write(item.stream, STREAM_LINES, {
                    "stream": item.stream, "record": "frames dropped", "after_stretch":
                    item.after_stretch, "clips": item.clips, "frames": item.frames,
                    "from": item.since, "to": item.until})
            elif isinstance(item, StreamDone):
                self._done(item)

    def _features(self, clips: list[Clip]) -> list[tuple[np.ndarray, bool]]:
        """Each clip's raw C3D features (D,) and whether they are finite."""
        pieces = [ClipChunk(f"{c.stream}/{c.stretch}", c.index, c.crops[None]) for c in clips]
        parts = [part for _, part in self.batches.run(pieces)]
        features, _ = read_parts(parts)
        finite = torch.cat([p.finite for p in parts]).tolist()
        return list(zip(features.numpy(), finite))

    def _unscorable(self, clip: Clip, error: str) -> None:
        """A clip that cannot be scored ends its stretch (its events interrupted) and its stream
        goes on: the reader starts a new stretch at its next clip."""
        logger.error("stream %s, stretch %d, clip %d: %s; the stretch ends there and a new one "
                     "starts with the next clip", clip.stream, clip.stretch, clip.index, error)
        self.write(clip.stream, STREAM_LINES, {
            "stream": clip.stream, "record": "clip not scored", "stretch": clip.stretch,
            "clip": clip.index, "error": error, "wall": time.time()})
        self._end(clip.stream, time.time(), "interrupted")
        self.readers[clip.stream].restart.set()

    def write(self, stream: str, name: str, record: dict) -> None:
        if name == EVENT_LINES and stream in self.evidence:
            self._evidence(self.evidence[stream], record)
        self.lines.write(stream, name, record)
        if name == EVENT_LINES:
            self.emit(event_line(record))
            if self.notifier is not None:
                self.notifier.send("event", self.job.out / stream, record)

    def _evidence(self, evidence: Evidence, record: dict) -> None:
        """Tell the stream's reader what an event change means for its evidence clip; a closing
        record names the clip and the stretch times it is planned to cover."""
        stretch, event, status = record["stretch"], record["event"], record["status"]
        if status == "opened":
            evidence.open(stretch, event, record["start_s"])
        elif status == "withdrawn":
            evidence.discard(stretch, event)
        elif status in ("confirmed", "interrupted", "stopped"):
            after = self.job.evidence_after if status == "confirmed" else 0.0
            evidence.close(stretch, event, record["end_s"] if after else None)
            record.update(evidence=evidence_name(stretch, event),
                          evidence_from_s=round(max(0.0, record["start_s"] -
                                                    self.job.evidence_before), 3),
                          evidence_to_s=round(record["end_s"] + after, 3))

    def _start(self, item: StretchStart) -> None:
        self._skipped(item.stream, item.stretch - 1)
        if item.lost_at is not None:
            self.write(item.stream, STREAM_LINES, {
                "stream": item.stream, "record": "stream lost", "from": item.lost_at,
                "to": item.wall, "gap_s": round(item.wall - item.lost_at, 3),
                "after_stretch": item.stretch - 1})
        self.write(item.stream, STREAM_LINES, {
            "stream": item.stream, "record": "opened", "stretch": item.stretch, "fps": item.fps,
            "wall": item.wall, "recording": item.recording, "first_frame": item.first_frame})
        self.stretches[item.stream] = Stretch(
            item.stream, item.stretch, item.fps, self.ckpt, self.window,
            lambda name, record, s=item.stream: self.write(s, name, record),
            (self.job.threshold, self.job.min_duration, self.job.merge_gap))

    def _end(self, stream: str, wall: float, status: str) -> None:
        stretch = self.stretches.pop(stream, None)
        if stretch is None:
            return
        record = {"stream": stream, "record": "stretch ended", "stretch": stretch.number,
                  "status": status, "clips": stretch.count,
                  "frames": stretch.num_frames, "wall": wall}
        if stretch.count:
            curve = stretch.end(wall, status)
            path = save_npy(self.job.out / stream / f"{RECORD_PREFIX}{stretch.number}.npy", curve)
            record["curve"] = path.name
        if stream in self.evidence:
            self.evidence[stream].forget(stretch.number)
        self.write(stream, STREAM_LINES, record)

    def _skipped(self, stream: str, stretch: int) -> None:
        """Count the clips that were queued behind an unscorable clip of `stretch`."""
        count = self.skipped.pop(stream, 0)
        if count:
            logger.warning("stream %s: %d clips queued behind the clip that could not be scored "
                           "were not scored", stream, count)
            self.write(stream, STREAM_LINES, {"stream": stream, "record": "clips skipped",
                                                "after_stretch": stretch, "clips": count})

    def _done(self, item: StreamDone) -> None:
        self._skipped(item.stream, 0)
        self._end(item.stream, item.wall, "interrupted")  # a stretch its reader left open
        self.finished += 1
        if item.error is not None:
            self.failed[item.stream] = item.error
            logger.error("stream %s (%s) failed: %s", item.stream, self.readers[item.stream].source.url, item.error)
        self.write(item.stream, STREAM_LINES, {
            "stream": item.stream, "record": "failed" if item.error else "finished",
            "error": item.error, "wall": item.wall})

    def stop_all(self) -> None:
        """SIGINT or SIGTERM: end every stretch in progress, its events closed as stopped."""
        wall = time.time()
        for stream in list(self.stretches):
            self._end(stream, wall, "stopped")
            self.stopped += 1


def event_line(record: dict) -> str:
    """The one line printed for an event change."""
    return (f"{record['stream']} stretch {record['stretch']} event {record['event']} "
            f"{record['status']}: {record['start_s']:.2f}-{record['end_s']:.2f} s, peak "
            f"{record['peak']:.3f} at frame {record['peak_frame']}")
