"""The one atomic writer: a write that fails midway leaves the old file and no temporary, a full disk
is a DiskFullError that names the folder, temporaries are hidden and keep the final suffix."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from claws.data.atomic import (
    DiskFullError, atomic_path, human_size, save_npy, temporary_path, write_atomic, write_json,
    write_jsonl, write_text,
)


def _fail_fsync(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    def fsync(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", fsync)


def test_temporary_name_is_hidden_per_process_and_keeps_the_suffix(tmp_path: Path) -> None:
    tmp = temporary_path(tmp_path / "curve.png")
    assert tmp == tmp_path / f".curve.tmp{os.getpid()}.png"
    assert temporary_path(tmp_path / "a.b.npz", tmp_path / "t") == tmp_path / "t" / f".a.b.tmp{os.getpid()}.npz"


def test_write_replaces_the_file_whole_and_creates_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "new" / "f.bin"
    assert write_atomic(path, b"first") == path
    write_atomic(path, memoryview(b"second"))
    assert path.read_bytes() == b"second" and os.listdir(path.parent) == ["f.bin"]


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = write_atomic(tmp_path / "f.bin", b"old")
    _fail_fsync(monkeypatch, errno.EIO)  # after the bytes went into the temporary file
    with pytest.raises(OSError, match="Input/output") as err:
        write_atomic(path, b"new content")
    assert not isinstance(err.value, DiskFullError)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_disk_full_while_writing_is_a_disk_full_error(tmp_path, monkeypatch, code):
    path = write_atomic(tmp_path / "f.bin", b"old")
    _fail_fsync(monkeypatch, code)
    with pytest.raises(DiskFullError, match=rf"no space left in {tmp_path} .*f\.bin needs 4 B"
                                            r".*make room.*rerun"):
        write_atomic(path, b"new!")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]


def test_disk_full_is_found_before_writing(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage(10**6, 10**6 - 1000, 1000))
    with pytest.raises(DiskFullError, match="checked before writing.*needs 2.0 kB"):
        write_atomic(tmp_path / "f.bin", b"x" * 2000)
    assert os.listdir(tmp_path) == []
    assert isinstance(DiskFullError("x"), OSError)  # callers catching OSError still see it


def test_atomic_path_renames_on_success_and_removes_the_temporary_on_error(tmp_path: Path) -> None:
    path = tmp_path / "plot.png"
    with atomic_path(path) as tmp:
        assert tmp.suffix == ".png" and tmp.name.startswith(".")
        tmp.write_bytes(b"image")
    assert path.read_bytes() == b"image"
    with pytest.raises(RuntimeError, match="writer died"):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer died")
    assert path.read_bytes() == b"image" and os.listdir(tmp_path) == ["plot.png"]


def test_text_json_jsonl_and_npy_round_trip(tmp_path: Path) -> None:
    assert write_text(tmp_path / "t.txt", "café\n").read_bytes() == "café\n".encode("utf-8")
    data = {"b": 1, "a": [1.5, None]}
    assert json.loads(write_json(tmp_path / "d.json", data).read_text()) == data
    rows = [{"x": 1}, {"x": 2}]
    lines = write_jsonl(tmp_path / "r.jsonl", rows).read_text().splitlines()
    assert [json.loads(line) for line in lines] == rows
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(np.load(save_npy(tmp_path / "a.npy", array)), array)
    assert sorted(os.listdir(tmp_path)) == ["a.npy", "d.json", "r.jsonl", "t.txt"]


@pytest.mark.parametrize("num_bytes,text", [(0, "0 B"), (512, "512 B"), (999, "999 B"),
                                            (3400, "3.4 kB"), (1.2e9, "1.2 GB"), (5e15, "5000.0 TB")])
def test_human_size(num_bytes: float, text: str) -> None:
    assert human_size(num_bytes) == text


def test_import_is_light() -> None:
    """Parsers import this module (through pipeline/training/config.py): numpy waits for save_npy."""
    code = "import sys, claws.data.atomic; print(sorted(m for m in ('numpy', 'h5py') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
