"""`claws score` on shards (real entry point): outputs, resume, statistics, mismatches."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from claws.data.clips import clip_scores_to_frame_scores
from claws.data.shards import VideoRecord, write_shard
from claws.model.inference import clip_scores
from claws.pipeline.scoring import files as curve_files
from claws.pipeline.training.checkpoint import load_checkpoint
from claws.pipeline.cli import main

from .conftest import EXTRACTOR, STATS, VIDEOS, WINDOW, raw_features, write_tiny_shards


def _score(run: Path, shards: Path, out: Path, *extra: str) -> int:
    return main(["score", "--run", str(run), "--shards", str(shards), "--out", str(out),
                 "--no-progress", "--min-duration", "0", "--merge-gap", "0", *extra])


def _expected_curve(run: Path, video_id: str, num_frames: int) -> np.ndarray:
    model = load_checkpoint(run).model
    features = torch.from_numpy(STATS.normalize(raw_features(video_id, num_frames)))
    return clip_scores_to_frame_scores(clip_scores(model, features, WINDOW).numpy(), num_frames)


def test_outputs_per_video(tiny_run, tiny_shards, tmp_path):
    out = tmp_path / "scores"
    assert _score(tiny_run, tiny_shards, out) == 0
    for vid, num_frames, fps, _, _ in VIDEOS:
        curve = np.load(out / f"{vid}.npy")
        assert curve.dtype == np.float32 and curve.shape == (num_frames,)
        np.testing.assert_allclose(curve, _expected_curve(tiny_run, vid, num_frames), atol=1e-6)
        table = np.loadtxt(out / f"{vid}.csv", delimiter=",", skiprows=1, ndmin=2)
        assert (out / f"{vid}.csv").read_text().startswith("frame,time_s,score\n")
        assert table.shape == (num_frames, 3)
        np.testing.assert_allclose(table[:, 1], np.arange(num_frames) / fps, atol=1e-4)
        np.testing.assert_allclose(table[:, 2], curve, atol=1e-6)
        info = json.loads((out / f"{vid}.events.json").read_text())
        assert info["num_frames"] == num_frames and info["peak"] == pytest.approx(curve.max(), abs=1e-6)
        assert info["num_events"] == len(info["events"])
        assert info["weights_sha256"] == EXTRACTOR["weights_sha256"] and info["window"] == WINDOW
        for event in info["events"]:
            assert (curve[event["start_frame"]:event["end_frame"]] >= 0.5).all()
        assert (out / f"{vid}.png").stat().st_size > 0
    index = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert [row["video_id"] for row in index] == sorted(v[0] for v in VIDEOS)
    assert (out / "failures.jsonl").read_text() == ""
    assert not list(out.glob(".*"))  # no temporary files left


def test_plots_get_the_fps_threshold_and_event_rule(tiny_run, tiny_shards, tmp_path, monkeypatch):
    drawn = {}

    def record(path, frame_scores, fps, events, threshold, title, threshold_use=""):
        drawn[Path(path).stem] = (fps, len(frame_scores), threshold, threshold_use, title)
        Path(path).write_bytes(b"png")
        return Path(path)

    monkeypatch.setattr(curve_files, "plot_curve_events", record)
    assert _score(tiny_run, tiny_shards, tmp_path / "s", "--threshold", "0.3",
                  "--min-duration", "0.5") == 0
    assert {vid: d[:4] for vid, d in drawn.items()} == {
        vid: (fps, n, 0.3, "events last >= 0.5 s") for vid, n, fps, *_ in VIDEOS}
    assert all(title.startswith(f"{vid}: ") for vid, (*_, title) in drawn.items())


def test_resume_skips_finished_videos(tiny_run, tiny_shards, tmp_path, caplog):
    out = tmp_path / "scores"
    assert _score(tiny_run, tiny_shards, out) == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / "cam_b.png").unlink()  # an interrupted video: outputs incomplete
    with caplog.at_level(logging.INFO):
        assert _score(tiny_run, tiny_shards, out) == 0
    assert "3 of 4 videos already scored" in caplog.text
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert after["cam_a.npy"] == before["cam_a.npy"]
    assert after["cam_b.npy"] != before["cam_b.npy"] and "cam_b.png" in after


def test_checkpoint_statistics_not_the_shards(tiny_run, tmp_path):
    """Shards normalized with other statistics are re-normalized with the checkpoint's."""
    other = type(STATS)(STATS.mean * 3, STATS.range * 0.5, 9, 90, "elsewhere")
    shards = write_tiny_shards(tmp_path / "other", stats=other)
    out = tmp_path / "scores"
    assert _score(tiny_run, shards, out) == 0
    np.testing.assert_allclose(np.load(out / "cam_a.npy"), _expected_curve(tiny_run, "cam_a", 100),
                               atol=1e-5)


