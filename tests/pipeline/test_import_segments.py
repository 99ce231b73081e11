"""`claws import-features --segments N`: segment-pooled files (.txt, .csv with a width line, .npy,
.npz keyed by video) to per-clip shards, through the `claws` entry point, with hand-made files and
with the real UCF-Crime 32-segment C3D features in ../shared/data."""

import json
import logging
from collections import Counter

import numpy as np
import pytest

from claws.data.clips import num_clips
from claws.data.feature_files import read_frame_counts
from claws.data.shards import ShardSet
from claws.extract.segments import clip_segments, sultani_segment_bounds
from claws.pipeline.cli import main

D = 4
N = 4
QUIET = ["--no-progress"]
C_BOUNDS = [[1, 24], [25, 40], [41, 41], [42, 60]]
# video -> (split, num_frames listed or None, clip -> segment worked out by hand)
CASE = {
    "a": ("train", 100, [0, 1, 1, 2, 3, 3, 3]),  # a.txt, Sultani's recipe (n = 6 clips)
    "b": ("train", None, [0, 0, 1, 2, 3]),  # b.csv, width 20: bounds end at frame 80
    "c": ("test", 50, [0, 0, 1, 3]),  # more.npz["c"], bounds.npz["c/bounds"] = C_BOUNDS
    "d": ("test", 10, [0]),  # d_C.txt, one clip: every segment is clip 1
    "e": ("train", 100, [0, 1, 1, 2, 3, 3, 3]),  # e.npy, Sultani's recipe
}


def rows(video_id: str, n: int = N) -> np.ndarray:
    rng = np.random.default_rng(sum(map(ord, video_id)))
    return np.round(rng.uniform(0.0, 3.0, (n, D)), 4).astype(np.float32)


def write_txt(path, array, sep=" ", width=None):
    lines = ([str(width)] if width is not None else []) + [sep.join(f"{v:.4f}" for v in r) for r in array]
    path.write_text("\n".join(lines) + "\n")


def write_case(tmp_path, a_rows=N):
    """The five videos of CASE, their manifest, frame counts and bounds file."""
    feats = tmp_path / "feats"
    (feats / "Arson").mkdir(parents=True)
    write_txt(feats / "a.txt", rows("a", a_rows))
    write_txt(feats / "Arson" / "b.csv", rows("b"), sep=",", width=20)
    write_txt(feats / "d_C.txt", rows("d"))
    np.save(feats / "e.npy", rows("e"))
    (feats / "README.txt").write_text("not a feature file, never read\n")
    np.savez(tmp_path / "more.npz", c=rows("c"), zz=rows("zz"))
    np.savez(tmp_path / "bounds.npz", **{"c/bounds": np.array(C_BOUNDS, dtype=np.int32)})
    manifest = tmp_path / "videos.csv"
    manifest.write_text("video,label,split\n" + "".join(
        f"{v},{int(v in 'bc')},{split}\n" for v, (split, _, _) in CASE.items()))
    counts = tmp_path / "counts.csv"  # extra columns and a repeated row that agrees
    counts.write_text("video,source,num_frames\n" + "".join(
        f"{v},x,{n}\n" for v, (_, n, _) in CASE.items() if n) + "a,y,100\n")
    return feats, manifest, counts


def command(tmp_path, feats, manifest, counts, out="out", *extra):
    return (["import-features", "manifest", str(manifest), "--segments", str(N), "--features",
             str(feats), str(tmp_path / "more.npz"), "--segment-bounds", str(tmp_path / "bounds.npz"),
             "--frame-counts", str(counts), "--fps", "30", "--out", str(tmp_path / out)]
            + list(extra) + QUIET)


