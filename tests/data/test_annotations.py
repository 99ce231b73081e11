"""Ground truth per frame from the real annotation files and hand-made ones."""

import numpy as np
import pytest

from claws.data.annotations import (
    AnnotationError,
    load_intervals,
    load_shanghaitech,
    load_ucf_crime,
    read_ucf_frame_counts,
    video_id_of,
)


def test_ucf_crime_real_test_set(shared_data):
    ucf = shared_data / "ucf_crime"
    counts = read_ucf_frame_counts(ucf / "Test_Annotation.txt")
    truth = load_ucf_crime(ucf / "Temporal_Anomaly_Annotation.txt", counts)
    assert len(truth.videos) == 290
    assert truth.num_frames == 1_111_808
    # sum over events of min(end, num_frames) - start + 1 (1-based inclusive, clipped)
    assert truth.num_anomalous_frames == 84_338
    assert sum(not v.is_anomalous for v in truth.videos.values()) == 150
    # five annotations end 1..2 frames past the video (SOURCES.md); each is a named warning
    assert len(truth.warnings) == 5
    assert any("Shooting015_x264" in w for w in truth.warnings)
    assert truth.videos["Abuse028_x264"].frame_labels[164:240].all()
    assert truth.videos["Abuse028_x264"].frame_labels.sum() == 240 - 165 + 1


def test_ucf_crime_variants_with_counts_agree(shared_data):
    ucf = shared_data / "ucf_crime"
    base = load_ucf_crime(
        ucf / "Temporal_Anomaly_Annotation.txt", read_ucf_frame_counts(ucf / "Test_Annotation.txt")
    )
    for name in ("Test_Annotation.txt", "Temporal_Anomaly_Annotation_New.txt"):
        other = load_ucf_crime(ucf / name)
        assert other.videos.keys() == base.videos.keys()
        for vid, truth in base.videos.items():
            np.testing.assert_array_equal(other.videos[vid].frame_labels, truth.frame_labels)


def test_shanghaitech_real_test_set(shared_data):
    sht = shared_data / "shanghaitech"
    truth = load_shanghaitech(sht / "test_frame_mask", sht / "SH_Test_NEW.txt")
    assert len(truth.videos) == 199
    assert truth.num_frames == 141_870
    assert truth.num_anomalous_frames == 7_962
    assert sum(v.is_anomalous for v in truth.videos.values()) == 44


def test_ucf_one_based_inclusive_and_clipped(tmp_path):
    path = tmp_path / "ann.txt"
    path.write_text("Arson/A_x264.mp4  Arson  2  4  6  9\nN_x264.mp4  Normal  -1  -1  -1  -1\n")
    truth = load_ucf_crime(path, {"A_x264": 7, "N_x264": 3})
    np.testing.assert_array_equal(truth.videos["A_x264"].frame_labels, [0, 1, 1, 1, 0, 1, 1])
    assert truth.videos["A_x264"].class_name == "Arson"
    assert not truth.videos["N_x264"].is_anomalous
    assert len(truth.warnings) == 1 and "A_x264" in truth.warnings[0]


def test_ucf_errors_name_the_video_or_line(tmp_path):
    path = tmp_path / "ann.txt"
    path.write_text("A_x264.mp4  Arson  2  4  -1  -1\n")
    with pytest.raises(AnnotationError, match="A_x264.*frame count"):
        load_ucf_crime(path, {})
    path.write_text("A_x264.mp4  Arson  5  4  -1  -1\n")
    with pytest.raises(AnnotationError, match="A_x264"):
        load_ucf_crime(path, {"A_x264": 9})
    path.write_text("A_x264.mp4  Arson  2\n")
    with pytest.raises(AnnotationError, match="ann.txt:1"):
        load_ucf_crime(path, {"A_x264": 9})


def test_shanghaitech_plain_names_take_counts_from_scores(tmp_path):
    (tmp_path / "masks").mkdir()
    np.save(tmp_path / "masks" / "01_0014.npy", np.array([0, 1, 1, 0], np.uint8))
    split = tmp_path / "SH_Test.txt"
    split.write_text("01_0014\n01_001")
    truth = load_shanghaitech(tmp_path / "masks", split, {"01_001": 5})
    assert truth.videos["01_001"].num_frames == 5 and not truth.videos["01_001"].is_anomalous
    assert truth.videos["01_0014"].frame_labels.tolist() == [0, 1, 1, 0]
    split.write_text("01_0014,1,5\n")
    with pytest.raises(AnnotationError, match="01_0014.*5 frames"):
        load_shanghaitech(tmp_path / "masks", split)
    split.write_text("01_0015,1,-1\n")
    with pytest.raises(AnnotationError, match="01_0015.*missing"):
        load_shanghaitech(tmp_path / "masks", split)


def test_interval_csv_zero_based_end_exclusive(tmp_path):
    path = tmp_path / "gt.csv"
    path.write_text(
        "video,start_frame,end_frame,num_frames\n"
        "cam1,2,4,6\ncam1,5,8,6\ncam2,,,\n"
    )
    truth = load_intervals(path, {"cam2": 3})
    np.testing.assert_array_equal(truth.videos["cam1"].frame_labels, [0, 0, 1, 1, 0, 1])
    assert truth.videos["cam2"].frame_labels.tolist() == [0, 0, 0]
    assert len(truth.warnings) == 1 and "cam1" in truth.warnings[0]
    path.write_text("name,start,end\n")
    with pytest.raises(AnnotationError, match="header"):
        load_intervals(path)


