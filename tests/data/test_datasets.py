"""Dataset adapters against the real list files and fake trees in the real on-disk layouts."""

import logging
import os
from pathlib import Path

import pytest

from claws.data.footage import footage_items, manifest_items
from claws.data.shanghaitech import read_split, shanghaitech_items
from claws.data.ucf_crime import read_test_annotation, read_train_list, ucf_crime_items
from claws.data.videos import DatasetError
from claws.extract.synthetic import write_fake_shanghaitech, write_fake_ucf_crime


def test_ucf_crime_real_lists(shared_data):
    train = read_train_list(shared_data / "ucf_crime" / "Anomaly_Train.txt")
    test = read_test_annotation(shared_data / "ucf_crime" / "Temporal_Anomaly_Annotation.txt")
    assert (len(train), len(test)) == (1610, 290)
    assert sum(i.label == 0 for i in train) == 800 and sum(i.label == 0 for i in test) == 150
    assert all(i.class_name == "Normal" for i in train + test if i.label == 0)
    assert train[0].video_id == "Abuse001_x264" and train[0].class_name == "Abuse"
    # the other published layout: 'Class/name.mp4 NUM_FRAMES Class s1 e1 s2 e2'
    other = read_test_annotation(shared_data / "ucf_crime" / "Test_Annotation.txt")
    assert {i.video_id: i.label for i in other} == {i.video_id: i.label for i in test}


def test_ucf_crime_fake_tree_found_anywhere(tmp_path, shared_data):
    train = (shared_data / "ucf_crime" / "Anomaly_Train.txt").read_text().splitlines()
    test = (shared_data / "ucf_crime" / "Temporal_Anomaly_Annotation.txt").read_text().splitlines()
    lines_train = [train[0], train[-1], "Training_Normal_Videos_Anomaly/Normal_Videos003_x264.mp4"]
    tr, te = write_fake_ucf_crime(tmp_path, lines_train, [test[0], test[-1]], num_frames=5)
    items, missing = ucf_crime_items(tmp_path, tr, te)
    assert missing == [] and len(items) == 5
    by_id = {i.video_id: i for i in items}
    assert by_id["Normal_Videos003_x264"].label == 0 and by_id["Normal_Videos003_x264"].split == "train"
    assert by_id["Abuse028_x264"].split == "test" and by_id["Abuse028_x264"].label == 1
    assert all(i.path.is_file() for i in items)
    # a video that is not on disk is reported, not silently dropped
    (tmp_path / "Videos" / "Abuse" / "Abuse001_x264.mp4").unlink()
    items, missing = ucf_crime_items(tmp_path, tr, te)
    assert missing == ["Abuse001_x264"] and len(items) == 4


