"""What an extraction directory holds between runs (claws.extract.resume): work files written
whole and read back, keyed by what made them; which of them a rerun reuses; finished shards of
other footage; one extractor per directory; the failure log.

Whole jobs that resume (kill -9, full disk, moved footage) are in test_job.py and test_faults.py."""

import json
import logging

import numpy as np
import pytest

from claws.data.shards import NormStats, VideoRecord, write_shard
from claws.extract.resume import (
    ResumeConflict, check_same_extractor, job_work_files, log_failure, log_resume, plan_resume,
    prepare_out, read_failures, read_work, read_work_key, remove_empty_work_dir, work_files,
    work_key, write_work,
)

EXTRACTOR = {"network": "fake", "feature_dim": 3, "random": True, "precision": "fp32",
             "resize": "opencv_area"}
SOURCE = {"source_path": "/videos/cam.mp4", "source_size": 1000, "source_mtime_ns": 5}


def _record(video_id: str, split: str = "train", rows: int = 2) -> VideoRecord:
    features = np.arange(rows * 3, dtype=np.float32).reshape(rows, 3) + len(video_id)
    return VideoRecord(video_id, features, 16 * rows, 25.0, 1, split, "Arson",
                       SOURCE["source_path"], SOURCE["source_size"], extractor=EXTRACTOR,
                       source_mtime_ns=SOURCE["source_mtime_ns"])


def _key(**video) -> dict:
    return work_key(SOURCE, EXTRACTOR, **{"label": 1, "split": "train", **video})


def test_a_work_file_reads_back_exactly_and_only_exact_names_are_work_files(tmp_path):
    prepare_out(tmp_path)
    for vid in ("cam", ".hidden", "a.b"):
        write_work(tmp_path, _record(vid), _key())
    (tmp_path / ".work" / "tmp" / "half.npz").write_bytes(b"cut short")  # a write in flight
    assert sorted(work_files(tmp_path)) == [".hidden", "a.b", "cam"]
    back = read_work(work_files(tmp_path)["cam"])
    original = _record("cam")
    np.testing.assert_array_equal(back.features, original.features)
    assert back.features.dtype == np.float32
    assert {k: v for k, v in vars(back).items() if k != "features"} == \
        {k: v for k, v in vars(original).items() if k != "features"}
    assert read_work_key(work_files(tmp_path)["cam"]) == _key()
    prepare_out(tmp_path)  # the next job clears what a crash left in tmp/
    assert not list((tmp_path / ".work" / "tmp").iterdir())


def test_a_work_file_with_another_key_is_not_reused(tmp_path, caplog):
    prepare_out(tmp_path)
    write_work(tmp_path, _record("cam"), _key())
    write_work(tmp_path, _record("same"), _key())
    write_work(tmp_path, _record("other"), _key())
    plan = plan_resume(tmp_path, {"cam": _key(label=0), "same": _key()})
    assert plan.done == {"same"} and plan.foreign == ["other"]
    assert plan.stale == {"cam": "its work file was made from other footage or settings "
                                 "(label: 1 -> 0)"}
    moved = work_key({**SOURCE, "source_path": "/elsewhere/cam.mp4"}, EXTRACTOR, label=1,
                     split="train")
    assert "source_path: '/videos/cam.mp4' -> '/elsewhere/cam.mp4'" in \
        plan_resume(tmp_path, {"cam": moved}).stale["cam"]
    assert job_work_files(tmp_path, {"cam": _key(label=0), "same": _key()}) == \
        [work_files(tmp_path)["same"]]
    with caplog.at_level(logging.WARNING, logger="claws"):
        log_resume(plan, tmp_path, "extracting it again")
    assert "cam: its work file was made from other footage" in caplog.text
    assert "1 work files in" in caplog.text and "(other)" in caplog.text


def test_a_damaged_work_file_is_not_reused_and_named(tmp_path, caplog):
    prepare_out(tmp_path)
    write_work(tmp_path, _record("a"), _key())
    (tmp_path / ".work" / "b.npz").write_bytes(b"overwritten by something else")
    plan = plan_resume(tmp_path, {"a": _key(), "b": _key()})
    assert plan.done == {"a"} and list(plan.stale) == ["b"]
    assert plan.stale["b"].startswith("it cannot be read (")
    with caplog.at_level(logging.WARNING, logger="claws"):
        log_resume(plan, tmp_path, "extracting it again")
    assert "b: it cannot be read (" in caplog.text and "; extracting it again" in caplog.text


def test_a_work_file_of_an_earlier_version_has_no_key_and_is_not_reused(tmp_path):
    (tmp_path / ".work").mkdir()
    np.savez(tmp_path / ".work" / "cam.npz", features=np.zeros((1, 3), np.float32),
             meta=json.dumps({"video_id": "cam"}))
    assert read_work_key(tmp_path / ".work" / "cam.npz") is None
    plan = plan_resume(tmp_path, {"cam": _key()})
    assert plan.done == set()
    assert plan.stale["cam"] == ("its work file was made from an earlier claws version that did "
                                 "not record it")


def test_a_finished_shard_of_other_footage_is_a_conflict_naming_the_shard(tmp_path):
    write_shard(tmp_path / "shard-r000-00000.h5", [_record("cam")], NormStats.identity(3))
    assert plan_resume(tmp_path, {"cam": _key()}).done == {"cam"}
    other = work_key({**SOURCE, "source_size": 999}, EXTRACTOR, label=1, split="train")
    with pytest.raises(ResumeConflict, match=r"cam in shard-r000-00000\.h5 was made from "
                       r"/videos/cam\.mp4 \(1000 bytes.*differs in source_size.*new output "
                       r"directory.*delete the shard files named here") as err:
        plan_resume(tmp_path, {"cam": other})
    assert "1 videos of this job" in str(err.value)


