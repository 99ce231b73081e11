"""The review page: files written, what the summaries and curves hold, previews (made once, kept,
skipped when the source is missing), the commands, and the page itself in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from claws.extract.synthetic import synthetic_frames, write_frame_folder, write_video
from claws.pipeline.cli import main
from claws.pipeline.review.site import ASSETS, sparkline, truth_intervals, write_review
from claws.pipeline.review.video import browser_playable, preview_size
from claws.pipeline.scoring.files import ScoresError

sys.path.insert(0, str(Path(__file__).parent))  # the helper modules beside this file
from fake_scores import write_fake_scores  # noqa: E402
from review_browser import (  # noqa: E402
    chromium_binary, dump_dom, html_attribute, page_url, screenshot,
)

FPS = 25.0
DOCS = Path(__file__).resolve().parents[2] / "docs"


def registered(path: Path, call: str) -> dict:
    """The data a generated JS file hands to the page (`CALL({...});`)."""
    text = path.read_text()
    assert text.startswith(f"{call}(") and text.endswith(");\n"), path
    return json.loads(text[len(call) + 1:-3])


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three small sources: H.264 MP4 (plays as is), MPEG-4 part 2 AVI, a JPEG frame folder."""
    root = tmp_path_factory.mktemp("footage")
    write_video(root / "playable.mp4", synthetic_frames(72, 120, 160, seed=1, event=(24, 56)),
                FPS, codec="libx264")
    write_video(root / "old.avi", synthetic_frames(40, 90, 161, seed=2), FPS, codec="mpeg4")
    write_frame_folder(root / "frames", synthetic_frames(24, 64, 80, seed=3), ext="jpg")
    return root


def scores_folder(root: Path, footage: Path) -> Path:
    videos = [
        {"video_id": "playable", "num_frames": 72, "event": (24, 56), "source": footage / "playable.mp4"},
        {"video_id": "old", "num_frames": 40, "event": None, "source": footage / "old.avi"},
        {"video_id": "frames", "num_frames": 24, "event": None, "source": footage / "frames"},
        {"video_id": "gone", "num_frames": 50, "event": (10, 40), "source": root / "missing.avi"},
    ]
    write_fake_scores(root / "scores", [{**v, "fps": FPS} for v in videos])
    return root / "scores"


def test_assets_are_package_data() -> None:
    folder = resources.files("claws.pipeline.review").joinpath("assets")
    for name in ASSETS:
        assert folder.joinpath(name).is_file(), name
    text = folder.joinpath("review.js").read_text()
    assert "fetch(" not in text and "http" not in text  # no network, nothing from a CDN


@pytest.mark.parametrize("num_frames, points, expected_len", [(1, 80, 1), (15, 80, 15), (80, 80, 80),
                                                              (81, 80, 80), (1000, 80, 80)])
