"""Published per-clip feature files, frame-count lists and import manifests
(claws.data.feature_files), with the real UCF-Crime, ShanghaiTech and ucf_c3d32 lists in
../shared/data."""

import numpy as np
import pytest

from claws.data.feature_files import (
    FrameCount, load_clip_features, read_frame_counts, read_import_manifest,
)
from claws.data.videos import DatasetError

D = 6


def test_frame_count_formats_of_the_real_lists(shared_data):
    ucf = shared_data / "ucf_crime"
    assert read_frame_counts(ucf / "Train_Annotation.txt")["Vandalism048_x264"].num_frames == 7183
    assert read_frame_counts(ucf / "Test_Annotation.txt")["RoadAccidents021_x264"].num_frames == 155
    new = read_frame_counts(ucf / "Temporal_Anomaly_Annotation_New.txt")
    assert new["Abuse028_x264"].num_frames == 1412 and len(new) == 290
    with pytest.raises(DatasetError, match="no frame count"):
        read_frame_counts(ucf / "Temporal_Anomaly_Annotation.txt")  # the list without counts


def test_shanghaitech_counts_keep_unknown_as_minus_one(shared_data):
    counts = read_frame_counts(shared_data / "shanghaitech" / "SH_Test_NEW.txt")
    assert counts["01_001"] == FrameCount(764, 0.0, "SH_Test_NEW.txt")
    assert counts["01_0015"].num_frames == -1


@pytest.mark.parametrize("count", ["many", "inf", "nan", "12.5", "-7"])
def test_frame_counts_that_are_not_counts_name_the_line(tmp_path, count):
    counts = tmp_path / "counts.csv"
    counts.write_text(f"video,num_frames\ncam_a,100\ncam_b,{count}\n")
    with pytest.raises(DatasetError, match=f"counts.csv:3: frame count '{count}' is not a whole"):
        read_frame_counts(counts)
    listed = tmp_path / "SH_Test_NEW.txt"
    listed.write_text(f"01_001,0,{count}\n")
    with pytest.raises(DatasetError, match="SH_Test_NEW.txt:1: frame count"):
        read_frame_counts(listed)


def test_frame_count_csv_with_extra_columns_and_repeated_rows(tmp_path, shared_data):
    index = read_frame_counts(shared_data / "features" / "ucf_c3d32" / "index.csv")
    assert index["Abuse002_x264"].num_frames == 865 and index["RoadAccidents022_x264"].num_frames == 716
    bad = tmp_path / "bad.csv"
    bad.write_text("video,num_frames,label\nv,10,1\nv,11,1\n")
    with pytest.raises(DatasetError, match="bad.csv:3: video v has 11 frames .* line 2 says 10"):
        read_frame_counts(bad)


def test_frame_count_csv_reads_fps_and_video_names_as_ids(tmp_path):
    counts = tmp_path / "counts.csv"
    counts.write_text("video,num_frames,fps\nArson/cam_a.mp4,100,12.5\ncam_b,1234.0,\n")
    assert read_frame_counts(counts) == {"cam_a": FrameCount(100, 12.5, "counts.csv"),
                                         "cam_b": FrameCount(1234, 0.0, "counts.csv")}


def test_import_manifest_labels_splits_and_classes(tmp_path):
    manifest = tmp_path / "videos.csv"
    manifest.write_text("video,label,split,class\ncam_a,normal,train,\n"
                        "Arson/cam_b.mp4,anomalous,train,Arson\ncam_c,1,test,Shooting\n"
                        "cam_d,-1,test,\n")
    items = read_import_manifest(manifest)
    got = [(i.video_id, i.path, i.label, i.split, i.class_name) for i in items]
    assert got == [("cam_a", None, 0, "train", ""), ("cam_b", None, 1, "train", "Arson"),
                   ("cam_c", None, 1, "test", "Shooting"), ("cam_d", None, -1, "test", "")]
    manifest.write_text("video,label,split\ncam_a,0,train\ncam_a.npy,1,test\n")
    with pytest.raises(DatasetError, match="video id cam_a appears twice"):
        read_import_manifest(manifest)
    manifest.write_text("video,label,split\n")
    with pytest.raises(DatasetError, match="no videos listed"):
        read_import_manifest(manifest)


def test_crops_are_averaged_whether_in_one_file_or_per_crop_files(tmp_path):
    rng = np.random.default_rng(0)
    crops = rng.normal(size=(3, 10, D)).astype(np.float32)  # (T, crops, D)
    np.save(tmp_path / "v.npy", crops)
    one = load_clip_features([tmp_path / "v.npy"])
    assert one.crops == 10 and one.features.shape == (3, D) and one.features.dtype == np.float32
    np.testing.assert_allclose(one.features, crops.mean(axis=1), rtol=1e-6)
    paths = []
    for k in range(10):
        paths.append(tmp_path / f"w__{k}.npy")
        np.save(paths[-1], crops[:, k])
    split = load_clip_features(paths)
    assert split.crops == 10 and split.paths == paths
    assert split.size == sum(p.stat().st_size for p in paths)
    np.testing.assert_allclose(split.features, one.features, rtol=1e-6)
    np.save(paths[3], crops[:2, 3])  # one crop file shorter than the others
    with pytest.raises(ValueError,
                       match=r"the 10 crop files of w \(w__0\.npy \.\.\.\) must all be \(T, D\), "
                             r"got \[\(2, 6\), \(3, 6\)\]"):
        load_clip_features(paths)


def test_bad_arrays_are_refused_naming_the_file(tmp_path):
    for name, array in {"flat": np.zeros(5), "empty": np.zeros((0, D)),
                        "nan": np.full((2, D), np.nan), "text": np.array(["x", "y"])}.items():
        np.save(tmp_path / f"{name}.npy", array)
        with pytest.raises(ValueError, match=name):
            load_clip_features([tmp_path / f"{name}.npy"])


@pytest.mark.parametrize("name,text,read,expected", [
    ("counts.csv", "video,num_frames,fps\ncam_a,100,25\n", read_frame_counts,
     {"cam_a": FrameCount(100, 25.0, "counts.csv")}),
    ("Temporal_New.txt", "cam_a.mp4 Arson 5 9 -1 -1 100\n", read_frame_counts,
     {"cam_a": FrameCount(100, 0.0, "Temporal_New.txt")}),
    ("videos.csv", "video,label,split\ncam_a,normal,train\n",
     lambda path: [(i.video_id, i.label) for i in read_import_manifest(path)], [("cam_a", 0)]),
])
def test_frame_counts_and_import_manifests_with_a_byte_order_mark(tmp_path, with_bom, name, text,
                                                                  read, expected):
    """Issue 20 item 8: a BOM made the first header 'video' unknown or the first name wrong."""
    assert read(with_bom(tmp_path / name, text)) == expected