def test_one_extractor_per_directory(tmp_path):
    check_same_extractor(tmp_path, EXTRACTOR)  # nothing there yet
    prepare_out(tmp_path)
    write_work(tmp_path, _record("cam"), _key())
    check_same_extractor(tmp_path, {**EXTRACTOR, "claws_version": "other"})  # not an identity key
    with pytest.raises(ValueError, match=r"another extractor .*'precision': \('fp32', 'bf16'\).*"
                       "new output directory"):
        check_same_extractor(tmp_path, {**EXTRACTOR, "precision": "bf16"})
    older = {k: v for k, v in EXTRACTOR.items() if k != "resize"}  # before the resize was recorded
    with pytest.raises(ValueError, match=r"'resize': \('opencv_area', 'float_bilinear_round'\)"):
        check_same_extractor(tmp_path, older)


def test_the_failure_log_keeps_every_line_and_skips_a_cut_one(tmp_path, caplog):
    log_failure(tmp_path, "a", "/videos/a.mp4", "DecodeError: unreadable")
    log_failure(tmp_path, "b", "/videos/b.mp4", "zero frames decoded", rank=1)
    with open(tmp_path / "failures.jsonl", "a") as f:
        f.write('{"video_id": "c", "pa')  # a line cut short by a full disk
    with caplog.at_level(logging.WARNING, logger="claws"):
        failures = read_failures(tmp_path)
    assert [(f["video_id"], f["rank"], f["reason"]) for f in failures] == [
        ("a", 0, "DecodeError: unreadable"), ("b", 1, "zero frames decoded")]
    assert "failures.jsonl:3: not a JSON line" in caplog.text
    assert read_failures(tmp_path / "nothing") == []


def test_the_work_folder_goes_once_empty(tmp_path):
    prepare_out(tmp_path)
    path = write_work(tmp_path, _record("cam"), _key())
    remove_empty_work_dir(tmp_path)
    assert path.is_file()  # a work file left: kept
    path.unlink()
    prepare_out(tmp_path)  # the next job
    remove_empty_work_dir(tmp_path)
    assert not (tmp_path / ".work").exists()
    prepare_out(tmp_path)
    (tmp_path / ".work" / "tmp").rmdir()  # another rank got there first
    remove_empty_work_dir(tmp_path)
    assert not (tmp_path / ".work").exists()
    remove_empty_work_dir(tmp_path)  # nothing left at all: still fine


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_a_cut_or_empty_work_file_is_extracted_again_not_a_traceback(tmp_path, damage):
    """A work file cut by a full disk or a crash outside our atomic writes (BadZipFile,
    EOFError) is a stale file to redo, and does not stop the extractor check."""
    prepare_out(tmp_path)
    write_work(tmp_path, _record("a"), _key())
    good = (tmp_path / ".work" / "a.npz").read_bytes()
    (tmp_path / ".work" / "0.npz").write_bytes(good[: len(good) // 2] if damage == "truncated" else b"")
    plan = plan_resume(tmp_path, {"a": _key(), "0": _key()})
    assert plan.done == {"a"} and plan.stale["0"].startswith("it cannot be read (")
    check_same_extractor(tmp_path, EXTRACTOR)  # "0.npz" sorts first and is skipped
    with pytest.raises(ValueError, match="another extractor"):
        check_same_extractor(tmp_path, {**EXTRACTOR, "precision": "bf16"})


def test_features_from_before_fc6_ran_in_fp32_are_not_mixed_with_new_ones(tmp_path):
    """Issue 22 item 5: fc6 used to run in the convolutions' precision; it is fp32 now. An
    extractor dict without `fc6_precision` had fc6 in its `precision`: fp32 ones still match."""
    prepare_out(tmp_path)
    old_bf16 = {**EXTRACTOR, "precision": "bf16"}
    write_work(tmp_path, _record("cam"), _key())
    check_same_extractor(tmp_path, {**EXTRACTOR, "fc6_precision": "fp32"})  # fp32 before and now
    other = tmp_path / "other"
    prepare_out(other)
    import dataclasses

    write_work(other, dataclasses.replace(_record("cam"), extractor=old_bf16), _key())
    with pytest.raises(ValueError, match=r"'fc6_precision': \('bf16', 'fp32'\)"):
        check_same_extractor(other, {**old_bf16, "fc6_precision": "fp32"})


def test_a_long_id_gets_a_bounded_work_file_name_and_keeps_its_full_id(tmp_path):
    """Issue 20.3: the work-file name of a 250-character id is its first bytes and a hash; the
    full id is inside; a rerun finds it by id; an id of 200 bytes or less keeps its name."""
    from claws.data.videos import NAME_BYTES, file_stem

    prepare_out(tmp_path)
    long_id, other = "é" * 125, "é" * 124 + "è"  # 250 bytes each, same first 183 bytes
    for vid in (long_id, other, "cam"):
        write_work(tmp_path, _record(vid), _key())
    names = sorted(p.name for p in (tmp_path / ".work").glob("*.npz"))
    assert "cam.npz" in names and all(len(n.encode()) <= NAME_BYTES + 4 for n in names)
    assert file_stem(long_id) != file_stem(other) and file_stem("x" * 200) == "x" * 200
    assert read_work(work_files(tmp_path)[file_stem(long_id)]).video_id == long_id
    plan = plan_resume(tmp_path, {long_id: _key(), "cam": _key()})
    assert plan.done == {long_id, "cam"} and plan.foreign == [file_stem(other)]
    assert job_work_files(tmp_path, {long_id: _key()}) == [work_files(tmp_path)[file_stem(long_id)]]
