"""`claws evaluate` (real entry point): report folder, both score sources, mismatches by name."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from claws.pipeline.evaluation import report as report_module
from claws.pipeline.cli import main

from .conftest import VIDEOS

# ground truth for the tiny shards' videos: cam_a 100 frames, cam_d 79 frames anomalous
INTERVALS = "video,start_frame,end_frame\ncam_a,20,60\ncam_a,90,100\ncam_d,0,10\ncam_b,,\ncam_c,,\n"


@pytest.fixture
def scores(tiny_run, tiny_shards, tmp_path) -> Path:
    out = tmp_path / "scores"
    assert main(["score", "--run", str(tiny_run), "--shards", str(tiny_shards), "--out", str(out),
                 "--no-progress"]) == 0
    return out


def _labels() -> dict[str, np.ndarray]:
    labels = {vid: np.zeros(n, np.uint8) for vid, n, *_ in VIDEOS}
    labels["cam_a"][20:60] = labels["cam_a"][90:100] = 1
    labels["cam_d"][0:10] = 1
    return labels


def test_report_from_scores_folder(scores, tmp_path):
    gt = tmp_path / "gt.csv"
    gt.write_text(INTERVALS)
    ref = tmp_path / "paper.csv"
    ref.write_text("AH,AI\n0,0\n0.1,0.6\n1,1\n")
    report = tmp_path / "report"
    assert main(["evaluate", str(scores), "--intervals", str(gt), "--out", str(report),
                 "--reference-roc", f"paper={ref}", "--no-progress"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    labels = _labels()
    ids = sorted(labels)
    expected = roc_auc_score(np.concatenate([labels[v] for v in ids]),
                             np.concatenate([np.load(scores / f"{v}.npy") for v in ids]))
    assert metrics["auc"] == pytest.approx(expected)
    assert metrics["num_frames"] == sum(n for _, n, *_ in VIDEOS)
    assert metrics["num_anomalous_frames"] == 60
    assert metrics["reference_auc"]["paper"] == pytest.approx(0.5 * 0.1 * 0.6 + 0.9 * 0.8)
    assert metrics["inputs"]["name"] == "tiny-run"
    assert metrics["inputs"]["random_features"] is False
    summary = (report / "summary.md").read_text()
    assert f"{100 * expected:.2f}%" in summary and "| cam_a |" in summary
    assert (report / "roc.png").is_file()
    assert sorted(p.name for p in (report / "videos").iterdir()) == [f"{v}.png" for v in ids]


def test_videos_list_restricts_the_test_set(scores, tmp_path, caplog):
    gt = tmp_path / "gt.csv"
    gt.write_text(INTERVALS)
    chosen = tmp_path / "chosen.txt"
    chosen.write_text("cam_a\ncam_b.mp4\n")
    report = tmp_path / "report"
    assert main(["evaluate", str(scores), "--intervals", str(gt), "--videos", str(chosen),
                 "--out", str(report), "--no-video-plots", "--no-progress"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    labels = _labels()
    expected = roc_auc_score(np.concatenate([labels[v] for v in ("cam_a", "cam_b")]),
                             np.concatenate([np.load(scores / f"{v}.npy") for v in ("cam_a", "cam_b")]))
    assert metrics["auc"] == pytest.approx(expected) and metrics["num_videos"] == 2
    assert "2 videos listed in" in metrics["ground_truth"]
    chosen.write_text("video,label\ncam_a,1\nnot_annotated,0\n")
    assert main(["evaluate", str(scores), "--intervals", str(gt), "--videos", str(chosen),
                 "--out", str(tmp_path / "r2"), "--no-progress"]) == 2
    assert "not_annotated" in caplog.text and "not in the ground truth" in caplog.text


def test_run_and_shards_give_the_same_figures(scores, tiny_run, tiny_shards, tmp_path):
    gt = tmp_path / "gt.csv"
    gt.write_text(INTERVALS)
    for name, source in (("a", [str(scores)]),
                         ("b", ["--run", str(tiny_run), "--shards", str(tiny_shards)])):
        assert main(["evaluate", *source, "--intervals", str(gt), "--out", str(tmp_path / name),
                     "--no-video-plots", "--no-progress"]) == 0
    a, b = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in "ab")
    assert a["auc"] == pytest.approx(b["auc"], abs=1e-7)
    assert a["false_alarm_rate"] == b["false_alarm_rate"]


def test_report_plots_get_each_videos_fps_and_the_threshold(
    scores, tiny_run, tiny_shards, tmp_path, monkeypatch
):
    drawn = {}

    def record(path, frame_scores, fps, frame_labels, threshold, title, threshold_use=""):
        drawn[Path(path).stem] = (fps, threshold, title.split(" ")[0], len(frame_labels))
        return Path(path)

    monkeypatch.setattr(report_module, "plot_curve_truth", record)
    gt = tmp_path / "gt.csv"
    gt.write_text(INTERVALS)
    want = {vid: (fps, 0.3, vid, n) for vid, n, fps, *_ in VIDEOS}
    for name, source in (("a", [str(scores)]),
                         ("b", ["--run", str(tiny_run), "--shards", str(tiny_shards)])):
        drawn.clear()
        assert main(["evaluate", *source, "--intervals", str(gt), "--threshold", "0.3",
                     "--out", str(tmp_path / name), "--no-progress"]) == 0
        assert drawn == want, name


def evaluate_ucf(scores: Path, tmp_path: Path, cam_a: str, cam_d: str) -> Path:
    """`claws evaluate` against a UCF-Crime annotation of the tiny videos (cam_a Arson and cam_d
    Shooting with the given 1-based 'start end start end' ranges); returns the report folder."""
    ann = tmp_path / "Temporal_Anomaly_Annotation.txt"
    ann.write_text(f"cam_a.mp4  Arson  {cam_a}\ncam_d.mp4  Shooting  {cam_d}\n"
                   "cam_b.mp4  Normal  -1  -1  -1  -1\ncam_c.mp4  Normal  -1  -1  -1  -1\n")
    report = tmp_path / "report"
    assert main(["evaluate", str(scores), "--ucf-annotations", str(ann), "--out", str(report),
                 "--no-video-plots", "--no-progress"]) == 0
    return report


def test_ucf_annotation_past_the_end_is_a_counted_warning(scores, tmp_path):
    report = evaluate_ucf(scores, tmp_path, "21  60  91  120", "1  10  -1  -1")
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["num_warnings"] == 1 and "cam_a" in metrics["warnings"][0]
    assert metrics["num_anomalous_frames"] == 60  # 21..60 and 91..100 (clipped), 1..10
    assert set(metrics["per_class_auc"]) == {"Arson", "Shooting"}
    assert "## Warnings (1)" in (report / "summary.md").read_text()


def test_mismatches_are_errors_by_name(scores, tmp_path, caplog):
    ann = tmp_path / "ann.txt"
    ann.write_text("cam_a.mp4  Arson  21  60  -1  -1\nlost_x264.mp4  Normal  -1  -1  -1  -1\n")
    counts = tmp_path / "Test_Annotation.txt"
    counts.write_text("Arson/cam_a.mp4 100 Arson 21 60 -1 -1\n"
                      "Testing_Normal_Videos_Anomaly/lost_x264.mp4 30 Normal -1 -1 -1 -1\n")
    args = ["--ucf-annotations", str(ann), "--ucf-frame-counts", str(counts), "--no-progress"]
    assert main(["evaluate", str(scores), *args, "--out", str(tmp_path / "r1")]) == 2
    assert "1 annotated videos have no scores: lost_x264" in caplog.text
    counts.write_text("Arson/cam_a.mp4 101 Arson 21 60 -1 -1\n")
    ann.write_text("cam_a.mp4  Arson  21  60  -1  -1\ncam_b.mp4  Normal  -1  -1  -1  -1\n")
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert main(["evaluate", str(scores), "--ucf-annotations", str(ann), "--ucf-frame-counts",
                     str(counts), "--out", str(tmp_path / "r2"), "--no-progress"]) == 2
    assert "cam_b has no frame count" in caplog.text
    ann.write_text("cam_a.mp4  Arson  21  60  -1  -1\n")
    caplog.clear()
    assert main(["evaluate", str(scores), *args, "--out", str(tmp_path / "r3")]) == 2
    assert "wrong length: cam_a (100 scores, 101 annotated frames)" in caplog.text
    assert not (tmp_path / "r3").exists()


def test_damaged_scores_folder_is_named(scores, tmp_path, caplog):
    np.save(scores / "cam_b.npy", np.zeros(5, np.float32))
    gt = tmp_path / "gt.csv"
    gt.write_text(INTERVALS)
    assert main(["evaluate", str(scores), "--intervals", str(gt), "--out", str(tmp_path / "r"),
                 "--no-progress"]) == 2
    assert "cam_b" in caplog.text and "rerun `claws score`" in caplog.text


def test_damaged_index_line_or_events_file_is_named_with_what_to_do(
        scores, tiny_run, tiny_shards, tmp_path, caplog):
    from claws.pipeline.scoring.files import ScoresError, read_summaries

    gt = tmp_path / "gt.csv"
    gt.write_text(INTERVALS)
    index = (scores / "index.jsonl").read_text()
    for line, problem in [("{broken", "not a JSON object"),
                          ('{"video_id": "cam_x"}', "lacks num_frames"),
                          ('{"video_id": "cam_x", "num_frames": "many"}', "num_frames 'many' is not")]:
        (scores / "index.jsonl").write_text(index + line + "\n")
        caplog.clear()
        assert main(["evaluate", str(scores), "--intervals", str(gt), "--out", str(tmp_path / "r"),
                     "--no-progress"]) == 2
        assert f"index.jsonl:{len(VIDEOS) + 1}: {problem}" in caplog.text
        assert "rerun `claws score` with the same arguments" in caplog.text
    assert main(["score", "--run", str(tiny_run), "--shards", str(tiny_shards), "--out", str(scores),
                 "--no-progress"]) == 0  # what the message says: the index is whole again
    assert (scores / "index.jsonl").read_text() == index
    (scores / "cam_b.events.json").write_text('{"video_id": "cam_b", ')
    with pytest.raises(ScoresError, match=r"cam_b.events.json: not a JSON object .*delete it"):
        read_summaries(scores)


def test_interval_rows_without_num_frames_or_past_the_end(scores, tmp_path, caplog):
    gt = tmp_path / "gt.csv"  # rows shorter than the header: num_frames and class left out
    gt.write_text(INTERVALS.replace("end_frame\n", "end_frame,num_frames,class\n", 1))
    assert main(["evaluate", str(scores), "--intervals", str(gt), "--out", str(tmp_path / "r"),
                 "--no-video-plots", "--no-progress"]) == 0
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["num_anomalous_frames"] == 60
    gt.write_text(INTERVALS + "cam_d,79,90\n")  # cam_d has 79 frames: 0..78
    assert main(["evaluate", str(scores), "--intervals", str(gt), "--out", str(tmp_path / "r2"),
                 "--no-progress"]) == 2
    assert f"video cam_d: the annotation [79, 90) (0-based, end exclusive; {gt}:7) lies entirely " \
           "past the video's end (79 frames)" in caplog.text
    assert not (tmp_path / "r2").exists()


def test_report_localization(scores, tmp_path):
    """AUC_A, each anomalous video's own AUC (undefined for cam_d, anomalous throughout: null in
    metrics.json, 'undefined' in summary.md, never 0 or NaN), per-class AUC_A, and the figure."""
    report = evaluate_ucf(scores, tmp_path, "21  60  91  100", "1  79  -1  -1")
    text = (report / "metrics.json").read_text()
    assert "NaN" not in text
    metrics = json.loads(text)
    labels = _labels()
    labels["cam_d"][:] = 1
    curves = {v: np.load(scores / f"{v}.npy") for v in labels}
    both = np.concatenate([labels["cam_a"], labels["cam_d"]])
    both_scores = np.concatenate([curves["cam_a"], curves["cam_d"]])
    assert metrics["auc_anomalous"] == pytest.approx(roc_auc_score(both, both_scores))
    own = {row["video_id"]: row["auc"] for row in metrics["per_video"]}
    assert own == {"cam_a": pytest.approx(roc_auc_score(labels["cam_a"], curves["cam_a"])),
                   "cam_d": None}
    assert metrics["num_video_auc_undefined"] == 1
    assert metrics["video_auc_mean"] == metrics["video_auc_median"] == pytest.approx(own["cam_a"])
    assert metrics["per_class_auc_anomalous"] == {"Arson": pytest.approx(own["cam_a"]),
                                                  "Shooting": None}
    summary = (report / "summary.md").read_text()
    assert f"| AUC_A: frame AUC over the anomalous videos' frames alone | " \
           f"{100 * metrics['auc_anomalous']:.2f}% |" in summary
    assert "1 undefined (anomalous throughout)" in summary
    assert "| Shooting |" in summary and summary.count("| undefined |") >= 2  # class, cam_d row
    assert (report / "video_auc.png").is_file() and "(video_auc.png)" in summary


def _evaluate_into(scores: Path, tmp_path: Path, report: Path) -> int:
    gt = tmp_path / "gt.csv"
    gt.write_text(INTERVALS)
    return main(["evaluate", str(scores), "--intervals", str(gt), "--out", str(report),
                 "--no-progress"])


def test_a_full_disk_names_the_report_folder_and_the_plot(scores, tmp_path, monkeypatch, caplog):
    """Issue 20 item 9: a write reporting ENOSPC (faked at fsync) at the first file, roc.png:
    exit 2 naming the folder, the file and its size; nothing left behind."""
    import errno
    import os

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    report = tmp_path / "report"
    with monkeypatch.context() as m:
        m.setattr(os, "fsync", fsync)
        assert _evaluate_into(scores, tmp_path, report) == 2
    message = caplog.records[-1].getMessage()
    assert f"no space left in {report}" in message and "roc.png needs" in message
    assert not any(report.rglob("*.*"))


def test_a_real_full_disk_names_the_report_folder_then_the_rerun_writes_it(
        scores, tmp_path, tmpfs, fill_disk, monkeypatch, caplog):
    """On a full tmpfs (root only) the plot's PNG encoder once ended in a bare `[Errno 28]`."""
    plot_roc = report_module.plot_roc

    def fill_then_plot(*args, **kwargs):
        fill_disk(tmpfs)
        return plot_roc(*args, **kwargs)

    report = tmpfs / "report"
    with monkeypatch.context() as m:
        m.setattr(report_module, "plot_roc", fill_then_plot)
        assert _evaluate_into(scores, tmp_path, report) == 2
    assert f"no space left in {report}" in caplog.records[-1].getMessage()
    assert not any(report.rglob("*.*"))
    (tmpfs / "ballast").unlink()
    assert _evaluate_into(scores, tmp_path, report) == 0
    assert (report / "roc.png").is_file() and (report / "summary.md").is_file()