def test_every_clip_gets_the_row_of_its_segment(tmp_path):
    feats, manifest, counts = write_case(tmp_path)
    out = tmp_path / "out"
    assert main(command(tmp_path, feats, manifest, counts)) == 0
    shards = ShardSet(out)
    assert shards.video_ids == sorted(CASE)
    for vid, (split, listed, owner) in CASE.items():
        info = shards.videos[vid]
        num_frames = listed or 80
        assert (info.num_frames, info.num_clips, info.split) == (num_frames, len(owner), split)
        np.testing.assert_allclose(shards.features(vid, raw=True), rows(vid)[owner], atol=1e-6)
    raw_b = shards.features("b", raw=True)  # by hand: the tail clip after the last segment
    np.testing.assert_allclose(raw_b[4], rows("b")[3], atol=1e-6)
    ex = {v.video_id: v.extractor for v in shards}
    assert ex["a"]["segment_bounds_source"] == "sultani recipe" and ex["a"]["segment_format"] == "txt"
    assert ex["b"]["segment_bounds_source"] == "csv width 20"
    assert ex["b"]["num_frames_source"] == "last frame of the segment bounds (csv width 20)"
    assert ex["c"]["segment_bounds_source"] == "bounds.npz:c/bounds"
    assert (ex["c"]["segment_format"], ex["c"]["npz_key"]) == ("npz", "c")
    assert ex["c"]["source_folder"] == str((tmp_path / "more.npz").resolve())
    assert ex["d"]["source_file"].endswith("d_C.txt") and ex["e"]["segment_format"] == "npy"
    assert all(e["segments"] == N and e["segment_rows"] == N and e["l2_normalized"] is False
               for e in ex.values())
    train = np.concatenate([rows(v)[CASE[v][2]] for v in ("a", "b", "e")])
    np.testing.assert_allclose(shards.stats.mean, train.mean(0), rtol=1e-5)  # training split only
    assert main(command(tmp_path, feats, manifest, counts)) == 0  # a rerun imports nothing
    assert len(ShardSet(out).files) == 1


def test_first_source_wins_and_duplicates_within_a_source_are_an_error(tmp_path, caplog):
    feats, manifest, counts = write_case(tmp_path)
    first = tmp_path / "first"
    first.mkdir()
    np.savez(first / "override.npz", a=rows("other a"))
    args = command(tmp_path, feats, manifest, counts)
    at = args.index("--features") + 1
    with caplog.at_level(logging.INFO):
        assert main(args[:at] + [str(first)] + args[at:]) == 0
    a = ShardSet(tmp_path / "out").videos["a"]
    assert a.source_path.endswith("override.npz") and a.extractor["npz_key"] == "a"
    np.testing.assert_allclose(ShardSet(tmp_path / "out").features("a", raw=True),
                               rows("other a")[CASE["a"][2]], atol=1e-6)
    assert "1 shadowed by earlier sources (e.g. a)" in caplog.text
    np.save(feats / "Arson" / "a_c3d.npy", rows("a"))  # a second file of a in one source
    assert main(command(tmp_path, feats, manifest, counts, "dup")) == 2
    assert "several feature files match" in caplog.text and not (tmp_path / "dup").exists()


def test_bounds_prefix_is_needed_when_a_video_has_several(tmp_path, caplog):
    feats, manifest, counts = write_case(tmp_path)
    np.savez(tmp_path / "bounds.npz", **{"x/c/bounds": np.array(C_BOUNDS),
                                        "y/c/bounds": np.array([[1, 16], [17, 32], [33, 48], [49, 50]])})
    assert main(command(tmp_path, feats, manifest, counts, "ambiguous")) == 2
    assert "x/c/bounds, y/c/bounds" in caplog.text and "--bounds-prefix" in caplog.text
    assert main(command(tmp_path, feats, manifest, counts, "out", "--bounds-prefix", "y")) == 0
    c = ShardSet(tmp_path / "out").videos["c"]
    assert c.extractor["segment_bounds_source"] == "bounds.npz:y/c/bounds"
    np.testing.assert_allclose(ShardSet(tmp_path / "out").features("c", raw=True),
                               rows("c")[[0, 1, 2, 3]], atol=1e-6)


