"""Atomic file writes: write to a temporary name in the same folder, then rename.

A crash leaves either the old file or none under the final name, never a half-written one
(STYLE.md "Errors and data safety"). Used by every writer of `claws score` and `claws evaluate`.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it to `path`, else delete it.

    The temporary name keeps the final suffix (`x.tmp.png`) so writers that infer the format
    from the suffix still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: Path, text: str) -> Path:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: Path, data: object) -> Path:
    """Write a JSON file atomically (indented, keys in order given)."""
    return write_text(path, json.dumps(data, indent=2) + "\n")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Write one JSON object per line, atomically."""
    return write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


def save_npy(path: Path, array: np.ndarray) -> Path:
    """Save a .npy array atomically."""
    with atomic_path(path) as tmp:
        with tmp.open("wb") as handle:
            np.save(handle, array)
    return Path(path)
