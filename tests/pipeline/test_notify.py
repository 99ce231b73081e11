"""--on-event and --webhook (claws.pipeline.watching.notify): each record reaches the command
(JSON on stdin, fields in the environment) and the URL (a POST, retried on a 5xx), in order, off
the scoring thread; failures are logged, never fatal; a full queue drops the oldest."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from claws.pipeline.watching import notify
from claws.pipeline.watching.notify import Notifier


class Hook:
    """A loopback webhook: answers `statuses` in turn (then 200), keeps every JSON body."""

    def __init__(self, statuses: list[int] = ()) -> None:
        self.bodies: list[dict] = []
        self.statuses = list(statuses)
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = hook.statuses.pop(0) if hook.statuses else 200
                if status == 200:
                    assert self.headers["Content-Type"] == "application/json"
                    hook.bodies.append(json.loads(body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/claws"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    server = Hook([503])  # the first POST fails with a 5xx: it is tried again
    yield server
    server.close()


def _event(n: int, status: str) -> dict:
    return {"stream": "door", "stretch": 1, "event": n, "status": status, "start_s": 1.5,
            "end_s": 2.5, "peak": 0.9}


def test_records_reach_the_command_and_the_webhook_in_order(tmp_path, hook, monkeypatch):
    monkeypatch.setattr(notify.time, "sleep", lambda s: None)  # the retry's backoff
    seen = tmp_path / "seen.jsonl"
    command = (f"{sys.executable} -c \"import json, os, sys; r = json.load(sys.stdin); "
               f"open({str(seen)!r}, 'a').write(json.dumps([r, os.environ['CLAWS_STATUS'], "
               f"os.environ['CLAWS_STREAM'], os.environ.get('CLAWS_EVIDENCE')]) + chr(10))\"")
    notifier = Notifier(command, hook.url)
    notifier.start()
    notifier.send("event", tmp_path / "door", _event(1, "opened"))
    notifier.send("event", tmp_path / "door", _event(1, "confirmed"))
    notifier.send("evidence", tmp_path / "door", {"stream": "door", "record": "evidence",
                                                  "stretch": 1, "event": 1,
                                                  "file": "evidence/1-1.mp4", "error": None})
    notifier.finish()
    got = [json.loads(line) for line in seen.read_text().splitlines()]
    assert [(r["kind"], r.get("status"), status) for r, status, _, _ in got] == [
        ("event", "opened", "opened"), ("event", "confirmed", "confirmed"),
        ("evidence", None, "written")]
    assert got[0][2] == "door" and got[0][0]["folder"] == str(tmp_path / "door")
    assert got[2][3] == str(tmp_path / "door" / "evidence" / "1-1.mp4")
    assert [(b["kind"], b.get("status")) for b in hook.bodies] == [
        ("event", "opened"), ("event", "confirmed"), ("evidence", None)]
    assert notifier.failed == 0


def test_failures_are_logged_and_the_rest_goes_on(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(notify.time, "sleep", lambda s: None)
    server = Hook([404])
    try:
        notifier = Notifier("exit 3", server.url, command_timeout_s=5)
        notifier.start()
        notifier.send("event", tmp_path, _event(1, "opened"))
        notifier.send("event", tmp_path, _event(1, "confirmed"))
        notifier.finish()
    finally:
        server.close()
    assert notifier.failed == 3  # two commands, and the POST answered 404 (not retried)
    assert "--on-event exited with 3" in caplog.text and "--webhook answered 404" in caplog.text
    assert [b["status"] for b in server.bodies] == ["confirmed"]


def test_a_command_that_hangs_is_killed(tmp_path, caplog):
    notifier = Notifier(f"{sys.executable} -c 'import time; time.sleep(60)'", None,
                        command_timeout_s=0.5)
    notifier.start()
    notifier.send("event", tmp_path, _event(1, "opened"))
    notifier.finish()
    assert notifier.failed == 1 and "still running after 0.5 s: killed" in caplog.text


def test_an_unreachable_webhook_is_tried_three_times(tmp_path, caplog, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(notify.time, "sleep", waits.append)
    notifier = Notifier(None, "http://127.0.0.1:1/claws", post_timeout_s=2)
    notifier.start()
    notifier.send("event", tmp_path, _event(1, "opened"))
    notifier.finish()
    assert waits == [1, 2] and notifier.failed == 1 and "127.0.0.1:1" in caplog.text


def test_a_full_queue_drops_the_oldest(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(notify, "QUEUE_SIZE", 3)
    notifier = Notifier("true", None)  # not started: nothing is taken from the queue
    for n in range(5):
        notifier.send("event", tmp_path, _event(n, "opened"))
    assert notifier.dropped == 2 and "2 dropped so far" in caplog.text
    assert [notifier.records.get_nowait()["event"] for _ in range(3)] == [2, 3, 4]
