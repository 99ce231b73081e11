"""The shard contract: exact round trip, normalization statistics, validation errors."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from claws.data.shards import (
    RANGE_FLOOR,
    NormAccumulator,
    NormStats,
    ShardError,
    ShardSet,
    VideoRecord,
    normalization_range,
    write_shard,
)


def _record(video_id: str, num_frames: int, dim: int = 8, label: int = 0, split: str = "train",
            seed: int = 0) -> VideoRecord:
    clips = -(-num_frames // 16)
    feats = np.random.default_rng(seed).normal(size=(clips, dim)).astype(np.float32)
    return VideoRecord(video_id, feats, num_frames, 30.0, label, split, "Normal",
                       f"/videos/{video_id}.mp4", 1234, extractor={"weights_sha256": "ab" * 32})


def test_round_trip_is_exact(tmp_path: Path):
    records = [_record("a", 33, seed=1), _record("b", 16, label=1, split="test", seed=2)]
    stats = NormStats(np.arange(8.0), np.full(8, 2.0), 1, 3, "unit test")
    write_shard(tmp_path / "s0.h5", records, stats)
    shards = ShardSet(tmp_path)
    assert shards.video_ids == ["a", "b"]
    back = shards.record("a")
    np.testing.assert_array_equal(back.features, records[0].features)
    assert (back.num_frames, back.fps, back.label, back.split) == (33, 30.0, 0, "train")
    assert back.extractor == {"weights_sha256": "ab" * 32}
    np.testing.assert_allclose(shards.features("b", raw=True), records[1].features * 2.0 + np.arange(8.0),
                               rtol=1e-6)
    assert [v.video_id for v in shards.select(split="test")] == ["b"]
    assert shards.stats.source == "unit test"


def test_statistics_equal_direct_numpy():
    rng = np.random.default_rng(0)
    videos = [rng.normal(size=(n, 5)) for n in (3, 7, 1)]
    videos[0][:, 4] = 2.0  # a constant dimension: range 0 -> treated as 1
    for v in videos[1:]:
        v[:, 4] = 2.0
    acc_a, acc_b = NormAccumulator(5), NormAccumulator(5)
    acc_a.update(videos[0])
    for v in videos[1:]:
        acc_b.update(v)
    acc_a.merge(acc_b)  # as two ranks would
    stats = acc_a.finalize()
    allx = np.concatenate(videos)
    np.testing.assert_allclose(stats.mean, allx.mean(0))
    span = allx.max(0) - allx.min(0)
    np.testing.assert_allclose(stats.range[:4], span[:4])
    assert stats.range[4] == 1.0
    assert (stats.num_videos, stats.num_clips) == (3, 11)
    np.testing.assert_allclose(stats.denormalize(stats.normalize(allx)), allx, rtol=1e-5, atol=1e-5)


def test_a_barely_varying_dimension_is_not_divided_by_its_noise():
    """A dimension almost never active (a near-dead ReLU unit) has a range that is rounding noise:
    it is floored at RANGE_FLOOR x the median range, so a test clip where the unit fires cannot
    become a normalized value in the thousands (what fp32 vs bf16 C3D did to the demo)."""
    rng = np.random.default_rng(0)
    train = rng.uniform(0, 30, size=(50, 6))
    train[:, 4] = 0.0
    train[7, 4] = 0.005  # active once, barely
    train[:, 5] = 3.0  # constant: range 1 by DESIGN.md's rule, then the floor
    acc = NormAccumulator(6)
    acc.update(train)
    stats = acc.finalize()
    span = train.max(0) - train.min(0)
    floor = RANGE_FLOOR * np.median(span[:5])
    np.testing.assert_allclose(stats.range[:4], span[:4])  # ordinary dimensions are untouched
    assert stats.range[4] == pytest.approx(floor) and stats.range[5] == pytest.approx(max(1.0, floor))
    test_clip = np.array([[15, 15, 15, 15, 7.0, 3.0]])
    assert np.abs(stats.normalize(test_clip)).max() < 7.0 / floor + 1e-6 < 10
    np.testing.assert_array_equal(normalization_range(np.array([0.0, 0.0])), [1.0, 1.0])


def test_floor_leaves_comparable_ranges_alone():
    span = np.array([2.3, 4.0, 6.4, 15.3])  # like real C3D: smallest 0.36 of the median
    np.testing.assert_array_equal(normalization_range(span), span)


def test_no_training_clips_is_an_error():
    with pytest.raises(ValueError, match="no training videos"):
        NormAccumulator(3).finalize()


def test_writer_rejects_bad_records_and_leaves_no_file(tmp_path: Path):
    stats = NormStats.identity(8)
    bad = _record("a", 33)
    bad.num_frames = 50  # 3 clips cannot hold 50 frames
    with pytest.raises(ShardError, match="video a: 3 clips but num_frames=50"):
        write_shard(tmp_path / "s.h5", [bad], stats)
    assert list(tmp_path.iterdir()) == []
    write_shard(tmp_path / "s.h5", [_record("a", 33)], stats)
    with pytest.raises(ShardError, match="never rewritten"):
        write_shard(tmp_path / "s.h5", [_record("b", 33)], stats)


def test_reader_names_the_broken_video(tmp_path: Path):
    write_shard(tmp_path / "s.h5", [_record("good", 33), _record("bad", 33)], NormStats.identity(8))
    with h5py.File(tmp_path / "s.h5", "a") as h5:
        h5["videos/bad"].attrs["num_frames"] = 100
    with pytest.raises(ShardError, match="video bad"):
        ShardSet(tmp_path)


def test_reader_rejects_duplicates_and_mixed_statistics(tmp_path: Path):
    write_shard(tmp_path / "s0.h5", [_record("a", 16)], NormStats.identity(8))
    write_shard(tmp_path / "s1.h5", [_record("a", 16)], NormStats.identity(8))
    with pytest.raises(ShardError, match="video a is in both"):
        ShardSet(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    write_shard(other / "s0.h5", [_record("x", 16)], NormStats.identity(8))
    write_shard(other / "s1.h5", [_record("y", 16)], NormStats(np.ones(8), np.ones(8), 1, 1))
    with pytest.raises(ShardError, match="normalization statistics differ"):
        ShardSet(other)


def test_not_hdf5_is_a_clear_error(tmp_path: Path):
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(ShardError, match="junk.h5: not a readable HDF5 file"):
        ShardSet(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ShardError, match="no .h5 shards found"):
        ShardSet(empty)
    with pytest.raises(ShardError, match="no such shard file or directory"):
        ShardSet(tmp_path / "missing")


def _flip_feature_byte(shard: Path, video_id: str) -> None:
    """Flip one byte inside a video's stored features, as bit rot or a bad copy would."""
    with h5py.File(shard, "r") as h5:
        offset = h5[f"videos/{video_id}/features"].id.get_offset()
    with open(shard, "r+b") as f:
        f.seek(offset + 5)
        byte = f.read(1)
        f.seek(offset + 5)
        f.write(bytes([byte[0] ^ 0x10]))


