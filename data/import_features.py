"""Published per-video feature files and the lists that describe them (for `claws import-features`).

Users often hold the per-video feature files that other repositories published instead of the
videos. This module reads what is on disk:

- Feature files: one `.npy` per video, `(T, D)` (one row per 16-frame clip) or `(T, crops, D)`
  (e.g. the 10-crop I3D/C3D files of RTFM-style repositories; the crops are averaged), or one
  `.npy` per crop named `<video>__<k>.npy` (k = 0..crops-1, each `(T, D)`; averaged too). A file
  is matched to a listed video by its stem, either equal to the video id or the id followed by
  one of FEATURE_SUFFIXES (`Abuse028_x264_i3d.npy` is video `Abuse028_x264`).
- Frame-count lists (`read_frame_counts`), any of: UCF-Crime `Train_Annotation.txt`
  (`Class/name.mp4 NUM_FRAMES`) and `Test_Annotation.txt` (`Class/name.mp4 NUM_FRAMES Class s1 e1
  s2 e2`), `Temporal_Anomaly_Annotation_New.txt` (`name.mp4 Class s1 e1 s2 e2 NUM_FRAMES`),
  ShanghaiTech `SH_Test_NEW.txt` (`name,label,num_frames`, -1 = unknown), or a generic CSV with
  the header `video,num_frames[,fps]`.
- An import manifest (`read_import_manifest`): CSV with the header `video,label,split[,class]`.

Shapes: T clips, D feature dim.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import numpy as np

from claws.data.videos import (
    DatasetError, VideoItem, check_unique, manifest_rows, read_lines, row_label_split,
)

FEATURE_SUFFIX = ".npy"
# Endings that repositories append to the video name in feature file names.
FEATURE_SUFFIXES = ("_i3d", "_c3d", "_x3d", "_s3d", "_r3d", "_fc6", "_feature", "_features", "_feat")
_CROP = re.compile(r"^(?P<base>.+)__(?P<crop>\d+)$")


class FeatureFileError(ValueError):
    """A feature file cannot be read or has the wrong shape; the message names the file."""


class FrameCount(NamedTuple):
    """What a frame-count list says about one video."""

    num_frames: int  # frames of the original video; -1 when the list does not know
    fps: float  # frame rate from the list, 0.0 when it has none
    source: str  # file name of the list, recorded with the features


class ClipFeatures(NamedTuple):
    """One video's features as read from its file(s)."""

    features: np.ndarray  # (T, D) float32, crops averaged
    crops: int  # crops averaged (1 when the file had none)
    paths: list[Path]  # the file(s) read
    size: int  # bytes of those files


def _video_id(name: str) -> str:
    return PurePosixPath(name.replace("\\", "/")).stem


def _count(text: str, where: str) -> int:
    try:
        return int(float(text))
    except ValueError as err:
        raise DatasetError(f"{where}: frame count {text!r} is not a number") from err


def _csv_counts(path: Path) -> dict[str, FrameCount]:
    counts = {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"video", "num_frames"} <= set(reader.fieldnames):
            raise DatasetError(f"{path}: a frame-count CSV needs the header 'video,num_frames[,fps]'")
        for n, row in enumerate(reader, 2):
            fps = float(row.get("fps") or 0.0)
            counts[_video_id(row["video"].strip())] = FrameCount(
                _count(row["num_frames"], f"{path}:{n}"), fps, path.name)
    return counts


def _line_count(fields: list[str], comma: bool, where: str) -> tuple[str, int]:
    if comma and len(fields) == 3:  # ShanghaiTech name,label,num_frames
        return fields[0], _count(fields[2], where)
    if len(fields) >= 2 and fields[1].lstrip("-").isdigit():  # Class/name.mp4 NUM_FRAMES ...
        return fields[0], _count(fields[1], where)
    if len(fields) == 7 and fields[-1].isdigit():  # name.mp4 Class s1 e1 s2 e2 NUM_FRAMES
        return fields[0], _count(fields[-1], where)
    raise DatasetError(
        f"{where}: no frame count in {' '.join(fields)!r}; expected 'Class/name.mp4 NUM_FRAMES ...', "
        "'name,label,num_frames' or a CSV with header video,num_frames[,fps]"
    )


