"""`claws import-features`: per-video .npy files to the same shards as `claws extract`, with the real
UCF-Crime and ShanghaiTech list files for names, splits, labels and frame counts."""

import json
import math

import numpy as np

from claws.data.feature_files import FrameCount, read_frame_counts
from claws.data.shards import ShardSet
from claws.pipeline.cli import main

D = 6
QUIET = ["--no-progress"]


def raw(video_id: str, rows: int, crops: int = 0) -> np.ndarray:
    rng = np.random.default_rng(sum(map(ord, video_id)))
    shape = (rows, crops, D) if crops else (rows, D)
    return rng.normal(2.0, 1.5, shape).astype(np.float32)


def write_case(tmp_path, counts_csv=True):
    """Four videos: plain (T, D), 10-crop (T, 10, D), per-crop files, and one without a count."""
    feats = tmp_path / "feats"
    (feats / "train").mkdir(parents=True)
    (feats / "test").mkdir()
    np.save(feats / "train" / "cam_a.npy", raw("cam_a", 7))  # 100 frames -> 7 clips
    np.save(feats / "train" / "cam_b_i3d.npy", raw("cam_b", 2, crops=10))  # 17 frames -> 2 clips
    for k in range(3):
        np.save(feats / "test" / f"cam_c__{k}.npy", raw("cam_c", 1) + k)  # 1 frame -> 1 clip
    np.save(feats / "test" / "cam_d.npy", raw("cam_d", 5))  # no count -> 80 frames
    manifest = tmp_path / "videos.csv"
    manifest.write_text("video,label,split,class\ncam_a,normal,train,\ncam_b.mp4,anomalous,train,Arson\n"
                        "cam_c,1,test,Shooting\ncam_d,0,test,\n")
    counts = tmp_path / "counts.csv"
    counts.write_text("video,num_frames,fps\ncam_a,100,10\ncam_b,17,25\ncam_c,1,30\n")
    return feats, manifest, counts


def test_manifest_import_matches_the_extract_contract(tmp_path):
    feats, manifest, counts = write_case(tmp_path)
    out = tmp_path / "out"
    args = ["import-features", "manifest", str(manifest), "--features", str(feats), "--frame-counts",
            str(counts), "--network", "toy", "--fps", "12", "--out", str(out)] + QUIET
    assert main(args) == 0
    shards = ShardSet(out)
    assert shards.video_ids == ["cam_a", "cam_b", "cam_c", "cam_d"] and shards.feature_dim == D
    got = {v.video_id: (v.num_frames, v.num_clips, v.fps, v.label, v.split, v.class_name) for v in shards}
    assert got == {"cam_a": (100, 7, 10.0, 0, "train", ""), "cam_b": (17, 2, 25.0, 1, "train", "Arson"),
                   "cam_c": (1, 1, 30.0, 1, "test", "Shooting"), "cam_d": (80, 5, 12.0, 0, "test", "")}
    train_raw = np.concatenate([raw("cam_a", 7), raw("cam_b", 2, crops=10).mean(axis=1)])
    stats = shards.stats
    assert (stats.num_videos, stats.num_clips) == (2, 9)  # training split only
    np.testing.assert_allclose(stats.mean, train_raw.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats.range, train_raw.max(0) - train_raw.min(0), rtol=1e-5)
    cam_c = np.mean([raw("cam_c", 1) + k for k in range(3)], axis=0)
    np.testing.assert_allclose(shards.features("cam_c", raw=True), cam_c, atol=1e-5)
    np.testing.assert_allclose(shards.features("cam_a"), (raw("cam_a", 7) - stats.mean) / stats.range,
                               atol=1e-5)
    ex = {v.video_id: v.extractor for v in shards}
    assert ex["cam_b"]["crops_averaged"] == 10 and ex["cam_c"]["crops_averaged"] == 3
    assert ex["cam_a"]["weights"] == "unknown (imported)" and ex["cam_a"]["imported"] is True
    assert ex["cam_a"]["network"] == "imported:toy" and ex["cam_a"]["original_dim"] == D
    assert ex["cam_a"]["source_folder"] == str(feats.resolve())
    assert ex["cam_a"]["num_frames_source"] == "list counts.csv"
    assert ex["cam_d"]["num_frames_source"] == "clip_len * T (no frame count)"
    assert shards.videos["cam_b"].source_path.endswith("cam_b_i3d.npy")
    assert main(args) == 0  # a rerun imports nothing and writes nothing
    assert len(ShardSet(out).files) == 1