def test_damaged_features_are_refused_naming_file_and_video(tmp_path: Path):
    write_shard(tmp_path / "s.h5", [_record("good", 33, seed=1), _record("hit", 40, seed=2)],
                NormStats.identity(8))
    _flip_feature_byte(tmp_path / "s.h5", "hit")
    shards = ShardSet(tmp_path)  # opening stays cheap: features are checked when read
    np.testing.assert_array_equal(shards.features("good"), _record("good", 33, seed=1).features)
    with pytest.raises(ShardError, match=r"s\.h5: video hit: .*checksum.*re-extract"):
        shards.features("hit")


def test_damaged_statistics_are_refused_at_open(tmp_path: Path):
    stats = NormStats(np.linspace(1, 2, 8), np.full(8, 3.0), 2, 5)
    write_shard(tmp_path / "s.h5", [_record("a", 16)], stats)
    with h5py.File(tmp_path / "s.h5", "r") as h5:
        offset = h5["normalization/mean"].id.get_offset()
    with open(tmp_path / "s.h5", "r+b") as f:
        f.seek(offset + 7)
        f.write(b"\x7f")
    with pytest.raises(ShardError, match=r"s\.h5: normalization statistics .*checksum"):
        ShardSet(tmp_path)


@pytest.mark.parametrize("seed", range(4))
def test_damaged_hdf5_structure_is_a_shard_error_naming_the_file(tmp_path: Path, seed: int):
    """Bytes flipped anywhere past the superblock (headers, heaps, B-trees, attributes): h5py then
    raises RuntimeError/OSError/KeyError from deep inside; the reader turns every such failure into
    a ShardError that names the shard, never a traceback and never silently other features."""
    records = [_record(f"v{i}", 40 + i, seed=i) for i in range(4)]
    write_shard(tmp_path / "s.h5", records, NormStats.identity(8))
    data = bytearray((tmp_path / "s.h5").read_bytes())
    rng = np.random.default_rng(seed)
    for pos in rng.choice(np.arange(len(data) // 4, len(data) - 16), 64, replace=False):
        data[pos] ^= 0xFF
    (tmp_path / "s.h5").write_bytes(bytes(data))
    try:
        shards = ShardSet(tmp_path)
        for r in records:
            if r.video_id in shards.videos:
                np.testing.assert_array_equal(shards.features(r.video_id), r.features)
    except ShardError as err:
        assert "s.h5" in str(err)


def test_shards_without_checksums_are_read_as_before(tmp_path: Path):
    record = _record("a", 33, seed=3)
    write_shard(tmp_path / "s.h5", [record], NormStats.identity(8))
    with h5py.File(tmp_path / "s.h5", "a") as h5:  # what a shard of an earlier version holds
        for attrs in (h5["videos/a"].attrs, h5["normalization"].attrs):
            for key in ("payload_sha256", "stats_sha256", "source_mtime_ns"):
                if key in attrs:
                    del attrs[key]
    shards = ShardSet(tmp_path)
    np.testing.assert_array_equal(shards.features("a"), record.features)
    assert shards.videos["a"].source_mtime_ns == -1


def test_a_temporary_left_by_a_crash_is_not_a_shard(tmp_path: Path):
    """A kill -9 during the rename step leaves the hidden temporary (claws.data.atomic): readers
    skip it, as they skip the `.h5.tmp` of earlier versions."""
    from claws.data.atomic import temporary_path
    from claws.data.shards import list_shards

    shard = write_shard(tmp_path / "s.h5", [_record("a", 16)], NormStats.identity(8))
    temporary_path(tmp_path / "t.h5").write_bytes(shard.read_bytes())
    (tmp_path / "u.h5.tmp").write_bytes(b"half a shard")
    assert list_shards(tmp_path) == [shard] and ShardSet(tmp_path).video_ids == ["a"]


@pytest.mark.parametrize("clip_len", [0, -16])
def test_a_clip_length_below_one_is_named(tmp_path: Path, clip_len: int):
    """The clip count a video's attrs call for comes from claws.data.clips.num_clips; attrs that
    call for none are a ShardError naming the video (on write and on read), not a crash."""
    bad = _record("a", 33)
    bad.clip_len = clip_len
    with pytest.raises(ShardError, match="video a: 3 clips but num_frames=33"):
        write_shard(tmp_path / "s.h5", [bad], NormStats.identity(8))
    write_shard(tmp_path / "s.h5", [_record("a", 33)], NormStats.identity(8))
    with h5py.File(tmp_path / "s.h5", "a") as h5:
        h5["videos/a"].attrs["clip_len"] = clip_len
    with pytest.raises(ShardError, match=f"video a: .*clip_len={clip_len}"):
        ShardSet(tmp_path)
