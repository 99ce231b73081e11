"""The import job (claws.extract.import_job) called as a library: frame-count rules, segment
bounds rules, and a whole import that resumes and finishes through the extraction job's steps.

The `claws import-features` command over the same job, with the real list files, is tested in
tests/pipeline/test_import_features.py (per clip) and tests/pipeline/test_import_segments.py
(segment-pooled files)."""

import json
import logging
import math

import numpy as np
import pytest

from claws.data.feature_files import FrameCount
from claws.data.feature_sources import FeatureEntry, FeatureFileError
from claws.data.shards import ShardSet
from claws.data.videos import VideoItem
from claws.extract.import_job import (
    FramesMismatch, ImportConfig, SegmentOptions, SegmentsMismatch, resolve_num_frames, run_import,
    segment_bounds_of,
)
from claws.extract.resume import work_files

D = 5


@pytest.mark.parametrize("rows,frames,policy,expected", [
    (1, 1, "error", 1), (1, 16, "error", 16), (2, 17, "error", 17), (7, 100, "error", 100),
    (6, 100, "clip", 96), (8, 100, "clip", 113), (32, 100, "clip", 497), (3, -1, "error", 48),
])
def test_resolve_num_frames(rows, frames, policy, expected):
    count = FrameCount(frames, 0.0, "list.txt")
    num_frames, _ = resolve_num_frames("v", rows, count, 16, policy)
    assert num_frames == expected and math.ceil(num_frames / 16) == rows


def test_resolve_num_frames_mismatch_names_the_video():
    with pytest.raises(FramesMismatch, match="video v9: 6 feature rows"):
        resolve_num_frames("v9", 6, FrameCount(100, 0.0, "list.txt"), 16, "error")


def test_segment_bounds_come_from_the_bounds_file_then_the_width_then_the_recipe(tmp_path):
    entry = FeatureEntry((tmp_path / "v.npy",))
    file_bounds = np.array([[1, 20], [21, 60], [61, 64]])
    options = SegmentOptions(4, 16, {"v/bounds": file_bounds}, tmp_path / "b.npz")
    bounds, source = segment_bounds_of("v", entry, 3, 20, 100, options)  # 3 rows: the file's own
    np.testing.assert_array_equal(bounds, file_bounds)
    assert source == "b.npz:v/bounds"
    with pytest.raises(SegmentsMismatch,
                       match="has 4 segment rows but .*b.npz\\[v/bounds\\] has 3"):
        segment_bounds_of("v", entry, 4, None, 100, options)
    plain = SegmentOptions(4, 16)
    bounds, source = segment_bounds_of("v", entry, 3, 32, None, plain)  # a .csv width line
    assert source == "csv width 32" and bounds.tolist() == [[1, 32], [33, 64], [65, 96]]
    bounds, source = segment_bounds_of("v", entry, 4, None, 100, plain)  # Sultani, n = 6 clips
    assert source == "sultani recipe" and len(bounds) == 4
    with pytest.raises(SegmentsMismatch, match="3 segment rows but --segments is 4"):
        segment_bounds_of("v", entry, 3, None, 100, plain)
    with pytest.raises(FeatureFileError, match="video v: no frame count.*--frame-counts"):
        segment_bounds_of("v", entry, 4, None, None, plain)


def _case(tmp_path):
    rng = np.random.default_rng(3)
    feats = tmp_path / "feats"
    feats.mkdir()
    rows = {"a": 7, "b": 2, "c": 3}
    for vid, t in rows.items():
        np.save(feats / f"{vid}.npy", rng.normal(size=(t, D)).astype(np.float32))
    items = [VideoItem("a", None, 0, "train"), VideoItem("b", None, 1, "train"),
             VideoItem("c", None, 1, "test")]
    found = {vid: FeatureEntry((feats / f"{vid}.npy",)) for vid in rows}
    counts = {"a": FrameCount(100, 25.0, "counts.csv"), "b": FrameCount(17, 25.0, "counts.csv"),
              "c": FrameCount(100, 25.0, "counts.csv")}  # c: 3 rows cannot hold 100 frames
    config = ImportConfig(out=tmp_path / "out", features=(feats,), progress=False)
    return items, found, counts, config


def test_an_import_fails_one_video_finishes_the_rest_and_resumes(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="claws")
    items, found, counts, config = _case(tmp_path)
    result = run_import(items, found, counts, config)
    assert (result.imported, result.skipped) == (2, 0) and len(result.shards) == 1
    assert [vid for vid, _ in result.failed] == ["c"] and "FramesMismatch" in result.failed[0][1]
    failure = json.loads((config.out / "failures.jsonl").read_text())
    assert failure["video_id"] == "c" and failure["path"] == str(found["c"].paths[0])
    shards = ShardSet(config.out)
    assert shards.video_ids == ["a", "b"] and shards.stats.num_clips == 7 + 2
    assert not work_files(config.out) and not (config.out / ".work").exists()
    caplog.clear()
    again = run_import(items[:2], found, counts, config)
    assert (again.imported, again.skipped, again.shards) == (0, 2, [])
    assert "2 of 2 videos already imported in" in caplog.text
    counts["c"] = FrameCount(40, 25.0, "counts.csv")  # the list fixed: c is imported now
    fixed = run_import(items, found, counts, config)
    assert (fixed.imported, fixed.skipped, fixed.failed) == (1, 2, [])
    assert ShardSet(config.out).video_ids == ["a", "b", "c"]
    np.testing.assert_array_equal(ShardSet(config.out).stats.mean, shards.stats.mean)  # stored kept