def test_other_weights_fail_by_name(tiny_run, tmp_path):
    shards = write_tiny_shards(tmp_path / "other", extractor={**EXTRACTOR, "weights_sha256": "b" * 64})
    out = tmp_path / "scores"
    assert _score(tiny_run, shards, out) == 1
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert sorted(f["video_id"] for f in failures) == sorted(v[0] for v in VIDEOS)
    assert "trained on aaaaaaaaaaaa" in failures[0]["reason"]


def test_other_feature_dim_is_an_error(tiny_run, tmp_path, caplog):
    stats = type(STATS)(STATS.mean[:6], STATS.range[:6], 3, 30, "train")
    (tmp_path / "six").mkdir()
    write_shard(tmp_path / "six" / "s.h5",
                [VideoRecord("v", np.zeros((1, 6), np.float32), 5, 10.0, 0)], stats)
    assert _score(tiny_run, tmp_path / "six", tmp_path / "scores") == 2
    assert "6-d features but" in caplog.text and "--feature-dim 8" in caplog.text


def test_random_features_warn_loudly(tiny_run, tmp_path, caplog):
    shards = write_tiny_shards(tmp_path / "rnd", extractor={**EXTRACTOR, "random": True, "seed": 0})
    out = tmp_path / "scores"
    with caplog.at_level(logging.WARNING):
        assert _score(tiny_run, shards, out) == 0
    assert "RANDOM-WEIGHTS features scored with a checkpoint trained on real" in caplog.text
    assert json.loads((out / "cam_a.events.json").read_text())["random_features"] is True


def test_split_filter_and_bad_arguments(tiny_run, tiny_shards, tmp_path, caplog):
    assert _score(tiny_run, tiny_shards, tmp_path / "s", "--split", "train") == 2
    assert "no videos of split 'train'" in caplog.text
    assert main(["score", "--run", str(tiny_run), "--out", str(tmp_path / "s")]) == 2
    assert _score(tmp_path / "nowhere", tiny_shards, tmp_path / "s") == 2


def _thresholds(out: Path) -> dict[str, float]:
    return {json.loads(line)["video_id"]: json.loads(line)["threshold"]
            for line in (out / "index.jsonl").read_text().splitlines()}


def test_rerun_with_other_settings_never_mixes(tiny_run, tiny_shards, tmp_path, caplog, monkeypatch):
    """Another threshold, window or checkpoint on a finished folder: refused (exit 2, what to
    do), never skipped as if scored; --overwrite rescores and drops what it does not rescore."""
    monkeypatch.setattr(curve_files, "plot_curve_events",  # plots are not the point here
                        lambda path, *args, **kwargs: Path(path).write_bytes(b"png"))
    out = tmp_path / "scores"
    (tmp_path / "extra").mkdir()  # one more video, scored into the same folder by another job
    write_shard(tmp_path / "extra" / "x.h5", [VideoRecord(
        "cam_x", STATS.normalize(raw_features("cam_x", 40)), 40, 10.0, 0, "test", "Normal",
        "/footage/cam_x.mp4", 1000, extractor=EXTRACTOR)], STATS)
    assert _score(tiny_run, tmp_path / "extra", out) == 0
    assert _score(tiny_run, tiny_shards, out) == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    caplog.clear()
    assert _score(tiny_run, tiny_shards, out, "--threshold", "0.3") == 2
    assert "threshold" in caplog.text and "--overwrite" in caplog.text and str(out) in caplog.text
    assert _score(tiny_run, tiny_shards, out, "--window", "2") == 2 and "window" in caplog.text
    other = tmp_path / "other.pt"
    torch.manual_seed(1)
    ckpt = load_checkpoint(tiny_run)
    from claws.pipeline.training.checkpoint import save_checkpoint  # another checkpoint of the same shape
    save_checkpoint(other, model=type(ckpt.model)(**ckpt.model_args), model_name="claws",
                    model_args=ckpt.model_args, config=ckpt.config, norm_stats=ckpt.norm_stats,
                    feature_meta=ckpt.feature_meta, step=4, seed=0, version="test")
    caplog.clear()
    assert _score(other, tiny_shards, out) == 2 and "checkpoint" in caplog.text
    assert main(["score", str(tmp_path / "cam.mp4"), "--run", str(tiny_run), "--out", str(out),
                 "--threshold", "0.3"]) == 2  # raw footage: refused before any extraction
    assert not (out / ".features").exists()
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert set(_thresholds(out).values()) == {0.5} and len(_thresholds(out)) == 5
    # --overwrite: this job's videos rescored; cam_x, not in this job, removed rather than mixed
    assert _score(tiny_run, tiny_shards, out, "--threshold", "0.3", "--overwrite") == 0
    assert _thresholds(out) == {v[0]: 0.3 for v in VIDEOS}
    assert not list(out.glob("cam_x*")) and "cam_x" in caplog.text
    assert _score(tiny_run, tmp_path / "extra", out, "--threshold", "0.3") == 0  # same: adds it
    assert _thresholds(out) == {**{v[0]: 0.3 for v in VIDEOS}, "cam_x": 0.3}


