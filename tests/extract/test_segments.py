"""Segment arithmetic: Sultani's recipe, the CSV width rule and clip-to-segment assignment, checked by
hand, against the torch version in model/mil.py, and against the exact bounds of the ucf_c3d32 pack."""

import csv

import numpy as np
import pytest

from claws.data.clips import num_clips
from claws.data.feature_files import read_frame_counts
from claws.data.segment_files import read_text_segments
from claws.extract.segments import (
    check_bounds, clip_segments, sultani_clip_ranges, sultani_segment_bounds, width_segment_bounds,
)
from claws.model.mil import segment_bounds


@pytest.mark.parametrize("num_segments", [32, 64])
def test_sultani_ranges_agree_with_the_torch_version(num_segments):
    for total in range(1, 201):
        starts, ends = sultani_clip_ranges(total, num_segments)
        torch_starts, torch_ends = segment_bounds(total, num_segments)
        np.testing.assert_array_equal(starts, torch_starts.numpy(), err_msg=f"T={total}")
        np.testing.assert_array_equal(ends, torch_ends.numpy(), err_msg=f"T={total}")


def test_sultani_bounds_by_hand():
    # 100 frames: n = 6 clips, edges round(linspace(1, 6, 5)) = 1 2 4 5 6 (2.25 -> 2, 3.5 -> 4)
    np.testing.assert_array_equal(sultani_segment_bounds(100, 4), [[1, 16], [17, 48], [49, 64], [65, 80]])
    # 10 frames: one clip; every segment is that clip alone
    np.testing.assert_array_equal(sultani_segment_bounds(10, 3), [[1, 16]] * 3)


def test_width_bounds_by_hand_and_too_narrow():
    # w = 26: clips starting at frames 1, 17 | 33, 49 | 65 | 81, 97 (segment = start // 26)
    np.testing.assert_array_equal(width_segment_bounds(26, 4), [[1, 32], [33, 64], [65, 80], [81, 112]])
    # w = 17: frame 1 -> 0, frames 17 and 33 -> 1 (33 // 17 = 1), frame 49 -> 2
    np.testing.assert_array_equal(width_segment_bounds(17, 3), [[1, 16], [17, 48], [49, 64]])
    with pytest.raises(ValueError, match="holds no 16-frame clip"):
        width_segment_bounds(10, 4)


@pytest.mark.parametrize("num_frames,bounds,expected", [
    # Sultani, 100 frames: clip 5 (frames 81-96) and the tail clip 6 come after the last segment
    (100, [[1, 16], [17, 48], [49, 64], [65, 80]], [0, 1, 1, 2, 3, 3, 3]),
    # width 20, 90 frames: the clip starting at frame 81 went to a dropped fifth segment
    (90, [[1, 32], [33, 48], [49, 64], [65, 80]], [0, 0, 1, 2, 3, 3]),
    # clip 1 (17-32) overlaps segments 0 and 1 by 8 frames each: the earlier wins
    (50, [[1, 24], [25, 40], [41, 41], [42, 60]], [0, 0, 1, 3]),
    # a gap 17-48: clip 1 (centre 24.5) is nearer segment 0, clip 2 (centre 40.5) nearer segment 1
    (64, [[1, 16], [49, 64]], [0, 0, 1, 1]),
    # one-frame video and repeated segments (Sultani with n = 1): clip 0 ties everywhere
    (1, [[1, 16]] * 3, [0]),
    (16, [[1, 16], [1, 16]], [0]),
    (17, [[1, 16], [1, 16]], [0, 0]),
    # bounds starting late: clip 0 is before them and takes the first segment
    (48, [[20, 30], [31, 48]], [0, 0, 1]),
])
def test_clip_segments_table(num_frames, bounds, expected):
    got = clip_segments(num_frames, np.array(bounds))
    assert got.tolist() == expected and len(got) == num_clips(num_frames)