def test_mismatch_fails_the_video_not_the_job_and_clip_trusts_rows(tmp_path, caplog):
    feats, manifest, counts = write_case(tmp_path)
    np.save(feats / "train" / "cam_a.npy", raw("cam_a", 32))  # a 32-segment file, 100 frames listed
    common = ["import-features", "manifest", str(manifest), "--features", str(feats),
              "--frame-counts", str(counts), "--fps", "12"] + QUIET
    out = tmp_path / "strict"
    assert main(common + ["--out", str(out)]) == 1
    assert ShardSet(out).video_ids == ["cam_b", "cam_c", "cam_d"]
    failure = json.loads((out / "failures.jsonl").read_text().splitlines()[0])
    assert failure["video_id"] == "cam_a" and "needs ceil(100/16) = 7 clips" in failure["reason"]
    assert "--frames-mismatch clip" in failure["reason"]
    loose = tmp_path / "loose"
    assert main(common + ["--out", str(loose), "--frames-mismatch", "clip"]) == 0
    info = ShardSet(loose).videos["cam_a"]
    assert (info.num_frames, info.num_clips) == (497, 32)  # clipped up into (31*16, 32*16]
    assert info.extractor["num_frames_source"] == "list counts.csv, clipped to T"


def test_unreadable_file_is_logged_then_a_rerun_imports_it(tmp_path):
    feats, manifest, counts = write_case(tmp_path)
    (feats / "test" / "cam_d.npy").write_bytes(b"\x93NUMPY garbage")
    args = ["import-features", "manifest", str(manifest), "--features", str(feats), "--frame-counts",
            str(counts), "--fps", "12", "--out", str(tmp_path / "out")] + QUIET
    assert main(args) == 1
    failures = (tmp_path / "out" / "failures.jsonl").read_text().splitlines()
    assert [json.loads(f)["video_id"] for f in failures] == ["cam_d"]
    assert "unreadable .npy" in json.loads(failures[0])["reason"]
    before = ShardSet(tmp_path / "out")
    np.save(feats / "test" / "cam_d.npy", raw("cam_d", 5))
    assert main(args) == 0
    after = ShardSet(tmp_path / "out")
    assert after.video_ids == ["cam_a", "cam_b", "cam_c", "cam_d"] and len(after.files) == 2
    np.testing.assert_array_equal(after.stats.mean, before.stats.mean)  # stored statistics kept