def test_ucf_crime_bad_arguments(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        ucf_crime_items(tmp_path, tmp_path / "nope.txt", None)
    with pytest.raises(DatasetError, match="give a train list"):
        ucf_crime_items(tmp_path, None, None)
    (tmp_path / "t.txt").write_text("Abuse001_x264.mp4\n")
    with pytest.raises(DatasetError, match="Class/name.mp4"):
        ucf_crime_items(tmp_path, tmp_path / "t.txt", None)


def test_shanghaitech_real_split_rule(shared_data):
    items, _ = shanghaitech_items(None, shared_data / "shanghaitech" / "SH_Train.txt",
                                  shared_data / "shanghaitech" / "SH_Test.txt")
    assert len(items) == 238 + 199
    labels = dict(line.split(",")[:2] for line in
                  (shared_data / "shanghaitech" / "SH_Train_new.txt").read_text().split())
    train = [i for i in items if i.split == "train"]
    assert {i.video_id: str(i.label) for i in train} == labels
    assert all(i.is_frame_folder == (i.label == 1) for i in items)


def test_shanghaitech_fake_tree(tmp_path):
    tr, te = write_fake_shanghaitech(tmp_path, ["01_0014", "01_001"], ["01_0015", "01_002"], 6)
    assert (tmp_path / "testing/frames/01_0014/000.jpg").is_file()
    assert (tmp_path / "training/videos/01_001.avi").is_file()
    items, missing = shanghaitech_items(tmp_path, tr, te)
    assert missing == []
    by_id = {i.video_id: i for i in items}
    assert by_id["01_0015"].is_frame_folder and by_id["01_0015"].path.is_dir()
    assert by_id["01_002"].path.suffix == ".avi" and by_id["01_002"].label == 0
    assert by_id["01_0014"].fps == 24.0


def test_footage_folder_and_manifest(tmp_path):
    for sub in ("normal", "anomalous", "other"):
        (tmp_path / "f" / sub).mkdir(parents=True)
        (tmp_path / "f" / sub / f"{sub}_cam.mp4").write_bytes(b"x")
    items = {i.video_id: i for i in footage_items(tmp_path / "f", "test")}
    assert {k: v.label for k, v in items.items()} == {"normal_cam": 0, "anomalous_cam": 1, "other_cam": -1}
    assert all(i.split == "test" for i in items.values())
    (tmp_path / "m.csv").write_text("path,label,split\nf/normal/normal_cam.mp4,normal,train\n"
                                    "f/anomalous/anomalous_cam.mp4,1,test\n")
    m = manifest_items(tmp_path / "m.csv")
    assert [(i.video_id, i.label, i.split) for i in m] == [("normal_cam", 0, "train"),
                                                          ("anomalous_cam", 1, "test")]
    (tmp_path / "bad.csv").write_text("path,label,split\nf/other/other_cam.mp4,weird,train\n")
    with pytest.raises(DatasetError, match="bad.csv:2.*weird"):
        manifest_items(tmp_path / "bad.csv")
    with pytest.raises(DatasetError, match="does not exist"):
        footage_items(tmp_path / "missing")


def test_non_utf8_file_names_get_printable_ids_and_keep_their_paths(tmp_path):
    """A file name is bytes; one that is not UTF-8 (Latin-1 e-acute, 0xE9) is found by its bytes,
    listed or not, and its id spells the byte as \\xe9 so that logs, JSON and HDF5 can hold it."""
    odd = Path(os.fsdecode(os.fsencode(tmp_path) + b"/f/caf\xe9.avi"))
    odd.parent.mkdir()
    odd.write_bytes(b"x")
    [item] = footage_items(tmp_path / "f")
    assert item.video_id == "caf\\xe9" and item.path == odd
    (tmp_path / "m.csv").write_bytes(b"path,label,split\nf/caf\xe9.avi,normal,train\n")
    [item] = manifest_items(tmp_path / "m.csv")
    assert (item.video_id, item.path, item.label) == ("caf\\xe9", odd, 0)
    clip = Path(os.fsdecode(os.fsencode(tmp_path) + b"/ucf/Abuse/Abuse\xe9.mp4"))
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"x")
    (tmp_path / "train.txt").write_bytes(b"Abuse/Abuse\xe9.mp4\n")
    items, missing = ucf_crime_items(tmp_path / "ucf", tmp_path / "train.txt", None)
    assert missing == [] and [(i.video_id, i.path) for i in items] == [("Abuse\\xe9", clip)]


def test_manifest_entries_not_on_disk(tmp_path, caplog):
    (tmp_path / "here.mp4").write_bytes(b"x")
    (tmp_path / "m.csv").write_text("path,label,split\nhere.mp4,,\ngone.mp4,,\n")
    with pytest.raises(DatasetError, match=r"m.csv:3: .*gone.mp4 does not exist.*--allow-missing"):
        manifest_items(tmp_path / "m.csv")
    assert [i.video_id for i in manifest_items(tmp_path / "m.csv", allow_missing=True)] == ["here"]
    assert f"m.csv:3: {tmp_path}/gone.mp4" in caplog.text and "skipped" in caplog.text
    (tmp_path / "m.csv").write_text("path,label,split\ngone.mp4,,\n")
    with pytest.raises(DatasetError, match="none of the listed videos exists"):
        manifest_items(tmp_path / "m.csv", allow_missing=True)


def _video_files(*paths: Path) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_a_stray_image_never_swallows_a_folder_of_videos(tmp_path, caplog):
    """Issue 20.1: `f/cover.png` beside `f/normal/n.mp4` and `f/anomalous/a.mp4` made `f` ONE
    frame folder of one frame; both videos were gone, with no log line."""
    caplog.set_level(logging.INFO)
    f = tmp_path / "f"
    _video_files(f / "normal" / "n.mp4", f / "anomalous" / "a.mp4", f / "cover.png")
    items = footage_items(f)
    assert sorted((i.video_id, i.label, i.is_frame_folder) for i in items) == [
        ("a", 1, False), ("n", 0, False)]
    assert "skipped" in caplog.text and "cover.png" in caplog.text