def test_sparkline_length_and_peak(num_frames: int, points: int, expected_len: int) -> None:
    scores = np.linspace(0, 0.5, num_frames)
    scores[num_frames // 2] = 0.9  # a one-frame peak survives the reduction
    line = sparkline(scores, points)
    assert len(line) == expected_len and max(line) == pytest.approx(0.9)


def test_truth_intervals_are_end_exclusive() -> None:
    labels = np.array([0, 1, 1, 0, 0, 1, 0, 1], dtype=np.uint8)
    assert truth_intervals(labels) == [[1, 3], [5, 6], [7, 8]]
    assert truth_intervals(np.zeros(5, np.uint8)) == []


def test_preview_size_is_bounded_and_even() -> None:
    assert preview_size(240, 320) == (240, 320)
    assert preview_size(480, 856) == (270, 480)
    assert preview_size(90, 161) == (90, 160)  # odd width of an old camera
    assert all(v % 2 == 0 and v >= 2 for v in preview_size(3, 5000))


def test_browser_playable_probes_the_codec(footage: Path, tmp_path: Path) -> None:
    assert browser_playable(footage / "playable.mp4")
    assert not browser_playable(footage / "old.avi")
    write_video(tmp_path / "rgb.mp4", synthetic_frames(4, 32, 32), FPS)  # lossless RGB H.264
    assert not browser_playable(tmp_path / "rgb.mp4")


def test_write_review_files_and_content(footage: Path, tmp_path: Path) -> None:
    scores = scores_folder(tmp_path, footage)
    truth = {"playable": np.r_[np.zeros(30), np.ones(30), np.zeros(12)].astype(np.uint8)}
    page = write_review(scores, truth)
    review = scores / "review"
    assert page == review / "index.html"
    for name in ("index.html", "summaries.js", *ASSETS):
        assert (review / name).is_file(), name
    html_text = page.read_text()
    assert all(f'src="{name}"' in html_text for name in ("review.js", "summaries.js"))
    assert "curves/" not in html_text  # curves are loaded when a video is opened
    data = registered(review / "summaries.js", "CLAWS.registerSummaries")
    assert data["run"]["random_features"] is True and data["run"]["threshold"] == 0.5
    assert data["run"]["precision"] == "fp32" and data["run"]["has_truth"] is True
    videos = {v["video_id"]: v for v in data["videos"]}
    assert sorted(videos) == ["frames", "gone", "old", "playable"]
    events = json.loads((scores / "playable.events.json").read_text())["events"]
    assert videos["playable"]["num_events"] == len(events) >= 1
    assert videos["playable"]["event_s"] == pytest.approx(sum(e["end_s"] - e["start_s"] for e in events))
    assert videos["playable"]["truth_s"] == pytest.approx(30 / FPS)
    # each annotated video's own frame AUC (its event frames against its other frames)
    assert videos["playable"]["auc"] == pytest.approx(
        roc_auc_score(truth["playable"], np.load(scores / "playable.npy")), abs=1e-4)
    assert "auc" not in videos["old"]  # no ground truth: no column value at all
    assert videos["playable"]["peak"] == pytest.approx(max(videos["playable"]["sparkline"]), abs=1e-4)
    curve = registered(review / "curves" / "playable.js", "CLAWS.registerCurve")
    assert len(curve["scores"]) == 72 and curve["truth"] == [[30, 60]] and curve["events"] == events
    np.testing.assert_allclose(curve["scores"], np.load(scores / "playable.npy"), atol=1e-4)
    # the playable source is used as it is, by a relative URL; the others get previews
    assert curve["src"] == os.path.relpath(footage / "playable.mp4", review)
    for vid in ("old", "frames"):
        shown = registered(review / "curves" / f"{vid}.js", "CLAWS.registerCurve")
        assert shown["src"] == f"previews/{vid}.mp4" and browser_playable(review / shown["src"])
    gone = registered(review / "curves" / "gone.js", "CLAWS.registerCurve")
    assert gone["src"] is None and "not found" in gone["footage"] and gone["truth"] is None
    assert not (review / "previews" / "gone.mp4").exists()


def test_previews_are_made_once_and_match_the_frames(footage: Path, tmp_path: Path) -> None:
    import av

    scores = scores_folder(tmp_path, footage)
    write_review(scores)
    preview = scores / "review" / "previews" / "old.mp4"
    with av.open(str(preview)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 160, 90)
        assert sum(1 for _ in container.decode(video=0)) == 40  # one preview frame per curve frame
    stamp = preview.stat().st_mtime_ns
    write_review(scores)
    assert preview.stat().st_mtime_ns == stamp  # kept, not transcoded again
    assert not list(preview.parent.glob(".*"))  # no temporary file left


def test_no_previews_leaves_unplayable_sources_without_footage(footage: Path, tmp_path: Path) -> None:
    scores = scores_folder(tmp_path, footage)
    write_review(scores, previews=False)
    old = registered(scores / "review" / "curves" / "old.js", "CLAWS.registerCurve")
    assert old["src"] is None and "previews are off" in old["footage"]
    assert not (scores / "review" / "previews").exists()


def test_review_command(footage: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    scores = scores_folder(tmp_path, footage)
    assert main(["review", str(scores), "--no-previews", "--no-progress"]) == 0
    assert f"review page: {scores / 'review' / 'index.html'}" in capsys.readouterr().out
    assert main(["review", str(tmp_path / "nothing")]) == 2  # not a scores folder
    with pytest.raises(ScoresError):
        write_review(tmp_path / "nothing")


def test_evaluate_review_needs_a_scores_folder(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--run", "r", "--shards", "s", "--intervals", "gt.csv", "--out", "o",
              "--review"])
    assert exit_info.value.code == 2
    assert "--review writes the page into a scores folder" in capsys.readouterr().err


def test_evaluate_review_adds_the_ground_truth(footage: Path, tmp_path: Path) -> None:
    scores = scores_folder(tmp_path, footage)
    gt = tmp_path / "gt.csv"
    gt.write_text("video,start_frame,end_frame\nplayable,20,50\nold,-1,-1\nframes,-1,-1\ngone,5,45\n")
    assert main(["evaluate", str(scores), "--intervals", str(gt), "--out", str(tmp_path / "report"),
                 "--no-video-plots", "--no-progress", "--review"]) == 0
    curve = registered(scores / "review" / "curves" / "playable.js", "CLAWS.registerCurve")
    assert curve["truth"] == [[20, 50]]


needs_chromium = pytest.mark.skipif(chromium_binary() is None,
                                    reason="no chromium on PATH (Debian: apt-get install chromium)")


@pytest.mark.slow
@needs_chromium
def test_page_in_headless_chromium(footage: Path, tmp_path: Path) -> None:
    scores = scores_folder(tmp_path, footage)
    truth = {"playable": np.r_[np.zeros(20), np.ones(32), np.zeros(20)].astype(np.uint8),
             "gone": np.r_[np.zeros(40), np.ones(10)].astype(np.uint8),  # beside its bump
             "old": np.ones(40, np.uint8)}  # anomalous throughout: own AUC undefined
    page = write_review(scores, truth)
    dom = dump_dom(page_url(page))
    assert html_attribute(dom, "data-rendered-ms") is not None
    rows = re.findall(r'<tr class="row[^"]*" data-video="([^"]+)"', dom)
    assert sorted(rows) == ["frames", "gone", "old", "playable"]
    assert "RANDOM C3D WEIGHTS" in dom
    assert 'data-key="auc"' in dom and "undefined" in dom
    # a real click on the own-AUC header sorts worst-localized first, videos without one last
    own = {v: roc_auc_score(t, np.load(scores / f"{v}.npy")) for v, t in truth.items() if v != "old"}
    worst_first = sorted(own, key=own.get)
    assert own["gone"] < 0.5 < own["playable"]
    dom = dump_dom(page_url(page, "sort=auc"))
    assert html_attribute(dom, "data-sort") == "auc asc"
    rows = re.findall(r'<tr class="row[^"]*" data-video="([^"]+)"', dom)
    assert rows[:2] == worst_first and sorted(rows[2:]) == ["frames", "old"]
    # a real click on the curve at 60% of its time axis seeks the player there
    for vid in ("playable", "old"):  # the source as it is, and an H.264 preview
        dom = dump_dom(page_url(page, f"video={vid}&click=0.6"), budget_ms=8000)
        seek = json.loads(html_attribute(dom, "data-seek"))
        assert seek["has_video"] and seek["ready_state"] >= 1, seek  # the browser loaded the footage
        assert seek["before"] == 0 and seek["after"] == pytest.approx(seek["expected"], abs=0.05)
        assert seek["after"] > 0.5 and seek["playhead"] == pytest.approx(seek["after"], abs=0.05)
    dom = dump_dom(page_url(page, "video=gone&click=0.5"))
    assert "No footage: source" in dom and json.loads(html_attribute(dom, "data-seek"))["playhead"] > 0
    shots = DOCS if os.environ.get("CLAWS_REVIEW_SCREENSHOTS") else tmp_path
    for name, fragment in (("review-triage.png", ""), ("review-video.png", "video=playable&click=0.5")):
        shot = screenshot(page_url(page, fragment), shots / name)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@needs_chromium
def test_a_video_with_a_250_character_id_opens_in_the_page(tmp_path: Path) -> None:
    """Issue 20.3: a long id's curve file has a shortened name (file_stem), which the page takes
    from the summary; the video view loads it."""
    from claws.data.videos import file_stem

    long_id = "lobby_" + "q" * 244
    write_fake_scores(tmp_path / "scores", [{"video_id": long_id, "num_frames": 30, "fps": FPS,
                                             "event": (5, 20), "source": tmp_path / "gone.avi"}])
    page = write_review(tmp_path / "scores")
    assert (tmp_path / "scores" / "review" / "curves" / f"{file_stem(long_id)}.js").is_file()
    dom = dump_dom(page_url(page, f"video={long_id}&click=0.5"))
    assert "No footage: source" in dom and "is missing: rerun" not in dom
    assert json.loads(html_attribute(dom, "data-seek"))["playhead"] > 0