@pytest.mark.parametrize("text", ["cam_a\ncam_b\n", "video,label\ncam_a,1\ncam_b,0\n"])
def test_a_videos_list_with_a_byte_order_mark(tmp_path, with_bom, text):
    """Issue 20 item 8: the BOM became part of the first id or of the 'video' header."""
    from claws.pipeline.evaluation.job import read_video_list

    assert read_video_list(with_bom(tmp_path / "chosen.csv", text)) == ["cam_a", "cam_b"]


def test_summary_shows_names_as_text_never_as_html(scores, tmp_path):
    """Issue 20: summary.md embedded class names (and run, curve and file names) raw, so a
    Markdown viewer ran their HTML and a '|' split their table cell."""
    evil = "<img src=x onerror=alert(1)>|Arson"
    gt = tmp_path / "gt`<i>x.csv"  # a backtick would end a code span early
    gt.write_text("video,start_frame,end_frame,class\n"
                  f"cam_a,20,60,{evil}\ncam_a,90,120,{evil}\ncam_d,0,10,Robbery\ncam_b,,,\ncam_c,,,\n")
    ref = tmp_path / "paper.csv"
    ref.write_text("FPR,TPR\n0,0\n0.1,0.6\n1,1\n")
    report = tmp_path / "report"
    assert main(["evaluate", str(scores), "--intervals", str(gt), "--out", str(report),
                 "--name", "<b>run</b>", "--reference-roc", f"<script>alert(1)</script>={ref}",
                 "--no-progress"]) == 0
    summary = (report / "summary.md").read_text()
    assert "<" not in summary.replace("&lt;", "")  # no tag of ours either: the text is all text
    assert "&lt;img src=x onerror=alert(1)&gt;\\|Arson" in summary
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in summary and "&lt;b&gt;run&lt;/b&gt;" in summary
    assert "gt\\`&lt;i&gt;x.csv" in summary  # in the warning and the ground-truth line
    for line in summary.splitlines():  # every table row keeps its header's number of cells
        if line.startswith("|"):
            cells = len(re.split(r"(?<!\\)\|", line))
            assert cells in (4, 5, 10), line
