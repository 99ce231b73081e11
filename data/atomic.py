"""Writing a file whole or not at all, and a clear error when the disk is full.

Every file a rerun or a reader trusts (a work file, a shard, a checkpoint, a config, scores) is
written to a temporary path, flushed to disk and renamed over its final name, so a crash leaves
the old file or none, never a half-written one (STYLE.md "Errors and data safety"). One naming
scheme for temporaries, `temporary_path`: `.<stem>.tmp<pid><suffix>` beside the final file
(hidden, so readers of finished files skip it; one per process; the final suffix kept for
writers that infer the format from it, such as PyAV and matplotlib).

Whole payloads go through `write_atomic`, which checks the free space first and turns out of
space (ENOSPC) or out of quota (EDQUOT) into `DiskFullError`, naming the folder and the bytes
needed, after the temporary file is removed. Building a payload in memory also keeps HDF5 away
from a full disk, where it can crash the interpreter (issue 9: exit 139 during the shard write).
Writers that must write a file themselves (torch.save, PyAV, matplotlib) use `atomic_path`;
appending writers (the failure log) name a full disk the same way with `space_named`.

Standard library only at import (numpy is imported by `save_npy` when called): the command-line
parsers import modules that import this one and must stay light.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import numpy as np

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
# Room kept free beyond the bytes of a file: its file-system metadata, and the failure-log
# lines written after it.
SPACE_MARGIN = 64 * 1024


class DiskFullError(OSError):
    """No space or quota left for a write; the message names the folder and the bytes needed."""


def human_size(num_bytes: float) -> str:
    """Bytes in the largest fitting unit: '512 B', '3.4 kB', '1.2 GB'."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(num_bytes) < 1000 or unit == "TB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1000
    raise AssertionError("unreachable")


def disk_full(folder: Path, name: str, needed: int, cause: str) -> DiskFullError:
    """The error for `name` (needing `needed` bytes) that did not fit in `folder`."""
    free = shutil.disk_usage(folder).free if folder.is_dir() else 0
    return DiskFullError(
        f"no space left in {folder} ({cause}): writing {name} needs {human_size(needed)} "
        f"({human_size(free)} free now); make room for at least "
        f"{human_size(needed + SPACE_MARGIN)} there (or write to a larger disk) and rerun the "
        "same command: everything finished so far is kept"
    )


@contextmanager
def space_named(folder: Path, name: str, needed: int) -> Iterator[None]:
    """Inside the block, running out of space or quota while writing `name` (`needed` bytes) in
    `folder` raises DiskFullError (`disk_full`); any other error passes unchanged."""
    try:
        yield
    except OSError as err:
        if err.errno in NO_SPACE:
            raise disk_full(Path(folder), name, needed, os.strerror(err.errno)) from err
        raise


def temporary_path(path: Path, folder: Path | None = None) -> Path:
    """The temporary name a write of `path` goes through: `.<stem>.tmp<pid><suffix>`.

    Args:
        path: the final file.
        folder: where the temporary lives; default: beside `path` (it must be on the same file
            system as `path`, for the rename).

    Returns:
        The temporary path: hidden, one per process, ending in the final suffix.
    """
    path = Path(path)
    name = f".{path.stem}.tmp{os.getpid()}{path.suffix}"
    return (path.parent if folder is None else Path(folder)) / name


@contextmanager
def atomic_path(path: Path, tmp: Path | None = None) -> Iterator[Path]:
    """Yield a temporary path; rename it to `path` when the block succeeds, delete it in any case.

    For writers that must write a file themselves (torch.save, PyAV, matplotlib). The folder of
    `path` is created.

    Args:
        path: the final file (replaced if it exists).
        tmp: the temporary path; default `temporary_path(path)`.
    """
    path = Path(path)
    tmp = temporary_path(path) if tmp is None else Path(tmp)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, payload: bytes | memoryview, tmp: Path | None = None) -> Path:
    """Write `payload` to a temporary file, fsync, rename it to `path`; never a partial `path`.

    Args:
        path: the final file (replaced if it exists); its folder is created.
        payload: the whole content.
        tmp: the temporary path, on the same file system as `path`, in a name space that readers
            of finished files never look at; default `temporary_path(path)`.

    Returns:
        `path`.

    Raises:
        DiskFullError: not enough space (checked first, with SPACE_MARGIN to spare) or the
            device ran out of space or quota while writing; the temporary file is removed.
    """
    path = Path(path)
    tmp = temporary_path(path) if tmp is None else Path(tmp)
    path.parent.mkdir(parents=True, exist_ok=True)
    needed = len(payload)
    if shutil.disk_usage(tmp.parent).free < needed + SPACE_MARGIN:
        raise disk_full(tmp.parent, path.name, needed, "checked before writing")
    with (space_named(tmp.parent, path.name, needed), atomic_path(path, tmp) as target,
          open(target, "wb") as f):
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    return path


def write_text(path: Path, text: str) -> Path:
    """Write a UTF-8 text file atomically (`write_atomic`)."""
    return write_atomic(path, text.encode("utf-8"))


def write_json(path: Path, data: object) -> Path:
    """Write a JSON file atomically (indented, keys in the order given)."""
    return write_text(path, json.dumps(data, indent=2) + "\n")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Write one JSON object per line, atomically."""
    return write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


def save_npy(path: Path, array: np.ndarray) -> Path:
    """Save a numpy array as a .npy file atomically."""
    import numpy as np  # not at the top: see the module docstring

    buffer = io.BytesIO()
    np.save(buffer, array)
    return write_atomic(path, buffer.getbuffer())