def test_damaged_checkpoint_exits_2_by_name(tiny_run, tiny_shards, tmp_path, caplog):
    last = tiny_run / "checkpoints" / "last.pt"
    weight = next(iter(load_checkpoint(tiny_run).model.state_dict().values())).numpy().tobytes()
    data = bytearray(last.read_bytes())
    start = data.find(weight)
    data[start : start + 8] = bytes(8)
    last.write_bytes(bytes(data))
    assert _score(tiny_run, tiny_shards, tmp_path / "scores") == 2
    assert str(last) in caplog.text and "damaged" in caplog.text


# --- non-finite values (issue 20 item 5) ----------------------------------------------------------

def _run_with(folder: Path, stats, nsm_weight: float | None = None) -> Path:
    """A run like `tiny_run` with these statistics; `nsm_weight` fills module 1's NSM layer, so a
    video of huge features makes its softmax inf - inf = NaN."""
    from claws.model.claws import ClawsNet
    from claws.pipeline.training.checkpoint import save_checkpoint

    from .conftest import FEATURE_DIM

    torch.manual_seed(0)
    args = {"feature_dim": FEATURE_DIM, "hidden1": 6, "hidden2": 4}
    model = ClawsNet(**args)
    if nsm_weight is not None:
        with torch.no_grad():
            model.module1.nsm.weight.fill_(nsm_weight)
    save_checkpoint(folder / "checkpoints" / "last.pt", model=model, model_name="claws",
                    model_args=args, config={"window": WINDOW}, norm_stats=stats,
                    feature_meta={"feature_dim": FEATURE_DIM, "clip_len": 16, "extractor": EXTRACTOR},
                    step=3, seed=0, version="test")
    return folder


def _shards_with_a_huge_video(folder: Path, stats, value: float) -> Path:
    """cam_a as usual and `huge`, whose raw features are all `value`, normalized with `stats`."""
    from .conftest import FEATURE_DIM

    records = [VideoRecord("cam_a", stats.normalize(raw_features("cam_a", 100)), 100, 10.0, 1, "test",
                           extractor=EXTRACTOR),
               VideoRecord("huge", stats.normalize(np.full((3, FEATURE_DIM), value)), 40, 10.0, 0,
                           "test", extractor=EXTRACTOR)]
    folder.mkdir(parents=True)
    write_shard(folder / "shard-r000-00000.h5", records, stats)
    return folder


def _fails_alone(out: Path, video_id: str, reason: str) -> None:
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["video_id"] for f in failures] == [video_id] and reason in failures[0]["reason"]
    assert not list(out.glob(f"{video_id}.*")) and (out / "cam_a.events.json").is_file()
    written = "".join(p.read_text() for p in [out / "index.jsonl", *out.glob("*.events.json")])
    assert "NaN" not in written and "Infinity" not in written
    assert all(np.isfinite(np.load(p)).all() for p in out.glob("*.npy"))


def test_a_video_whose_scores_are_not_finite_fails_alone(tmp_path, caplog):
    """Finite features of 5e37 turn the NSM softmax into NaN: once an all-NaN curve and
    "peak": NaN with exit 0; now that video fails alone, named, and nothing NaN is written."""
    run = _run_with(tmp_path / "run", STATS, nsm_weight=1.0)
    shards = _shards_with_a_huge_video(tmp_path / "shards", STATS, 1e38)
    out = tmp_path / "scores"
    assert _score(run, shards, out) == 1
    _fails_alone(out, "huge", "not finite")
    assert "huge" in caplog.text


