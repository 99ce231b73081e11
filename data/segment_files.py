"""Segment-pooled feature files and segment frame bounds, as published for UCF-Crime.

Most published UCF-Crime C3D features are not one row per clip but one row per SEGMENT: each
video cut into N (usually 32) segments, a segment being the mean of the C3D fc6 features of the
16-frame clips in it (Sultani et al., CVPR 2018). This module reads what is on disk:

- `.txt`: N rows of whitespace-separated floats (Sultani's official files, `<video>.txt`, and
  HumanBehaviorBKU's `<video>_C.txt`; rows L2-normalised).
- `.csv`: an optional first line holding ONE integer w, the segment width in frames (the
  vantage-vision layout: a clip starting at 1-based frame k went to segment k // w), then N rows
  of comma-separated floats.
- `.npy` `(N, D)` (or crops, averaged), and `.npz` holding one `(N, D)` array per video keyed by
  video id (e.g. the ucf_c3d32 pack).
- Segment bounds files (`read_bounds_file`): an `.npz` whose arrays are `(N, 2)` 1-based
  INCLUSIVE frame ranges, keyed `<video>/bounds`, `<video>` or `<prefix>/<video>/bounds` (the
  pack's segments.npz uses the prefixes vantage, sultani, bku32, bku64).

Which file belongs to which video: claws.data.feature_sources. Shapes: N segments, D feature dim.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from claws.data.feature_sources import FeatureEntry, FeatureFileError
from claws.data.feature_files import load_clip_features
from claws.data.text_files import read_text
from claws.data.videos import DatasetError


class SegmentFile(NamedTuple):
    """One video's segment rows as read from its file."""

    rows: np.ndarray  # (N, D) float32, as stored (crops averaged)
    width: int | None  # segment width in frames from a CSV header line, else None
    format: str  # "txt", "csv", "npy" or "npz"
    crops: int  # crops averaged (1 when the file had none)
    size: int  # bytes of the file(s)


def _parse_rows(lines: list[str], sep: str | None, where: str, first_line: int) -> np.ndarray:
    try:
        rows = [[float(v) for v in line.split(sep)] for line in lines]
    except ValueError as err:
        raise FeatureFileError(f"{where}: a row that is not numbers ({err}); replace the file") from err
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        bad = next(n for n, r in enumerate(rows) if len(r) != len(rows[0]))
        raise FeatureFileError(f"{where}:{first_line + bad}: {len(rows[bad])} values, the first row "
                               f"has {len(rows[0])}; replace the file")
    return np.asarray(rows, dtype=np.float64)


def read_text_segments(path: Path) -> tuple[np.ndarray, int | None]:
    """Rows of a `.txt` (whitespace) or `.csv` (commas, optional width line) segment file.

    Returns:
        (rows (N, D) float64, width in frames from the CSV's first line or None).

    Raises:
        FeatureFileError: unreadable file, ragged or non-numeric rows, a width below 1.
    """
    path = Path(path)
    try:
        lines = [line.strip() for line in read_text(path).splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        raise FeatureFileError(f"{path}: unreadable ({err}); replace the file") from err
    lines = [line for line in lines if line]
    is_csv = path.suffix.lower() == ".csv"
    width, first = None, 1
    if is_csv and lines and "," not in lines[0]:
        try:
            width = int(lines[0])
        except ValueError as err:
            raise FeatureFileError(
                f"{path}:1: {lines[0][:40]!r} is neither the segment width (one integer) nor a row "
                "of comma-separated floats; fix the file") from err
        if width < 1:
            raise FeatureFileError(f"{path}:1: segment width {width} must be >= 1; fix the file")
        lines, first = lines[1:], 2
    if not lines:
        raise FeatureFileError(f"{path}: no feature rows; replace the file")
    return _parse_rows(lines, "," if is_csv else None, str(path), first), width


def load_segment_file(entry: FeatureEntry) -> SegmentFile:
    """One video's (N, D) segment rows from a .txt, .csv, .npy or .npz entry.

    Raises:
        FeatureFileError: unreadable file, wrong rank, zero rows, NaN or inf; the message names
            the file (and the npz key).
    """
    fmt = entry.format
    if fmt in ("txt", "csv"):
        rows, width = read_text_segments(entry.paths[0])
        crops, size = 1, entry.paths[0].stat().st_size
    else:
        clip = load_clip_features(entry.paths, entry.key)  # (N, D) or crops averaged
        rows, width, crops, size = clip.features, None, clip.crops, clip.size
    if rows.shape[1] == 0:
        raise FeatureFileError(f"{entry.where}: rows of zero values; replace the file")
    if not np.isfinite(rows).all():
        raise FeatureFileError(f"{entry.where}: features contain NaN or inf; replace the file")
    return SegmentFile(np.asarray(rows, dtype=np.float32), width, fmt, crops, size)


def read_bounds_file(path: Path) -> dict[str, np.ndarray]:
    """Every array of a segment-bounds .npz whose key ends in `/bounds` or has no `/`.

    Raises:
        DatasetError: the file is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"--segment-bounds {path} does not exist; pass the .npz of frame bounds")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files if k.endswith("/bounds") or "/" not in k}
    except (OSError, ValueError, EOFError) as err:
        raise DatasetError(f"--segment-bounds {path}: not a readable .npz ({err})") from err


def bounds_key(keys: dict[str, np.ndarray], video_id: str, prefix: str | None, where: Path) -> str | None:
    """The key of one video's bounds: `<prefix>/<video>/bounds`, `<video>/bounds`, `<video>`,
    else the only `<anything>/<video>/bounds` when no prefix is given.

    Returns:
        the key, or None when the file has no bounds for the video.

    Raises:
        DatasetError: no prefix is given and several `<source>/<video>/bounds` keys exist.
    """
    plain = ([f"{prefix}/{video_id}/bounds"] if prefix else []) + [f"{video_id}/bounds", video_id]
    for key in plain:
        if key in keys:
            return key
    if prefix:
        return None
    ending = f"/{video_id}/bounds"
    prefixed = sorted(k for k in keys if k.endswith(ending) and k.count("/") == 2)
    if len(prefixed) > 1:
        raise DatasetError(f"{where}: video {video_id} has bounds under several keys "
                           f"({', '.join(prefixed)}); pass --bounds-prefix to choose one "
                           f"(e.g. --bounds-prefix {prefixed[0].split('/')[0]})")
    return prefixed[0] if prefixed else None