def test_l2_normalisation_comes_before_the_pair_average(tmp_path):
    feats, manifest, counts = write_case(tmp_path)
    a = rows("a")
    a[2] = 0.0  # a row of zeros stays zero
    write_txt(feats / "a.txt", a)
    out = tmp_path / "out"
    assert main(command(tmp_path, feats, manifest, counts, "out", "--l2-normalize",
                        "--feature-dim", str(D // 2))) == 0
    unit = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-30)
    expected = unit.reshape(N, D // 2, 2).mean(-1)[CASE["a"][2]]
    np.testing.assert_allclose(ShardSet(out).features("a", raw=True), expected, atol=1e-6)
    assert ShardSet(out).videos["a"].extractor["l2_normalized"] is True
    clip_feats = tmp_path / "clips"  # per-clip mode, one (T, D) file
    clip_feats.mkdir()
    np.save(clip_feats / "a.npy", a[:2])
    one = tmp_path / "one.csv"
    one.write_text("video,label,split\na,0,train\n")
    assert main(["import-features", "manifest", str(one), "--features", str(clip_feats), "--fps", "30",
                 "--l2-normalize", "--out", str(tmp_path / "per_clip")] + QUIET) == 0
    np.testing.assert_allclose(ShardSet(tmp_path / "per_clip").features("a", raw=True), unit[:2], atol=1e-6)


def test_wrong_row_count_fails_only_that_video_then_a_rerun_resumes(tmp_path):
    feats, manifest, counts = write_case(tmp_path, a_rows=N - 1)
    args = command(tmp_path, feats, manifest, counts)
    assert main(args) == 1
    out = tmp_path / "out"
    assert ShardSet(out).video_ids == ["b", "c", "d", "e"]
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["video_id"] for f in failures] == ["a"]
    assert str(feats / "a.txt") in failures[0]["reason"]
    assert "3 segment rows but --segments is 4" in failures[0]["reason"]
    write_txt(feats / "a.txt", rows("a"))
    assert main(args) == 0
    assert ShardSet(out).video_ids == sorted(CASE) and len(ShardSet(out).files) == 2
    assert main(args) == 0  # nothing left to import: no new shard
    assert len(ShardSet(out).files) == 2
    # other options into the same directory are refused before any work
    manifest.write_text(manifest.read_text() + "zz,0,test\n")
    assert main(args + ["--l2-normalize"]) == 2
    assert "zz" not in ShardSet(out).video_ids


def test_no_frame_count_and_no_bounds_fails_the_video(tmp_path):
    feats, manifest, counts = write_case(tmp_path)
    counts.write_text("video,num_frames\na,100\nc,50\nd,10\n")  # e: npy, no count, no bounds
    assert main(command(tmp_path, feats, manifest, counts)) == 1
    failure = json.loads((tmp_path / "out" / "failures.jsonl").read_text())
    assert failure["video_id"] == "e" and "no frame count" in failure["reason"]
    assert "--frame-counts" in failure["reason"] and failure["path"].endswith("e.npy")


def test_bounds_past_the_listed_frames_fail_the_video(tmp_path):
    feats, manifest, counts = write_case(tmp_path)
    counts.write_text(counts.read_text().replace("c,x,50", "c,x,20"))  # bounds reach frame 60
    assert main(command(tmp_path, feats, manifest, counts)) == 1
    failure = json.loads((tmp_path / "out" / "failures.jsonl").read_text())
    assert failure["video_id"] == "c" and "reach frame 60" in failure["reason"]
    assert "more.npz[c]" in failure["reason"]


def real_lists(shared_data):
    ucf = shared_data / "ucf_crime"
    return ["--train-list", str(ucf / "Anomaly_Train.txt"), "--test-annotation",
            str(ucf / "Temporal_Anomaly_Annotation.txt"), "--frame-counts",
            str(ucf / "Train_Annotation.txt"), str(ucf / "Test_Annotation.txt"), "--allow-missing"]


@pytest.mark.slow
def test_real_ucf_c3d32_pack(tmp_path, shared_data):
    """244 training and 60 test videos of real 32-segment C3D features, priority vantage > sultani > bku."""
    pack = shared_data / "features" / "ucf_c3d32"
    sources = [pack / f"{name}.npz" for name in ("vantage_c3d32_train", "vantage_c3d32_test",
                                                  "sultani_c3d32_test", "bku_c3d32_test")]
    out = tmp_path / "c3d32"
    assert main(["import-features", "ucf-crime", "--segments", "32", "--l2-normalize",
                 "--feature-dim", "2048", "--network", "c3d_fc6", "--features", *map(str, sources),
                 "--segment-bounds", str(pack / "segments.npz"), "--bounds-prefix", "vantage",
                 "--out", str(out)] + real_lists(shared_data) + QUIET) == 0
    shards = ShardSet(out)
    videos = shards.videos
    assert Counter((v.split, v.label) for v in videos.values()) == {
        ("train", 1): 133, ("train", 0): 111, ("test", 1): 25, ("test", 0): 35}
    counts = {**read_frame_counts(shared_data / "ucf_crime" / "Train_Annotation.txt"),
              **read_frame_counts(shared_data / "ucf_crime" / "Test_Annotation.txt")}
    assert all(v.num_frames == counts[v.video_id].num_frames for v in videos.values())
    assert all(v.num_clips == num_clips(v.num_frames) for v in videos.values())
    assert shards.stats.num_videos == 244 and shards.feature_dim == 2048
    assert sum(v.extractor["segment_rows"] == 33 for v in videos.values()) == 9
    sources_of = Counter(v.source_path.rsplit("/", 1)[-1] for v in videos.values())
    assert sources_of == {"vantage_c3d32_train.npz": 244, "vantage_c3d32_test.npz": 46,
                          "sultani_c3d32_test.npz": 8, "bku_c3d32_test.npz": 6}
    road = videos["RoadAccidents022_x264"]  # in all three sources: vantage wins
    assert road.extractor["segment_bounds_source"] == "segments.npz:vantage/RoadAccidents022_x264/bounds"
    assert videos["Shooting008_x264"].extractor["segment_bounds_source"] == "sultani recipe"
    with np.load(pack / "vantage_c3d32_train.npz") as z, np.load(pack / "segments.npz") as s:
        segs = z["Abuse002_x264"].astype(np.float64)
        owner = clip_segments(865, s["vantage/Abuse002_x264/bounds"])
    unit = segs / np.linalg.norm(segs, axis=1, keepdims=True)
    expected = unit.reshape(len(unit), 2048, 2).mean(-1)[owner]
    assert owner[:6].tolist() == [0, 0, 1, 1, 2, 3] and owner[-2:].tolist() == [31, 31]
    np.testing.assert_allclose(shards.features("Abuse002_x264", raw=True), expected, atol=1e-6)


def test_real_sultani_and_bku_text_files(tmp_path, shared_data):
    """The published .txt and _C.txt files read to the same rows as the pack, Sultani's bounds."""
    features = shared_data / "features"
    names = sorted(p.stem for p in (features / "sultani_samplevideos").glob("*.txt"))
    names += sorted(p.stem[:-2] for p in (features / "humanbehaviorbku").glob("*_x264_C.txt"))
    manifest = tmp_path / "videos.csv"  # all as training videos, so the job has statistics
    manifest.write_text("video,label,split\n" + "".join(f"{n},-1,train\n" for n in sorted(set(names))))
    out = tmp_path / "txt"
    assert main(["import-features", "manifest", str(manifest), "--segments", "32", "--features",
                 str(features / "sultani_samplevideos"), str(features / "humanbehaviorbku"),
                 "--frame-counts", str(shared_data / "ucf_crime" / "Test_Annotation.txt"),
                 "--fps", "30", "--out", str(out)] + QUIET) == 1
    shards = ShardSet(out)
    counts = read_frame_counts(shared_data / "ucf_crime" / "Test_Annotation.txt")
    assert shards.video_ids == sorted(n for n in names if n in counts) and len(shards) == 10 + 7
    with np.load(features / "ucf_c3d32" / "sultani_c3d32_test.npz") as s, \
            np.load(features / "ucf_c3d32" / "bku_c3d32_test.npz") as b:
        packs = {**{k: b[k] for k in b.files}, **{k: s[k] for k in s.files}}
    for vid in shards.video_ids:
        owner = clip_segments(counts[vid].num_frames, sultani_segment_bounds(counts[vid].num_frames, 32))
        np.testing.assert_allclose(shards.features(vid, raw=True), packs[vid][owner], atol=1e-6)
    # the 10 bku videos outside the UCF-Crime lists have no frame count and no bounds: they fail
    failed = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert {f["video_id"] for f in failed} == {n for n in names if n not in counts} and len(failed) == 10
    assert all("no frame count" in f["reason"] for f in failed)