def test_features_that_overflow_after_normalization_fail_their_video(tmp_path):
    """Shards normalized with other statistics: 1e38 divided by the checkpoint's range of 1e-3
    overflows float32; that video fails alone with a message saying so."""
    small = type(STATS)(STATS.mean, np.full(STATS.feature_dim, 1e-3), 3, 30, "small ranges")
    run = _run_with(tmp_path / "run", small)
    shards = _shards_with_a_huge_video(tmp_path / "shards", STATS, 1e38)
    out = tmp_path / "scores"
    assert _score(run, shards, out) == 1
    _fails_alone(out, "huge", "not finite after normalization")


def test_a_250_character_id_is_scored_evaluated_and_reviewed(tiny_run, tmp_path):
    """Issue 20.3: `<id>.events.json` of a 250-character id exceeds the 255 bytes a file name may
    have ([Errno 36], exit 2 for the whole run). Its files are named by a bounded stem; the id
    itself is in index.jsonl, the events file and the review page."""
    from claws.data.videos import NAME_BYTES, file_stem

    long_id = "parking_lot_camera_" + "z" * 231
    records = [VideoRecord(vid, STATS.normalize(raw_features(vid, n)), n, 10.0, label, "test",
                           "", f"/footage/{vid}.mp4", 1000, extractor=EXTRACTOR)
               for vid, n, label in ((long_id, 40, 1), ("cam_b", 17, 0))]
    write_shard(tmp_path / "shards" / "s.h5", records, STATS)
    out = tmp_path / "scores"
    assert _score(tiny_run, tmp_path / "shards", out) == 0
    stem = file_stem(long_id)
    assert len(stem.encode()) <= NAME_BYTES and stem != long_id
    assert all(len(p.name.encode()) <= 255 for p in out.iterdir())
    assert json.loads((out / f"{stem}.events.json").read_text())["video_id"] == long_id
    np.testing.assert_allclose(np.load(out / f"{stem}.npy"),
                               _expected_curve(tiny_run, long_id, 40), atol=1e-6)
    index = [json.loads(line)["video_id"] for line in (out / "index.jsonl").read_text().splitlines()]
    assert index == sorted([long_id, "cam_b"])
    assert _score(tiny_run, tmp_path / "shards", out) == 0  # the rerun finds both finished
    (tmp_path / "gt.csv").write_text(f"video,start_frame,end_frame\n{long_id},5,20\ncam_b,,\n")
    assert main(["evaluate", str(out), "--intervals", str(tmp_path / "gt.csv"), "--out",
                 str(tmp_path / "report")]) == 0
    assert all(len(p.name.encode()) <= 255 for p in (tmp_path / "report").rglob("*"))
    assert main(["review", str(out)]) == 0
    assert (out / "review" / "curves" / f"{stem}.js").is_file()
    assert f'"curve_file":"{stem}"' in (out / "review" / "summaries.js").read_text()


# --- Ctrl-C and SIGTERM (issue 20 item 7) -----------------------------------------------------------

@pytest.mark.parametrize("signum", [2, 15])  # SIGINT, SIGTERM
def test_an_interrupted_score_says_what_is_done_and_the_rerun_finishes(
        tiny_run, tiny_shards, tmp_path, monkeypatch, capsys, signum):
    """A signal right after the first video's outputs: one line (no traceback), exit 128 +
    signal, no temporary file, and the rerun scores the rest like an uninterrupted run."""
    import os

    from claws.pipeline.scoring import job as scoring

    write = scoring.write_video_outputs

    def signalled_after_the_first(*args, **kwargs):
        summary = write(*args, **kwargs)
        os.kill(os.getpid(), signum)
        return summary

    out = tmp_path / "scores"
    with monkeypatch.context() as m:
        m.setattr(scoring, "write_video_outputs", signalled_after_the_first)
        assert _score(tiny_run, tiny_shards, out) == 128 + signum
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        f"interrupted: 1 video done in {out}, rerun the same command to resume")
    assert "Traceback" not in err and not list(out.glob(".*tmp*"))
    assert _score(tiny_run, tiny_shards, out) == 0
    reference = tmp_path / "reference"
    assert _score(tiny_run, tiny_shards, reference) == 0
    for vid, *_ in VIDEOS:
        np.testing.assert_array_equal(np.load(out / f"{vid}.npy"), np.load(reference / f"{vid}.npy"))
