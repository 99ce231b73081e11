"""Telling other programs about events as they happen: `--on-event CMD` and `--webhook URL`.

Every event record (each change: opened, changed, withdrawn, confirmed, interrupted, stopped) and
every evidence record (an event's clip written, or why not) is handed, as the JSON object written
to the stream's files plus "kind" ("event" or "evidence") and "folder" (the stream's folder), to:
- CMD, run through the shell with the JSON on its standard input and the main fields in its
  environment (CLAWS_KIND, CLAWS_STREAM, CLAWS_STRETCH, CLAWS_EVENT, CLAWS_STATUS: the event's,
  or "written"/"failed" for a clip, CLAWS_PEAK, CLAWS_START_S, CLAWS_END_S, CLAWS_EVIDENCE: the
  clip's path, once written); it may run at most
  `command_timeout_s` seconds, then it is killed;
- URL, as an HTTP POST of the JSON (Content-Type application/json), retried up to 3 times with a
  backoff of 1, 2 s on a connection error or a 5xx answer, each try waiting at most
  `post_timeout_s` seconds.

Both run on a thread of their own, in the order of the records, so that scoring never waits for
them. Its queue has a fixed size: when a slow command or server lets it fill up, the oldest
notifications are dropped, counted and logged. A failure (a non-zero exit, an HTTP error) is
logged with the event and never stops the job. At the end of the job the queue is emptied
(waiting at most `drain_s` seconds), so the "stopped" events of SIGINT/SIGTERM are delivered too.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

logger = logging.getLogger(__name__)

QUEUE_SIZE = 1000  # notifications waiting for a slow command or server
POST_TRIES = 3
ENVIRONMENT = {"CLAWS_KIND": "kind", "CLAWS_STREAM": "stream", "CLAWS_STRETCH": "stretch",
               "CLAWS_EVENT": "event", "CLAWS_STATUS": "status", "CLAWS_PEAK": "peak",
               "CLAWS_START_S": "start_s", "CLAWS_END_S": "end_s"}


class Notifier(threading.Thread):
    """Delivers records to `command` and/or `webhook` (see the module docstring).

    Args:
        command: shell command run per record, or None.
        webhook: URL a record is POSTed to, or None.
        command_timeout_s: a command running longer is killed.
        post_timeout_s: one POST waits at most this long.
        drain_s: at the end, how long the queue is given to empty.
    """

    def __init__(self, command: str | None, webhook: str | None, command_timeout_s: float = 30.0,
                 post_timeout_s: float = 10.0, drain_s: float = 30.0) -> None:
        super().__init__(name="claws-notify", daemon=True)
        self.command, self.webhook = command, webhook
        self.command_timeout_s, self.post_timeout_s, self.drain_s = (
            command_timeout_s, post_timeout_s, drain_s)
        self.records: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
        self.dropped = self.failed = 0
        self.lock = threading.Lock()

    def send(self, kind: str, folder: Path, record: dict) -> None:
        """Queue one record (the oldest waiting one is dropped when the queue is full)."""
        item = {"kind": kind, "folder": str(folder), **record}
        with self.lock:
            while True:
                try:
                    self.records.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        self.records.get_nowait()
                    except queue.Empty:
                        continue
                    self.dropped += 1
                    logger.warning("notifications: %d dropped so far (--on-event/--webhook slower "
                                   "than the events)", self.dropped)

    def run(self) -> None:
        while True:
            item = self.records.get()
            if item is None:
                return
            if self.command:
                self._run_command(item)
            if self.webhook:
                self._post(item)

    def finish(self) -> None:
        """Deliver what is queued (at most `drain_s` seconds), then stop."""
        with self.lock:
            try:
                self.records.put(None, timeout=self.drain_s)
            except queue.Full:
                pass
        self.join(self.drain_s)
        if self.is_alive():
            logger.warning("notifications: %d not delivered when the job ended",
                           self.records.qsize())

    def _run_command(self, item: dict) -> None:
        env = dict(os.environ)
        env.update({name: str(item[key]) for name, key in ENVIRONMENT.items() if key in item})
        if item["kind"] == "evidence":
            env["CLAWS_STATUS"] = "written" if item.get("file") else "failed"
            if item.get("file"):
                env["CLAWS_EVIDENCE"] = str(Path(item["folder"]) / item["file"])
        try:
            done = subprocess.run(self.command, shell=True, input=json.dumps(item), text=True,
                                  env=env, timeout=self.command_timeout_s,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except subprocess.TimeoutExpired:
            self._failed(item, f"--on-event still running after {self.command_timeout_s:g} s: "
                         "killed")
            return
        if done.returncode != 0:
            self._failed(item, f"--on-event exited with {done.returncode}: "
                         f"{done.stderr.strip()[-300:]}")

    def _post(self, item: dict) -> None:
        body = json.dumps(item).encode()
        for attempt in range(1, POST_TRIES + 1):
            request = urllib.request.Request(self.webhook, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.post_timeout_s) as answer:
                    answer.read()
                return
            except urllib.error.HTTPError as err:
                error = f"--webhook answered {err.code} {err.reason}"
                if err.code < 500:
                    break
            except (urllib.error.URLError, OSError) as err:
                error = f"--webhook {self.webhook}: {getattr(err, 'reason', err)}"
            if attempt < POST_TRIES:
                time.sleep(attempt)
        self._failed(item, error)

    def _failed(self, item: dict, why: str) -> None:
        self.failed += 1
        logger.error("notification of stream %s %s %s failed: %s", item.get("stream"),
                     item["kind"], item.get("event", ""), why)
