"""`claws review` of a live folder written by `claws watch` (claws.pipeline.review.live): a stream
folder read while its job writes it (a partial last line, a stretch still open, an evidence clip
still being recorded), the watch folder's page of streams, `--follow`, a real `claws watch` folder,
and the pages in headless Chromium."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from claws.extract.synthetic import synthetic_frames, write_video
from claws.pipeline.cli import main
from claws.pipeline.review.live import read_lines, read_stream
from claws.pipeline.review.live_site import write_live_review
from claws.pipeline.review.video import browser_playable

sys.path.insert(0, str(Path(__file__).parent))  # the helper modules beside this file
from review_browser import chromium_binary, dump_dom, html_attribute, page_url  # noqa: E402
from test_watch import C3D, live_run  # noqa: E402,F401  (live_run: a fixture)

FPS = 25.0
SETTINGS = {"checkpoint_sha256": "ab" * 32, "window": 2, "threshold": 0.5, "min_duration_s": 0.0,
            "merge_gap_s": 0.4}


def registered(path: Path, call: str) -> dict:
    """The data a generated JS file hands to the page (`CALL({...});`)."""
    text = path.read_text()
    assert text.startswith(f"{call}(") and text.endswith(");\n"), path
    return json.loads(text[len(call) + 1:-3])


def _append(path: Path, records: list[dict], partial: str = "") -> None:
    with path.open("a") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in records)
        handle.write(partial)


def _clip(stretch: int, clip: int, score: float, final: bool, num_frames: int, wall: float) -> dict:
    first = 16 * clip
    return {"stream": "cam", "stretch": stretch, "clip": clip,
            "frames": [first, min(first + 16, num_frames)], "time_s": first / FPS, "score": score,
            "final": final, "wall": wall}


def _event(stretch: int, number: int, status: str, frames: tuple[int, int], peak: float,
           wall: float, **extra) -> dict:
    start, end = frames
    return {"stream": "cam", "stretch": stretch, "event": number, "status": status,
            "start_frame": start, "end_frame": end, "start_s": start / FPS, "end_s": end / FPS,
            "peak": peak, "peak_frame": start, "mean": peak, "wall": wall, **extra}


# Stretch 1 (ended by a drop): 3 clips, 40 frames, final scores 0.2 0.8 0.3, recorded; its event 1
# has its evidence clip. Then the stream was lost for 8 s. Stretch 2 (open, 6 clips): clips 0-3
# final, 4-5 provisional; event 1 confirmed, its evidence still being recorded; event 2 open.
STRETCH_1 = [0.2, 0.8, 0.3]
STRETCH_2 = [0.1, 0.9, 0.1, 0.1, 0.7, 0.6]
PARTIAL_CLIP = '{"stream": "cam", "stretch": 2, "clip": 6, "frames": [96, 112], "time_s": 3.84, '
PARTIAL_CLIP_REST = '"score": 0.65, "final": false, "wall": 1016.0}\n'


def hand_stream(out: Path) -> Path:
    """A watch folder `out` holding the stream `cam` as its job writes it (see above), and a stream
    `door` that never opened."""
    cam = out / "cam"
    cam.mkdir(parents=True)
    (out / "watch.json").write_text(json.dumps(SETTINGS))
    _append(cam / "stream.jsonl", [
        {"stream": "cam", "record": "opened", "stretch": 1, "fps": FPS, "wall": 1000.0,
         "recording": "stretch-1.ts"},
        {"stream": "cam", "record": "stretch ended", "stretch": 1, "status": "interrupted",
         "clips": 3, "frames": 40, "wall": 1002.0, "curve": "stretch-1.npy"},
        {"stream": "cam", "record": "evidence", "stretch": 1, "event": 1,
         "file": "evidence/1-1.mp4", "from_s": 0.24, "to_s": 1.6, "error": None},
        {"stream": "cam", "record": "stream lost", "from": 1002.0, "to": 1010.0, "gap_s": 8.0,
         "after_stretch": 1},
        {"stream": "cam", "record": "opened", "stretch": 2, "fps": FPS, "wall": 1010.0,
         "recording": "stretch-2.ts"},
    ], partial='{"stream": "cam", "rec')
    clips = [_clip(1, 0, 0.25, False, 40, 1000.6), _clip(1, 1, 0.7, False, 40, 1001.2),
             *[_clip(1, k, STRETCH_1[k], True, 40, 1001.2) for k in (0, 1)],
             _clip(1, 2, 0.35, False, 40, 1001.6), _clip(1, 2, STRETCH_1[2], True, 40, 1002.0)]
    clips += [_clip(2, k, STRETCH_2[k] + 0.05, False, 96, 1010.0 + k) for k in range(6)]
    clips += [_clip(2, k, STRETCH_2[k], True, 96, 1014.0) for k in range(4)]
    clips += [_clip(2, k, STRETCH_2[k], False, 96, 1015.0) for k in (4, 5)]
    _append(cam / "clips.jsonl", clips, partial=PARTIAL_CLIP)
    evidence = {"evidence_from_s": 0.2, "evidence_to_s": 1.6}
    _append(cam / "events.jsonl", [
        _event(1, 1, "opened", (16, 40), 0.7, 1001.2),
        _event(1, 2, "opened", (0, 16), 0.55, 1001.2),
        _event(1, 2, "withdrawn", (0, 16), 0.55, 1001.3),
        _event(1, 1, "changed", (16, 32), 0.8, 1001.6),
        _event(1, 1, "interrupted", (16, 32), 0.8, 1002.0, evidence="evidence/1-1.mp4", **evidence),
        _event(2, 1, "opened", (16, 32), 0.95, 1011.0),
        _event(2, 1, "confirmed", (16, 32), 0.9, 1014.0, evidence="evidence/2-1.mp4",
               evidence_from_s=0.0, evidence_to_s=2.0),
        _event(2, 2, "opened", (64, 96), 0.7, 1015.0),
    ], partial='{"stream": "cam", "stretch": 2, "event": 3, "sta')
    np.save(cam / "stretch-1.npy", np.repeat(np.float32(STRETCH_1), 16)[:40])
    write_video(cam / "stretch-1.ts", synthetic_frames(40, 48, 64, seed=1), FPS, codec="mpeg4")
    (cam / "stretch-2.ts").write_bytes(b"\x47" * 500)  # still being recorded: never touched
    write_video(cam / "evidence" / "1-1.mp4", synthetic_frames(35, 48, 64, seed=2), FPS,
                codec="libx264")
    (out / "door").mkdir()
    _append(out / "door" / "stream.jsonl", [{"stream": "door", "record": "failed",
                                             "error": "Connection refused", "wall": 1000.0}])
    return cam


def test_read_lines_skips_a_partial_last_line_only(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": 3, "b"')
    assert read_lines(path) == [{"a": 1}, {"a": 2}]
    path.write_text('{"a": 1}\n{"a": 2}\n')
    assert read_lines(path) == [{"a": 1}, {"a": 2}]
    assert read_lines(tmp_path / "absent.jsonl") == []
    path.write_text('{"a": 1}\n{"a": \n{"a": 3}\n')  # a broken line inside is not the writer's
    with pytest.raises(ValueError, match=r"a\.jsonl:2"):
        read_lines(path)


def test_read_stream_while_its_job_writes(tmp_path: Path) -> None:
    cam = hand_stream(tmp_path / "live")
    stream = read_stream(cam)
    assert stream.name == "cam" and [s.number for s in stream.stretches] == [1, 2]
    one, two = stream.stretches
    np.testing.assert_array_equal(one.curve, np.load(cam / "stretch-1.npy"))
    assert one.final.all() and one.status == "interrupted"
    # the open stretch: its curve from the latest line of each clip, the partial line ignored
    np.testing.assert_allclose(two.curve, np.repeat(np.float32(STRETCH_2), 16))
    assert two.final.tolist() == [True] * 64 + [False] * 32
    assert two.status == "open" and two.ended is None
    # the latest line per event wins; a withdrawn event is gone
    assert [(e["event"], e["status"]) for e in one.events] == [(1, "interrupted")]
    assert [(e["event"], e["status"], e["end_frame"]) for e in two.events] == [
        (1, "confirmed", 32), (2, "opened", 96)]
    assert [(g["after_stretch"], g["gap_s"], g["kind"]) for g in stream.gaps] == [(1, 8.0, "lost")]
    assert stream.state == "not running"  # no job holds the folder
    (tmp_path / "live" / ".claws.lock").write_text(json.dumps({"command": "claws watch"}))
    assert read_stream(cam).state == "live" and read_stream(cam).stretches[1].status == "live"


def test_stretches_sharing_a_recording(tmp_path: Path) -> None:
    """A stretch ended while its source stays open (clips dropped) goes on in the same recording
    from a later frame: its preview is made once that file is complete, and the page knows where
    in it the stretch begins."""
    out, cam = tmp_path / "live", tmp_path / "live" / "cam"
    cam.mkdir(parents=True)
    _append(cam / "stream.jsonl", [
        {"stream": "cam", "record": "opened", "stretch": 1, "fps": FPS, "wall": 1000.0,
         "recording": "stretch-1.ts", "first_frame": 0},
        {"stream": "cam", "record": "stretch ended", "stretch": 1, "status": "interrupted",
         "clips": 1, "frames": 16, "wall": 1001.0},
        {"stream": "cam", "record": "frames dropped", "after_stretch": 1, "clips": 2,
         "frames": 32, "from": 1001.0, "to": 1002.5},
        {"stream": "cam", "record": "opened", "stretch": 2, "fps": FPS, "wall": 1002.5,
         "recording": "stretch-1.ts", "first_frame": 48},
    ])
    _append(cam / "clips.jsonl", [_clip(1, 0, 0.3, True, 16, 1001.0),
                                  _clip(2, 0, 0.6, False, 16, 1003.0)])
    _append(cam / "events.jsonl", [_event(1, 1, "interrupted", (0, 16), 0.7, 1001.0,
                                          evidence="evidence/1-1.mp4", evidence_from_s=0.0,
                                          evidence_to_s=0.64)])
    _append(cam / "stream.jsonl", [{"stream": "cam", "record": "evidence", "stretch": 1, "event": 1,
                                    "file": None, "from_s": 0.0, "to_s": 0.0,
                                    "error": "no keyframe in the ring"}])
    write_video(cam / "stretch-1.ts", synthetic_frames(64, 48, 64, seed=1), FPS, codec="mpeg4")
    (out / ".claws.lock").write_text(json.dumps({"command": "claws watch"}))
    stream = read_stream(cam)
    one, two = stream.stretches
    assert (one.recording, two.recording, two.first_frame) == (cam / "stretch-1.ts",) * 2 + (48,)
    assert [(g["kind"], g["gap_s"]) for g in stream.gaps] == [("frames dropped", 1.5)]
    assert not stream.recording_complete(one)  # stretch 2 still records into it
    assert stream.state == "live"  # an evidence record after the opening says nothing of it
    page = write_live_review(cam)
    curve = registered(page.parent / "curves" / "stretch-2.js", "CLAWS.registerCurve")
    assert curve["src"] is None and "in progress" in curve["footage"]
    (out / ".claws.lock").unlink()  # the job ended
    assert read_stream(cam).recording_complete(one)
    write_live_review(cam)
    curve = registered(page.parent / "curves" / "stretch-2.js", "CLAWS.registerCurve")
    assert curve["src"] == "previews/stretch-1.mp4" and curve["src_start_s"] == 48 / FPS
    assert sorted(p.name for p in (page.parent / "previews").iterdir()) == ["stretch-1.mp4"]
    curve = registered(page.parent / "curves" / "stretch-1.js", "CLAWS.registerCurve")
    assert curve["events"][0]["evidence"]["note"] == "no evidence clip: no keyframe in the ring"


def test_stream_page_files(tmp_path: Path) -> None:
    cam = hand_stream(tmp_path / "live")
    (tmp_path / "live" / ".claws.lock").write_text(json.dumps({"command": "claws watch"}))
    assert main(["review", str(cam), "--no-progress"]) == 0
    review = cam / "review"
    data = registered(review / "summaries.js", "CLAWS.registerSummaries")
    run = data["run"]
    assert run["kind"] == "stream" and run["stream"] == "cam" and run["threshold"] == 0.5
    assert run["window"] == 2 and run["refresh_s"] is None
    rows = {v["video_id"]: v for v in data["videos"]}
    assert sorted(rows) == ["stretch-1", "stretch-2"]
    assert rows["stretch-1"]["status"] == "interrupted" and rows["stretch-1"]["num_frames"] == 40
    assert rows["stretch-2"]["status"] == "live" and rows["stretch-2"]["num_frames"] == 96
    assert rows["stretch-2"]["final_frames"] == 64 and rows["stretch-2"]["open_events"] == 1
    assert rows["stretch-2"]["gap_before_s"] == 8.0 and rows["stretch-2"]["num_events"] == 2
    assert [(p["kind"], p.get("stretch")) for p in run["timeline"]] == [
        ("stretch", 1), ("lost", None), ("stretch", 2)]
    one = registered(review / "curves" / "stretch-1.js", "CLAWS.registerCurve")
    np.testing.assert_allclose(one["scores"], np.load(cam / "stretch-1.npy"), atol=1e-4)
    assert one["provisional"] == []
    # the ended, recorded stretch plays an H.264 preview of its recording, frame for frame
    assert one["src"] == "previews/stretch-1.mp4" and browser_playable(review / one["src"])
    evidence = one["events"][0]["evidence"]
    # where the clip starts: as written (from its first keyframe), not as the closing record planned
    assert evidence["src"] == "../evidence/1-1.mp4" and evidence["from_s"] == 0.24
    two = registered(review / "curves" / "stretch-2.js", "CLAWS.registerCurve")
    assert len(two["scores"]) == 96 and two["provisional"] == [[64, 96]]
    assert two["src"] is None and "recording" in two["footage"]
    assert not (review / "previews" / "stretch-2.mp4").exists()
    first, second = two["events"]
    assert first["evidence"]["src"] is None and "being recorded" in first["evidence"]["note"]
    assert second["status"] == "opened" and second["evidence"] is None


def test_watch_folder_page_lists_its_streams(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "live"
    hand_stream(out)
    assert main(["review", str(out), "--no-previews", "--no-progress"]) == 0
    assert f"review page: {out / 'review' / 'index.html'}" in capsys.readouterr().out
    data = registered(out / "review" / "summaries.js", "CLAWS.registerSummaries")
    assert data["run"]["kind"] == "watch"
    rows = {v["video_id"]: v for v in data["videos"]}
    assert sorted(rows) == ["cam", "door"]
    assert rows["cam"]["href"] == "../cam/review/index.html" and rows["cam"]["stretches"] == 2
    assert rows["cam"]["num_events"] == 3 and rows["cam"]["lost_s"] == 8.0
    assert rows["door"]["state"] == "failed" and "refused" in rows["door"]["error"]
    # each stream's own page is written too, linking back up
    cam = registered(out / "cam" / "review" / "summaries.js", "CLAWS.registerSummaries")
    assert cam["run"]["up"] == "../../review/index.html"
    assert (out / "door" / "review" / "index.html").is_file()
    # --no-previews: no transcoding, said on the page
    one = registered(out / "cam" / "review" / "curves" / "stretch-1.js", "CLAWS.registerCurve")
    assert one["src"] is None and "previews are off" in one["footage"]
    # no job writes the folder: the evidence clip it did not write will not come
    two = registered(out / "cam" / "review" / "curves" / "stretch-2.js", "CLAWS.registerCurve")
    assert "not found (its job ended" in two["events"][0]["evidence"]["note"]


def test_not_a_review_folder_names_all_three(tmp_path: Path, caplog) -> None:
    (tmp_path / "nothing").mkdir()
    assert main(["review", str(tmp_path / "nothing")]) == 2
    assert "claws score" in caplog.text and "claws watch" in caplog.text


@pytest.mark.slow
def test_follow_rebuilds_until_sigterm_and_exits_0(tmp_path: Path) -> None:
    cam = hand_stream(tmp_path / "live")
    review = subprocess.Popen([sys.executable, "-m", "claws.pipeline.cli", "review", str(cam),
                               "--follow", "0.5", "--no-previews", "--no-progress"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    curve = cam / "review" / "curves" / "stretch-2.js"
    deadline = time.monotonic() + 120  # a guard against a hang, not a timing assertion
    try:
        while not (cam / "review" / "index.html").is_file() and review.poll() is None:  # last
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert len(registered(curve, "CLAWS.registerCurve")["scores"]) == 96
        data = registered(cam / "review" / "summaries.js", "CLAWS.registerSummaries")
        assert data["run"]["refresh_s"] == 0.5
        _append(cam / "clips.jsonl", [], partial=PARTIAL_CLIP_REST)  # the job ends its line
        while len(registered(curve, "CLAWS.registerCurve")["scores"]) != 112:
            assert time.monotonic() < deadline and review.poll() is None
            time.sleep(0.1)
        review.send_signal(signal.SIGTERM)
        stdout, stderr = review.communicate(timeout=60)
    finally:
        review.kill()
    assert review.returncode == 0, stderr
    assert "review page:" in stdout


def test_follow_takes_a_period_in_range(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["review", "x", "--follow", "0"])
    assert exit_info.value.code == 2 and "--follow" in capsys.readouterr().err


def test_write_live_review_on_a_stream_that_never_opened(tmp_path: Path) -> None:
    out = tmp_path / "live"
    hand_stream(out)
    page = write_live_review(out / "door", previews=False)
    data = registered(page.parent / "summaries.js", "CLAWS.registerSummaries")
    assert data["videos"] == [] and data["run"]["state"] == "failed"
    assert data["run"]["error"] == "Connection refused"


@pytest.mark.slow
def test_a_real_watch_folder(live_run, tmp_path: Path) -> None:  # noqa: F811
    """`claws watch` on a small file with --record (read once to its end), then `claws review`."""
    video = write_video(tmp_path / "door.mp4", synthetic_frames(40, seed=3), fps=FPS,
                        codec="libx264")  # H.264 yuv420p: its evidence clip is remuxed, playable
    out = tmp_path / "live"
    assert main(["watch", str(video), "--run", str(live_run), "--out", str(out), *C3D, "--record",
                 "--threshold", "0", "--min-duration", "0"]) == 0
    assert main(["review", str(out), "--no-progress"]) == 0
    data = registered(out / "door" / "review" / "summaries.js", "CLAWS.registerSummaries")
    assert data["run"]["state"] == "finished"
    (row,) = data["videos"]
    assert (row["video_id"], row["status"], row["num_frames"]) == ("stretch-1", "confirmed", 40)
    curve = registered(out / "door" / "review" / "curves" / "stretch-1.js", "CLAWS.registerCurve")
    np.testing.assert_allclose(curve["scores"], np.load(out / "door" / "stretch-1.npy"), atol=1e-4)
    assert curve["provisional"] == [] and [e["status"] for e in curve["events"]] == ["confirmed"]
    assert curve["src"] == "previews/stretch-1.mp4"
    # the event's evidence clip, as the job wrote it (claws.pipeline.watching.evidence)
    evidence = curve["events"][0]["evidence"]
    assert evidence["src"] == "../evidence/1-1.mp4", evidence
    import av

    with av.open(str(out / "door" / "review" / curve["src"])) as container:
        assert sum(1 for _ in container.decode(video=0)) == 40  # one preview frame per curve frame
    watch = registered(out / "review" / "summaries.js", "CLAWS.registerSummaries")
    assert [v["video_id"] for v in watch["videos"]] == ["door"]
    if chromium_binary() is not None:
        page = out / "door" / "review" / "index.html"
        dom = dump_dom(page_url(page, "video=stretch-1&click=0.6"), budget_ms=8000)
        seek = json.loads(html_attribute(dom, "data-seek"))
        assert seek["has_video"] and seek["ready_state"] >= 1, seek
        assert seek["after"] == pytest.approx(seek["expected"], abs=0.05)
        dom = dump_dom(page_url(page, "video=stretch-1&event=1"), budget_ms=8000)
        played = json.loads(html_attribute(dom, "data-evidence"))
        assert played["src"].endswith("evidence/1-1.mp4") and played["played"], played
        assert played["playhead"] == pytest.approx(evidence["from_s"] + played["current_time"],
                                                   abs=0.05)


needs_chromium = pytest.mark.skipif(chromium_binary() is None,
                                    reason="no chromium on PATH (Debian: apt-get install chromium)")


@pytest.mark.slow
@needs_chromium
def test_stream_page_in_headless_chromium(tmp_path: Path) -> None:
    out = tmp_path / "live"
    cam = hand_stream(out)
    (out / ".claws.lock").write_text(json.dumps({"command": "claws watch"}))  # the job is running
    assert main(["review", str(out), "--no-progress"]) == 0
    page = cam / "review" / "index.html"
    dom = dump_dom(page_url(page))
    assert html_attribute(dom, "data-rendered-ms") is not None
    assert re.findall(r'<tr class="row[^"]*" data-video="([^"]+)"', dom) == ["stretch-1", "stretch-2"]
    assert 'class="span lost"' in dom and "lost 8.0 s" in dom  # the gap between the stretches
    assert ">live<" in dom and ">interrupted<" in dom
    # the open stretch: its curve drawn, final and provisional frames apart, its events listed
    dom = dump_dom(page_url(page, "video=stretch-2"))
    drawn = json.loads(html_attribute(dom, "data-drawn"))
    assert drawn == {"frames": 96, "provisional": 32, "events": 2, "open_events": 1}
    assert "evidence clip being recorded" in dom and ">open<" in dom and ">confirmed<" in dom
    # an event's evidence clip plays in the player, its time mapped onto the stretch's
    dom = dump_dom(page_url(page, "video=stretch-1&event=1"), budget_ms=8000)
    played = json.loads(html_attribute(dom, "data-evidence"))
    assert played["src"].endswith("evidence/1-1.mp4") and played["ready_state"] >= 2, played
    assert played["played"] and played["offset"] == 0.24
    assert played["playhead"] == pytest.approx(0.24 + played["current_time"], abs=0.05)
    # the watch folder's page: one row per stream, each linking to the stream's page
    dom = dump_dom(page_url(out / "review" / "index.html"))
    assert sorted(re.findall(r'<tr class="row[^"]*" data-video="([^"]+)"', dom)) == ["cam", "door"]
    assert "Connection refused" in dom


@pytest.mark.slow
@needs_chromium
def test_followed_page_reloads_itself_and_keeps_the_place(tmp_path: Path) -> None:
    cam = hand_stream(tmp_path / "live")
    page = write_live_review(cam, previews=False, refresh_s=1.0)
    dom = dump_dom(page_url(page, "video=stretch-2&seek=2.5&reloads=1"), budget_ms=3500)
    assert html_attribute(dom, "data-reloads") == "1"
    assert html_attribute(dom, "data-video-ms") is not None  # still on the stretch's view
    # the playhead restored from before the reload (the hash's seek command runs on the first load only)
    restored = json.loads(html_attribute(dom, "data-restored"))
    assert restored["time"] == pytest.approx(2.5, abs=0.05)
    assert float(html_attribute(dom, "data-playhead")) == pytest.approx(2.5, abs=0.05)
    # a page built without --follow never reloads
    page = write_live_review(cam, previews=False)
    dom = dump_dom(page_url(page, "video=stretch-2&reloads=1"), budget_ms=3500)
    assert html_attribute(dom, "data-reloads") is None

