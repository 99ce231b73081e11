"""Writing a file whole or not at all, and a clear error when the disk is full.

Every file a rerun trusts (a work file, a shard) is built in memory, written to a temporary path
that no finished file can be mistaken for, flushed to disk and renamed. Out of space (ENOSPC) or
out of quota (EDQUOT) becomes `DiskFullError`, which names the folder and the bytes needed, after
the temporary file is removed: nothing half-written is left under a name a rerun would read.
Building in memory also keeps HDF5 away from a full disk, where it can crash the interpreter
(issue 9: exit 139 during the shard write).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

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


def write_atomic(path: Path, payload: bytes | memoryview, tmp: Path) -> Path:
    """Write `payload` to `tmp`, fsync, rename it to `path`; never a partial file under `path`.

    Args:
        path: the final file (replaced if it exists).
        payload: the whole content.
        tmp: the temporary path, on the same file system as `path`, in a name space that readers
            of finished files never look at.

    Returns:
        `path`.

    Raises:
        DiskFullError: not enough space (checked first, with SPACE_MARGIN to spare) or the
            device ran out of space or quota while writing; `tmp` is removed.
    """
    path, tmp = Path(path), Path(tmp)
    needed = len(payload)
    if shutil.disk_usage(tmp.parent).free < needed + SPACE_MARGIN:
        raise disk_full(tmp.parent, path.name, needed, "checked before writing")
    try:
        with open(tmp, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if err.errno in NO_SPACE:
            raise disk_full(tmp.parent, path.name, needed, os.strerror(err.errno)) from err
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return path