def test_video_id_of():
    assert video_id_of("Arson/Arson022_x264.mp4") == "Arson022_x264"
    assert video_id_of("01_0014") == "01_0014"


def test_interval_rows_without_num_frames_take_the_curve_length(tmp_path):
    path = tmp_path / "gt.csv"  # the header has num_frames; the short rows give none
    path.write_text("video,start_frame,end_frame,num_frames,class\ncam1,2,4\ncam2,,\n")
    truth = load_intervals(path, {"cam1": 6, "cam2": 3})
    assert truth.videos["cam1"].frame_labels.tolist() == [0, 0, 1, 1, 0, 0]
    with pytest.raises(AnnotationError, match="gt.csv: video cam1 has no num_frames"):
        load_intervals(path)


@pytest.mark.parametrize("count", ["abc", "0", "-3", "6.5", "nan"])
def test_frame_counts_that_are_not_counts_name_the_line(tmp_path, count):
    path = tmp_path / "gt.csv"
    path.write_text(f"video,start_frame,end_frame,num_frames\ncam1,,,6\ncam2,2,4,{count}\n")
    with pytest.raises(AnnotationError, match=f"gt.csv:3: video cam2: num_frames '{count}' is not"):
        load_intervals(path)
    split = tmp_path / "SH_Test_NEW.txt"
    split.write_text(f"01_001,0,5\n01_002,0,{count}\n")
    (tmp_path / "masks").mkdir(exist_ok=True)
    with pytest.raises(AnnotationError, match="SH_Test_NEW.txt:2: video 01_002: num_frames"):
        load_shanghaitech(tmp_path / "masks", split)
    counts = tmp_path / "Test_Annotation.txt"
    counts.write_text(f"Arson/A_x264.mp4 {count} Arson 2 4 -1 -1\n")
    with pytest.raises(AnnotationError, match="Test_Annotation.txt:1"):
        read_ucf_frame_counts(counts)


def test_annotation_entirely_past_the_end_is_an_error_naming_it(tmp_path):
    """Not a "clipped" warning over a 0-frame event: the file or the frame count is wrong."""
    path = tmp_path / "gt.csv"
    path.write_text("video,start_frame,end_frame,num_frames\ncam1,2,4,6\ncam1,6,9,6\n")
    with pytest.raises(AnnotationError, match=r"video cam1: the annotation \[6, 9\) \(0-based, end "
                       r"exclusive; .*gt.csv:3\) lies entirely past the video's end \(6 frames\)"):
        load_intervals(path)
    ann = tmp_path / "ann.txt"
    ann.write_text("A_x264.mp4  Arson  2  4  8  9\n")
    with pytest.raises(AnnotationError, match=r"video A_x264: the annotation frames 8-9 \(1-based, "
                       r"inclusive; .*ann.txt:1\) lies entirely past the video's end \(7 frames\)"):
        load_ucf_crime(ann, {"A_x264": 7})
    ann.write_text("A_x264.mp4  Arson  2  4  7  9\n")  # frame 7 exists: clipped, a warning
    assert len(load_ucf_crime(ann, {"A_x264": 7}).warnings) == 1


@pytest.mark.parametrize("name,text,read", [
    ("gt.csv", "video,start_frame,end_frame,num_frames\ncam1,1,3,4\n", load_intervals),
    ("Temporal.txt", "cam1.mp4  Arson  2  3  -1  -1\n", lambda path: load_ucf_crime(path, {"cam1": 4})),
    ("Temporal_New.txt", "cam1.mp4 Arson 2 3 -1 -1 4\n", load_ucf_crime),
    ("SH_Test_NEW.txt", "cam1,0,4\n", lambda path: load_shanghaitech(path.parent, path)),
])
def test_annotation_files_with_a_byte_order_mark(tmp_path, with_bom, name, text, read):
    """Issue 20 item 8: a BOM made the intervals header lack 'video' and the first UCF or
    ShanghaiTech video another id."""
    truth = read(with_bom(tmp_path / name, text))
    assert list(truth.videos) == ["cam1"] and truth.videos["cam1"].num_frames == 4


def test_ucf_frame_counts_with_a_byte_order_mark(tmp_path, with_bom):
    counts = with_bom(tmp_path / "Temporal_New.txt", "cam1.mp4 Arson 2 3 -1 -1 4\n")
    assert read_ucf_frame_counts(counts) == {"cam1": 4}


@pytest.mark.parametrize("rows,line,normal,event", [
    ("cam1,-1,-1\ncam2,,\ncam1,2,4\n", 4, 2, 4),  # normal first, then an event
    ("cam1,2,4\ncam1,5,6\ncam1,,\n", 4, 4, 2),  # events first, then normal (empty start/end)
])
def test_a_video_listed_both_normal_and_with_an_event_is_an_error(tmp_path, rows, line, normal,
                                                                  event):
    """Issue 20: the -1 -1 row was silently outvoted by the interval row."""
    path = tmp_path / "gt.csv"
    path.write_text("video,start_frame,end_frame,num_frames\n" + rows.replace("\n", ",8\n"))
    with pytest.raises(AnnotationError, match=(
            rf"gt.csv:{line}: video cam1 is listed as normal \(line {normal}\) and with an event "
            rf"\(line {event}\)")):
        load_intervals(path)
