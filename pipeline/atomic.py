"""Atomic file writes: write to a temporary name in the same folder, then rename.

A crash leaves either the old file or none under the final name, never a half-written one
(STYLE.md "Errors and data safety"). Used by every writer of `claws score`, `claws evaluate` and
`claws review`; whole payloads go through claws.data.atomic_write, the writer of work files and
shards, so a full disk is the same clean DiskFullError everywhere.
"""

from __future__ import annotations

import io
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from claws.data.atomic_write import write_atomic


def _temporary(path: Path) -> Path:
    """The temporary name beside `path`: hidden, per process, keeping the final suffix."""
    return path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it to `path`, else delete it.

    For writers that must write a file themselves (matplotlib, PyAV). The temporary name keeps
    the final suffix (`x.tmp.png`) so writers that infer the format from the suffix still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: Path, payload: bytes | memoryview) -> Path:
    """Write a whole file atomically (claws.data.atomic_write: a full disk is a DiskFullError)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, payload, _temporary(path))


def write_text(path: Path, text: str) -> Path:
    """Write a UTF-8 text file atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data: object) -> Path:
    """Write a JSON file atomically (indented, keys in order given)."""
    return write_text(path, json.dumps(data, indent=2) + "\n")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Write one JSON object per line, atomically."""
    return write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


def save_npy(path: Path, array: np.ndarray) -> Path:
    """Save a .npy array atomically."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return write_bytes(path, buffer.getbuffer())