def test_stats_from_an_earlier_run_and_pair_reduction(tmp_path):
    feats, manifest, counts = write_case(tmp_path)
    first = tmp_path / "first"
    assert main(["import-features", "manifest", str(manifest), "--features", str(feats), "--fps", "12",
                 "--frame-counts", str(counts), "--out", str(first)] + QUIET) == 0
    test_only = tmp_path / "test_only.csv"
    test_only.write_text("video,label,split\ncam_d,0,test\n")
    second = tmp_path / "second"
    assert main(["import-features", "manifest", str(test_only), "--features", str(feats), "--fps", "12",
                 "--stats-from", str(first), "--out", str(second)] + QUIET) == 0
    np.testing.assert_allclose(ShardSet(second).features("cam_d"), ShardSet(first).features("cam_d"))
    halved = tmp_path / "halved"
    assert main(["import-features", "manifest", str(manifest), "--features", str(feats), "--fps", "12",
                 "--feature-dim", str(D // 2), "--out", str(halved)] + QUIET) == 0
    pairs = raw("cam_a", 7).reshape(7, D // 2, 2).mean(-1)
    np.testing.assert_allclose(ShardSet(halved).features("cam_a", raw=True), pairs, atol=1e-5)
    assert main(["import-features", "manifest", str(test_only), "--features", str(feats), "--fps", "12",
                 "--out", str(tmp_path / "no_train")] + QUIET) == 2  # nothing to compute stats from


def test_missing_files_and_missing_fps_stop_before_work(tmp_path):
    feats, manifest, counts = write_case(tmp_path)
    (feats / "test" / "cam_d.npy").unlink()
    base = ["import-features", "manifest", str(manifest), "--features", str(feats), "--fps", "12"] + QUIET
    assert main(base + ["--out", str(tmp_path / "a")]) == 2
    assert not (tmp_path / "a").exists()
    assert main(base + ["--out", str(tmp_path / "b"), "--allow-missing"]) == 0
    assert len(ShardSet(tmp_path / "b")) == 3
    assert main(["import-features", "manifest", str(manifest), "--features", str(feats),
                 "--allow-missing", "--out", str(tmp_path / "c")] + QUIET) == 2  # no fps anywhere


def test_ucf_crime_with_the_real_lists(tmp_path, shared_data):
    ucf = shared_data / "ucf_crime"
    counts = {**read_frame_counts(ucf / "Train_Annotation.txt"), **read_frame_counts(ucf / "Test_Annotation.txt")}
    names = ["Abuse001_x264", "Normal_Videos308_x264", "Arson022_x264", "Normal_Videos_872_x264"]
    feats = tmp_path / "ucf_i3d"
    feats.mkdir()
    for name in names:  # RTFM layout: <name>_i3d.npy holding (T, 10, D)
        np.save(feats / f"{name}_i3d.npy", raw(name, math.ceil(counts[name].num_frames / 16), crops=10))
    out = tmp_path / "out"
    assert main(["import-features", "ucf-crime", "--features", str(feats), "--train-list",
                 str(ucf / "Anomaly_Train.txt"), "--test-annotation",
                 str(ucf / "Temporal_Anomaly_Annotation.txt"), "--frame-counts",
                 str(ucf / "Train_Annotation.txt"), str(ucf / "Test_Annotation.txt"),
                 "--allow-missing", "--out", str(out)] + QUIET) == 0
    shards = ShardSet(out)
    assert shards.video_ids == sorted(names)
    arson = shards.videos["Arson022_x264"]
    assert (arson.num_frames, arson.fps, arson.label, arson.split, arson.class_name) == (
        8640, 30.0, 1, "test", "Arson")
    normal = shards.videos["Normal_Videos308_x264"]
    assert (normal.label, normal.split, normal.num_frames) == (0, "train", counts[normal.video_id].num_frames)
    assert shards.stats.num_videos == 2


def test_shanghaitech_with_the_real_lists(tmp_path, shared_data):
    sht = shared_data / "shanghaitech"
    counts = read_frame_counts(sht / "SH_Test_NEW.txt")
    assert counts["01_001"] == FrameCount(764, 0.0, "SH_Test_NEW.txt") and counts["01_0015"].num_frames == -1
    feats = tmp_path / "sht"
    feats.mkdir()
    rows = {"01_0014": 20, "01_002": 9, "01_001": math.ceil(764 / 16), "01_0015": 13}
    for name, t in rows.items():
        np.save(feats / f"{name}_i3d.npy", raw(name, t))
    out = tmp_path / "out"
    assert main(["import-features", "shanghaitech", "--features", str(feats), "--train-list",
                 str(sht / "SH_Train.txt"), "--test-list", str(sht / "SH_Test.txt"), "--frame-counts",
                 str(sht / "SH_Test_NEW.txt"), "--allow-missing", "--out", str(out)] + QUIET) == 0
    v = ShardSet(out).videos
    assert (v["01_001"].num_frames, v["01_001"].split, v["01_001"].label, v["01_001"].fps) == (764, "test", 0, 24.0)
    assert (v["01_0015"].num_frames, v["01_0015"].label) == (13 * 16, 1)  # list says -1: 16 * T
    assert v["01_0014"].split == "train" and v["01_0014"].label == 1


def test_a_replaced_feature_file_is_imported_again(tmp_path, monkeypatch, caplog):
    """A work file is keyed by the file it was read from: a newer file is read again."""
    import claws.extract.import_job as import_job

    feats, manifest, counts = write_case(tmp_path)
    out = tmp_path / "out"
    args = ["import-features", "manifest", str(manifest), "--features", str(feats), "--frame-counts",
            str(counts), "--fps", "12", "--out", str(out)] + QUIET
    with monkeypatch.context() as m:
        m.setattr(import_job, "finish_job", lambda *a, **k: [])  # stopped before the shards
        assert main(args) == 0
    np.save(feats / "train" / "cam_a.npy", raw("cam_a", 7) + 1)  # same shape, new content
    assert main(args) == 0
    np.testing.assert_allclose(ShardSet(out).features("cam_a", raw=True), raw("cam_a", 7) + 1,
                               atol=1e-5)
    assert "cam_a: its work file was made from" in caplog.text and "importing it again" in caplog.text


def test_stats_from_of_another_dim_stops_before_any_file_is_read(tmp_path, caplog):
    feats, manifest, counts = write_case(tmp_path)
    common = ["import-features", "manifest", str(manifest), "--features", str(feats), "--fps", "12",
              "--frame-counts", str(counts)] + QUIET
    halved = tmp_path / "halved"
    assert main(common + ["--feature-dim", str(D // 2), "--out", str(halved)]) == 0
    out = tmp_path / "out"
    assert main(common + ["--stats-from", str(halved), "--out", str(out)]) == 2
    assert f"--stats-from {halved} holds statistics of feature dim {D // 2}" in caplog.text
    assert not (out / ".work").exists() and not (out / "failures.jsonl").exists()


def test_object_array_file_is_named_with_what_to_do(tmp_path, caplog):
    """np.load(allow_pickle=False) refuses object arrays; the message names the file and says how
    to save it, whether the file is the first one read (the job's feature dim) or a later one."""
    feats, manifest, counts = write_case(tmp_path)
    objects = np.empty(2, dtype=object)
    objects[:] = [np.zeros(D), np.zeros(D)]
    np.save(feats / "train" / "cam_a.npy", objects, allow_pickle=True)
    args = ["import-features", "manifest", str(manifest), "--features", str(feats), "--frame-counts",
            str(counts), "--fps", "12", "--out", str(tmp_path / "out")] + QUIET
    assert main(args) == 1  # the other videos are imported
    [failure] = [json.loads(f) for f in (tmp_path / "out" / "failures.jsonl").read_text().splitlines()]
    assert failure["video_id"] == "cam_a"
    assert f"{feats / 'train' / 'cam_a.npy'}: an array of Python objects" in failure["reason"]
    assert "np.save" in failure["reason"]
    alone = tmp_path / "alone.csv"
    alone.write_text("video,label,split\ncam_a,normal,train\n")
    caplog.clear()
    assert main(["import-features", "manifest", str(alone), "--features", str(feats / "train"),
                 "--fps", "12", "--out", str(tmp_path / "out2")] + QUIET) == 2
    assert f"{feats / 'train' / 'cam_a.npy'}: an array of Python objects" in caplog.text


# --- non-finite values (issue 20 item 5) ----------------------------------------------------------

def _failures(out) -> list[dict]:
    return [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]


def test_a_file_that_overflows_after_normalization_fails_alone(tmp_path):
    """1e38 is a finite float32, but not once divided by the small ranges of training videos that
    barely vary: that video fails alone (exit 1, failures.jsonl names its file), the others are
    imported, and nothing non-finite reaches a shard."""
    feats, manifest, counts = write_case(tmp_path)
    np.save(feats / "train" / "cam_a.npy", raw("cam_a", 7) * np.float32(1e-3))
    np.save(feats / "train" / "cam_b_i3d.npy", raw("cam_b", 2, crops=10) * np.float32(1e-3))
    np.save(feats / "test" / "cam_d.npy", np.full((5, D), 1e38, np.float32))
    out = tmp_path / "out"
    args = ["import-features", "manifest", str(manifest), "--features", str(feats), "--frame-counts",
            str(counts), "--fps", "12", "--out", str(out)] + QUIET
    assert main(args) == 1
    shards = ShardSet(out)
    assert shards.video_ids == ["cam_a", "cam_b", "cam_c"]
    assert all(np.isfinite(shards.features(v)).all() for v in shards.video_ids)
    [failure] = _failures(out)
    assert failure["video_id"] == "cam_d" and failure["path"].endswith("cam_d.npy")
    assert "not finite after normalization" in failure["reason"]


def test_a_file_whose_pair_means_overflow_fails_alone(tmp_path):
    """Averaging adjacent pairs of 3e38 in float32 gives inf: the video fails alone, and the
    statistics come from the other training video, not from inf."""
    feats, manifest, counts = write_case(tmp_path)
    np.save(feats / "train" / "cam_a.npy", np.full((7, 2 * D), 3e38, np.float32))
    out = tmp_path / "out"
    args = ["import-features", "manifest", str(manifest), "--features", str(feats), "--frame-counts",
            str(counts), "--fps", "12", "--feature-dim", str(D), "--out", str(out)] + QUIET
    assert main(args) == 1
    shards = ShardSet(out)
    assert shards.video_ids == ["cam_b", "cam_c", "cam_d"] and shards.stats.num_videos == 1
    [failure] = _failures(out)
    assert failure["video_id"] == "cam_a" and failure["path"].endswith("cam_a.npy")
    assert "not finite" in failure["reason"]


def test_a_file_holding_inf_fails_alone(tmp_path):
    feats, manifest, counts = write_case(tmp_path)
    values = raw("cam_d", 5)
    values[2, 3] = np.inf
    np.save(feats / "test" / "cam_d.npy", values)
    out = tmp_path / "out"
    assert main(["import-features", "manifest", str(manifest), "--features", str(feats),
                 "--frame-counts", str(counts), "--fps", "12", "--out", str(out)] + QUIET) == 1
    assert ShardSet(out).video_ids == ["cam_a", "cam_b", "cam_c"]
    [failure] = _failures(out)
    assert failure["video_id"] == "cam_d" and "NaN or inf" in failure["reason"]