def brute_force_owner(num_frames: int, bounds: np.ndarray, clip_len: int = 16) -> list[int]:
    """The rule as written: most frames in common, else nearest to the clip's centre; ties earlier."""
    owner = []
    for k in range(num_clips(num_frames, clip_len)):
        frames = set(range(clip_len * k + 1, clip_len * (k + 1) + 1))
        common = [len(frames & set(range(a, b + 1))) for a, b in bounds]
        if max(common) > 0:
            owner.append(common.index(max(common)))
            continue
        centre = clip_len * k + (clip_len + 1) / 2
        distance = [max(a - centre, centre - b, 0) for a, b in bounds]
        owner.append(distance.index(min(distance)))
    return owner


def test_clip_segments_equals_the_rule_on_random_bounds_with_gaps():
    rng = np.random.default_rng(0)
    for _ in range(200):
        num_frames = int(rng.integers(1, 300))
        starts = np.sort(rng.integers(1, num_frames + 40, int(rng.integers(1, 8))))
        bounds = np.stack([starts, starts + rng.integers(0, 40, len(starts))], axis=1)
        assert clip_segments(num_frames, bounds).tolist() == brute_force_owner(num_frames, bounds)


@pytest.mark.parametrize("num_frames", [1, 15, 16, 17, 31, 32, 33, 100, 511, 512, 513, 2000])
@pytest.mark.parametrize("num_segments", [32, 64])
def test_sultani_bounds_cover_every_clip_of_any_length(num_frames, num_segments):
    bounds = sultani_segment_bounds(num_frames, num_segments)
    assert bounds.shape == (num_segments, 2) and bounds[0, 0] == 1
    owner = clip_segments(num_frames, bounds)
    assert len(owner) == num_clips(num_frames) and owner[0] == 0
    assert (np.diff(owner) >= 0).all() and owner[-1] <= num_segments - 1


def test_check_bounds_rejects_bad_arrays():
    for bad in ([[0, 5]], [[5, 4]], [[1.5, 3]], [1, 2], np.zeros((0, 2))):
        with pytest.raises(ValueError, match="bounds"):
            check_bounds(np.array(bad), "x.npz[v]")


def pack_bounds(shared_data):
    pack = shared_data / "features" / "ucf_c3d32"
    with np.load(pack / "segments.npz") as z:
        return {k: z[k] for k in z.files if k.endswith("/bounds")}


def test_csv_width_rule_equals_the_exact_vantage_bounds(shared_data):
    """The CSV files' width line gives exactly the bounds rebuilt from the clip lists."""
    bounds = pack_bounds(shared_data)
    files = sorted((shared_data / "features" / "vantage_c3d_fc6_raw").rglob("*.csv"))
    assert len(files) >= 20
    for path in files:
        rows, width = read_text_segments(path)
        np.testing.assert_array_equal(width_segment_bounds(width, len(rows)),
                                      bounds[f"vantage/{path.stem}/bounds"], err_msg=str(path))
    # and for all 290 vantage videos, with the widths listed in the pack's index
    with open(shared_data / "features" / "ucf_c3d32" / "index.csv", newline="") as f:
        widths = {r["video"]: int(r["segment_frames"]) for r in csv.DictReader(f) if r["source"] == "vantage"}
    assert len(widths) == 290
    for video, width in widths.items():
        exact = bounds[f"vantage/{video}/bounds"]
        np.testing.assert_array_equal(width_segment_bounds(width, len(exact)), exact, err_msg=video)


def test_sultani_recipe_equals_the_pack_bounds(shared_data):
    """segments.npz says the sultani and bku bounds were made with Sultani's recipe: identical."""
    counts = read_frame_counts(shared_data / "ucf_crime" / "Test_Annotation.txt")
    checked = 0
    for key, exact in pack_bounds(shared_data).items():
        source, video, _ = key.split("/")
        if source in ("sultani", "bku32", "bku64"):
            got = sultani_segment_bounds(counts[video].num_frames, len(exact))
            np.testing.assert_array_equal(got, exact, err_msg=key)
            checked += 1
    assert checked == 30