def test_an_image_among_videos_is_skipped_with_a_log_line(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    sub = tmp_path / "f" / "cams"
    _video_files(sub / "one.mp4", sub / "two.avi", sub / "preview.png")
    assert sorted(i.video_id for i in footage_items(tmp_path / "f")) == ["one", "two"]
    assert "preview.png" in caplog.text and "videos" in caplog.text


def test_the_frame_folder_rule(tmp_path, caplog):
    """A frame folder holds at least MIN_FRAMES images, nothing else (hidden files aside), and
    no video at any depth; anything else with images in it is listed as skipped."""
    caplog.set_level(logging.INFO)
    root = tmp_path / "f"
    _video_files(root / "cam.mp4")
    _video_files(*(root / "door" / f"{n:03d}.png" for n in range(3)), root / "door" / ".DS_Store")
    _video_files(root / "lonely" / "cover.jpg")  # one image is a stray file, not a video
    _video_files(root / "plots" / "cam.png", root / "plots" / "cam2.png", root / "plots" / "cam.npy")
    _video_files(root / "nested" / "0.jpg", root / "nested" / "1.jpg", root / "nested" / "x" / "v.mkv")
    items = {i.video_id: i for i in footage_items(root)}
    assert sorted(items) == ["cam", "door", "v"]
    assert items["door"].is_frame_folder and not items["v"].is_frame_folder
    for name in ("lonely", "plots", "nested"):
        assert f"{root / name}" in caplog.text
    # a folder given directly is judged by the same rule
    assert [i.video_id for i in footage_items(root / "door")] == ["door"]
    with pytest.raises(DatasetError, match="no videos or frame folders"):
        footage_items(root / "lonely")


def test_output_folders_are_never_read_as_input(tmp_path, caplog):
    """`--out` inside the input folder is left out whole; `--out` equal to the input folder
    leaves out the entries the command writes there (the caller names them)."""
    caplog.set_level(logging.INFO)
    root = tmp_path / "f"
    _video_files(root / "cam.mp4", root / "feats" / "review" / "previews" / "cam.mp4",
                 root / "cam.png", root / "cam2.png")
    assert [i.video_id for i in footage_items(root, exclude=[root / "feats", root / "cam.png",
                                                             root / "cam2.png"])] == ["cam"]
    assert "cam.png" not in caplog.text and "previews" not in caplog.text
    assert [i.video_id for i in footage_items(root, exclude=[root, root / "feats"])] == ["cam"]


ISSUE_CONTAINERS = (".ts", ".3gp", ".m2ts", ".mts", ".mkv", ".webm", ".flv", ".wmv", ".mpg",
                    ".mpeg", ".m4v", ".ogv", ".dav")


def test_every_container_of_the_list_is_a_video_and_what_is_not_is_named(tmp_path, caplog):
    """Issue 20.2: `.ts` and `.3gp` files and a dangling `.mp4` link were in neither the shards
    nor failures.jsonl, with no log line. Every listed ending is found (any case); a dangling
    link is a video (its job fails it by name); any other file is skipped with a line."""
    from claws.data.videos import VIDEO_SUFFIXES

    caplog.set_level(logging.INFO)
    assert set(ISSUE_CONTAINERS) <= set(VIDEO_SUFFIXES)
    root = tmp_path / "f"
    _video_files(*(root / f"v{n}{suffix}" for n, suffix in enumerate(VIDEO_SUFFIXES)),
                 root / "CAM.TS", root / "notes.txt", root / "song.mp3")
    (root / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    items = {i.video_id: i for i in footage_items(root)}
    assert len(items) == len(VIDEO_SUFFIXES) + 2 and "CAM" in items
    assert items["gone"].path == root / "gone.mp4" and not items["gone"].path.exists()
    assert f"skipped {root / 'notes.txt'}: not a video" in caplog.text
    assert f"skipped {root / 'song.mp3'}: not a video" in caplog.text


def test_a_folder_that_cannot_be_listed_is_named_not_a_traceback(tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    _video_files(tmp_path / "f" / "cam.mp4", tmp_path / "f" / "locked" / "x.mp4")
    locked, iterdir = tmp_path / "f" / "locked", Path.iterdir

    def refuse(self):  # as for a folder without read permission (the tests may run as root)
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return iterdir(self)

    monkeypatch.setattr(Path, "iterdir", refuse)
    assert [i.video_id for i in footage_items(tmp_path / "f")] == ["cam"]
    assert f"skipped {locked}: cannot be listed (Permission denied)" in caplog.text


def _video(tmp_path: Path) -> Path:
    (tmp_path / "cam.mp4").write_bytes(b"x")
    return tmp_path


@pytest.mark.parametrize("name,text,read,expected", [
    ("Anomaly_Train.txt", "Arson/Arson001_x264.mp4\n", read_train_list, ("Arson001_x264", "Arson")),
    ("Temporal.txt", "Arson011_x264.mp4  Arson  150  420  -1  -1\n", read_test_annotation,
     ("Arson011_x264", "Arson")),
    ("SH_Test.txt", "01_0014\n", lambda path: read_split(path, "test"), ("01_0014", "Anomalous")),
    ("m.csv", "path,label,split\ncam.mp4,normal,train\n", manifest_items, ("cam", "")),
])
def test_list_files_and_manifests_with_a_byte_order_mark(tmp_path, with_bom, name, text, read,
                                                         expected):
    """Issue 20 item 8: the BOM was part of the first name or header ('needs a header line')."""
    items = read(with_bom(_video(tmp_path) / name, text))
    assert [(i.video_id, i.class_name) for i in items] == [expected]
