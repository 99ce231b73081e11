"""Segment-pooled feature files and segment-bounds files (claws.data.segment_files); every format
read to the same rows, and bad files refused naming the file (and line) with what to do."""

import numpy as np
import pytest

from claws.data.feature_sources import FeatureEntry, FeatureFileError
from claws.data.segment_files import (
    bounds_key, load_segment_file, read_bounds_file, read_text_segments,
)
from claws.data.videos import DatasetError

ROWS = np.array([[0.5, 1.25, -2.0], [3.0, 0.0, 4.5]])


def test_every_format_reads_to_the_same_rows(tmp_path):
    (tmp_path / "v.txt").write_text("0.5 1.25 -2.0\n  3.0\t0.0 4.5\n\n")
    (tmp_path / "v.csv").write_text("20\n0.5,1.25,-2.0\n3.0,0.0,4.5\n")
    np.save(tmp_path / "v.npy", ROWS.astype(np.float32))
    np.savez(tmp_path / "pack.npz", v=ROWS.astype(np.float32), w=ROWS[:1])
    entries = [FeatureEntry((tmp_path / "v.txt",)), FeatureEntry((tmp_path / "v.csv",)),
               FeatureEntry((tmp_path / "v.npy",)), FeatureEntry((tmp_path / "pack.npz",), "v")]
    read = [load_segment_file(e) for e in entries]
    assert [(r.format, r.width, r.crops) for r in read] == [
        ("txt", None, 1), ("csv", 20, 1), ("npy", None, 1), ("npz", None, 1)]
    for segments in read:
        assert segments.rows.dtype == np.float32
        np.testing.assert_array_equal(segments.rows, ROWS.astype(np.float32))


@pytest.mark.parametrize("name,text,message", [
    ("ragged.txt", "1 2 3\n4 5\n", "ragged.txt:2: 2 values, the first row has 3"),
    ("words.txt", "1 2 x\n", "words.txt: a row that is not numbers"),
    ("width.csv", "w20\n1,2\n", "width.csv:1: 'w20' is neither the segment width"),
    ("zero.csv", "0\n1,2\n", "zero.csv:1: segment width 0 must be >= 1"),
    ("empty.csv", "16\n", "empty.csv: no feature rows"),
    ("nan.txt", "1 nan\n", "nan.txt: features contain NaN or inf"),
])
def test_bad_text_files_name_the_file_and_line(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(FeatureFileError, match=message):
        load_segment_file(FeatureEntry((tmp_path / name,)))


def test_text_rows_keep_double_precision_until_stored(tmp_path):
    (tmp_path / "v.txt").write_text("0.1 0.2\n")
    rows, width = read_text_segments(tmp_path / "v.txt")
    assert rows.dtype == np.float64 and width is None and rows.tolist() == [[0.1, 0.2]]


def test_bounds_keys_plain_prefixed_and_ambiguous(tmp_path):
    path = tmp_path / "segments.npz"
    np.savez(path, **{"a/bounds": np.array([[1, 16]]), "b": np.array([[1, 32]]),
                      "vantage/c/bounds": np.array([[1, 8]]),
                      "sultani/c/bounds": np.array([[1, 9]]),
                      "vantage/d/bounds": np.array([[1, 4]]), "a/other": np.zeros(2)})
    bounds = read_bounds_file(path)
    assert "a/other" not in bounds and len(bounds) == 5
    assert bounds_key(bounds, "a", None, path) == "a/bounds"
    assert bounds_key(bounds, "b", None, path) == "b"
    assert bounds_key(bounds, "d", None, path) == "vantage/d/bounds"  # the only prefixed one
    assert bounds_key(bounds, "c", "sultani", path) == "sultani/c/bounds"
    assert bounds_key(bounds, "d", "sultani", path) is None
    assert bounds_key(bounds, "zz", None, path) is None
    with pytest.raises(DatasetError,
                       match="video c has bounds under several keys .*--bounds-prefix"):
        bounds_key(bounds, "c", None, path)


def test_a_missing_or_unreadable_bounds_file_says_what_to_pass(tmp_path):
    with pytest.raises(DatasetError, match="--segment-bounds .*missing.npz does not exist"):
        read_bounds_file(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"PK not really")
    with pytest.raises(DatasetError, match="--segment-bounds .*bad.npz: not a readable .npz"):
        read_bounds_file(tmp_path / "bad.npz")


@pytest.mark.parametrize("name,text,width", [("v.txt", "0.5 1.25 -2.0\n3.0 0.0 4.5\n", None),
                                              ("v.csv", "20\n0.5,1.25,-2.0\n3.0,0.0,4.5\n", 20)])
def test_text_features_with_a_byte_order_mark(tmp_path, with_bom, name, text, width):
    """Issue 20 item 8: the BOM made the first row 'not numbers'."""
    segments = load_segment_file(FeatureEntry((with_bom(tmp_path / name, text),)))
    assert segments.width == width
    np.testing.assert_array_equal(segments.rows, ROWS.astype(np.float32))