def read_frame_counts(path: Path) -> dict[str, FrameCount]:
    """Frame counts (and fps when given) by video id from one list file (formats: module doc)."""
    path = Path(path)
    lines = read_lines(path, "frame-count list")
    if lines and lines[0].replace(" ", "").lower().startswith("video,"):
        return _csv_counts(path)
    counts = {}
    for n, line in enumerate(lines, 1):
        comma = "," in line
        fields = [f.strip() for f in line.split(",")] if comma else line.split()
        name, num_frames = _line_count(fields, comma, f"{path}:{n}")
        counts[_video_id(name)] = FrameCount(num_frames, 0.0, path.name)
    return counts


def read_import_manifest(path: Path) -> list[VideoItem]:
    """Videos of a CSV `video,label,split[,class]` (header required; label anomalous/normal/1/0/-1)."""
    items = []
    for where, row in manifest_rows(path, "video", "video,label,split[,class]"):
        video_id = _video_id(row["video"].strip())
        if not video_id:
            raise DatasetError(f"{where}: empty video name")
        items.append(VideoItem(video_id, None, *row_label_split(row, where),
                               (row.get("class") or "").strip()))
    if not items:
        raise DatasetError(f"{path}: no videos listed")
    return check_unique(items, str(path))


def index_feature_files(folder: Path) -> dict[str, list[Path]]:
    """Feature files anywhere under `folder` by file key (stem without `__<crop>`).

    Returns:
        key -> files (one file, or the crop files in crop order).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"feature folder {folder} is not a directory")
    found: dict[str, dict[int, Path]] = {}
    for path in sorted(folder.rglob(f"*{FEATURE_SUFFIX}")):
        m = _CROP.match(path.stem)
        key, crop = (m["base"], int(m["crop"])) if m else (path.stem, -1)
        crops = found.setdefault(key, {})
        if crop in crops or (crops and (crop == -1) != (-1 in crops)):
            other = next(iter(crops.values()))
            raise DatasetError(f"{path} and {other} both hold video {key}; keep one of them")
        crops[crop] = path
    return {key: [crops[c] for c in sorted(crops)] for key, crops in found.items()}


def find_feature_files(index: dict[str, list[Path]], video_id: str) -> list[Path] | None:
    """The file(s) of one video: stem equal to its id or its id plus a FEATURE_SUFFIXES ending."""
    keys = [k for k in (video_id, *(video_id + s for s in FEATURE_SUFFIXES)) if k in index]
    if len(keys) > 1:
        raise DatasetError(
            f"video {video_id}: several feature files match ({', '.join(str(index[k][0]) for k in keys)})"
        )
    return index[keys[0]] if keys else None


def _load(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise FeatureFileError(f"{path}: unreadable .npy ({err}); replace the file") from err
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.number):
        raise FeatureFileError(f"{path}: not a numeric array ({getattr(array, 'dtype', type(array))})")
    return array


def load_clip_features(paths: list[Path]) -> ClipFeatures:
    """One video's (T, D) features from a (T, D) / (T, crops, D) file or from per-crop files.

    Raises:
        FeatureFileError: unreadable file, wrong rank, zero clips, crops of different shapes,
            NaN or inf; the message names the file.
    """
    arrays = [_load(p) for p in paths]
    if len(arrays) > 1:
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1 or arrays[0].ndim != 2:
            raise FeatureFileError(
                f"{paths[0].parent}: crop files of {_video_id(paths[0].name)} must all be (T, D), "
                f"got {sorted(shapes)}"
            )
        array = np.stack(arrays, axis=1)  # (T, crops, D)
    else:
        array = arrays[0]
    if array.ndim not in (2, 3) or array.shape[0] == 0 or array.shape[-1] == 0:
        raise FeatureFileError(
            f"{paths[0]}: features of shape {array.shape}; expected (T, D) or (T, crops, D) with T > 0"
        )
    crops = array.shape[1] if array.ndim == 3 else 1
    features = array.astype(np.float64).mean(axis=1) if array.ndim == 3 else array
    features = np.asarray(features, dtype=np.float32)
    if not np.isfinite(features).all():
        raise FeatureFileError(f"{paths[0]}: features contain NaN or inf")
    return ClipFeatures(features, crops, list(paths), sum(p.stat().st_size for p in paths))
