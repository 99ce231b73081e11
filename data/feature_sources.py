"""Where each video's published feature file is: folders, single files, .npz files holding many videos.

A *source* is one `--features` argument of `claws import-features`: a folder (searched at any
depth) or a single file. Inside a source a video is found by key: the file stem, or, for an
`.npz` holding one array per video, the array key. A key matches a video when it equals the id or
the id followed by one of FEATURE_SUFFIXES (`Abuse028_x264_i3d.npy` and `Normal_Videos_051_x264_C.txt`
are videos `Abuse028_x264` and `Normal_Videos_051_x264`). Per-crop files `<video>__<k>.npy` make
one entry, their crops in order. Two entries for one video inside a source are an error; across
sources the first source given wins (the others are "shadowed").

Shapes: T rows (clips or segments), D feature dim.
"""

from __future__ import annotations

import logging
import re
import zipfile
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from claws.data.text_files import open_text
from claws.data.videos import DatasetError, VideoItem, printable

logger = logging.getLogger(__name__)

# Endings that repositories append to the video name in feature file names.
FEATURE_SUFFIXES = ("_i3d", "_c3d", "_x3d", "_s3d", "_r3d", "_fc6", "_feature", "_features", "_feat",
                    "_C")
CLIP_FILE_SUFFIXES = (".npy", ".npz")  # per-clip files: one row per clip
SEGMENT_FILE_SUFFIXES = (".txt", ".csv", ".npy", ".npz")  # segment-pooled files: one row per segment
CROP_FILE = re.compile(r"^(?P<base>.+)__(?P<crop>\d+)$")  # one crop of a video: <video>__<k>.npy


class FeatureFileError(ValueError):
    """A feature file cannot be read or has the wrong shape; the message names the file."""


class FeatureEntry(NamedTuple):
    """Where one video's features are stored."""

    paths: tuple[Path, ...]  # the file, or the per-crop files in crop order
    key: str | None = None  # array key inside an .npz holding one array per video

    @property
    def where(self) -> str:
        """The file (and npz key) for messages: `feats.npz[Abuse002_x264]`."""
        return f"{self.paths[0]}[{self.key}]" if self.key is not None else str(self.paths[0])

    @property
    def format(self) -> str:
        """The file format: npy, npz, txt or csv."""
        return self.paths[0].suffix.lower().lstrip(".")


def npz_keys(path: Path) -> list[str]:
    """Array keys of an .npz without loading the arrays."""
    try:
        with zipfile.ZipFile(path) as z:
            return [n[:-4] if n.endswith(".npy") else n for n in z.namelist()]
    except (OSError, zipfile.BadZipFile) as err:
        raise DatasetError(f"{path}: not a readable .npz ({err}); replace it or remove it from "
                           "--features") from err


def _add(found: dict[str, dict[int, FeatureEntry]], key: str, crop: int, entry: FeatureEntry) -> None:
    crops = found.setdefault(key, {})
    if crop in crops or (crops and (crop == -1) != (-1 in crops)):
        other = next(iter(crops.values()))
        raise DatasetError(f"{entry.where} and {other.where} both hold video {key}; keep one of them")
    crops[crop] = entry


def _add_file(found: dict[str, dict[int, FeatureEntry]], path: Path) -> None:
    if path.suffix.lower() == ".npz":
        for key in npz_keys(path):
            _add(found, key, -1, FeatureEntry((path,), key))
        return
    m = CROP_FILE.match(path.stem) if path.suffix.lower() == ".npy" else None
    key, crop = (m["base"], int(m["crop"])) if m else (path.stem, -1)
    _add(found, printable(key), crop, FeatureEntry((path,)))  # the id claws.data.videos gives


def index_feature_files(
    source: Path, suffixes: Sequence[str] = (".npy",)
) -> dict[str, FeatureEntry]:
    """The entries of one source (a folder searched at any depth, or one file), by key.

    Args:
        source: folder or file.
        suffixes: file endings read (lower case), e.g. CLIP_FILE_SUFFIXES.

    Returns:
        key (file stem or npz array key, crop number removed) -> entry.

    Raises:
        DatasetError: the source does not exist, a single file has another ending, two files
            hold the same key, or an .npz is unreadable.
    """
    source = Path(source)
    if source.is_file():
        if source.suffix.lower() not in suffixes:
            raise DatasetError(f"--features {source}: a {source.suffix} file cannot be read here "
                               f"(expected {', '.join(suffixes)}; segment files need --segments N)")
        paths = [source]
    elif source.is_dir():
        paths = [p for p in sorted(source.rglob("*")) if p.suffix.lower() in suffixes and p.is_file()]
    else:
        raise DatasetError(f"feature source {source} does not exist; pass a folder or a file")
    found: dict[str, dict[int, FeatureEntry]] = {}
    for path in paths:
        _add_file(found, path)
    index = {}
    for key, crops in found.items():
        ordered = [crops[c] for c in sorted(crops)]
        index[key] = ordered[0] if len(ordered) == 1 else FeatureEntry(tuple(e.paths[0] for e in ordered))
    return index


def find_feature_files(index: dict[str, FeatureEntry], video_id: str) -> FeatureEntry | None:
    """The entry of one video: key equal to its id or its id plus a FEATURE_SUFFIXES ending."""
    keys = [k for k in (video_id, *(video_id + s for s in FEATURE_SUFFIXES)) if k in index]
    if len(keys) > 1:
        raise DatasetError(
            f"video {video_id}: several feature files match ({', '.join(index[k].where for k in keys)})"
        )
    return index[keys[0]] if keys else None


def locate_features(
    items: Sequence[VideoItem], sources: Sequence[Path], suffixes: Sequence[str] = CLIP_FILE_SUFFIXES
) -> tuple[dict[str, FeatureEntry], list[str]]:
    """The entry of every item, searching `sources` in priority order.

    Args:
        items: the listed videos.
        sources: `--features` folders or files; a video in several is taken from the first.
        suffixes: file endings read.

    Returns:
        (video_id -> entry, ids found in no source).
    """
    found: dict[str, FeatureEntry] = {}
    for n, source in enumerate(sources, 1):
        index = index_feature_files(source, suffixes)
        taken, shadowed = 0, []
        for item in items:
            entry = find_feature_files(index, item.video_id)
            if entry is None:
                continue
            if item.video_id in found:
                shadowed.append(item.video_id)
            else:
                found[item.video_id] = entry
                taken += 1
        logger.info("--features #%d %s: %d listed videos taken%s", n, source, taken,
                    f", {len(shadowed)} shadowed by earlier sources (e.g. {', '.join(shadowed[:3])})"
                    if shadowed else "")
    missing = [i.video_id for i in items if i.video_id not in found]
    return found, missing


def _load_error(where: str, suffix: str, err: Exception) -> FeatureFileError:
    """What to say when numpy cannot load an array; object arrays get their own explanation."""
    if "Object arrays cannot" in str(err) or "Python objects" in str(err):  # numpy's two wordings
        return FeatureFileError(
            f"{where}: an array of Python objects (a pickle), which claws does not load since a "
            "pickle can run code; save the features as a numeric (T, D) array, e.g. "
            "np.save(file, np.asarray(features, dtype=np.float32))")
    return FeatureFileError(f"{where}: unreadable .{suffix} ({err}); replace the file")


def read_array(path: Path, key: str | None = None) -> np.ndarray:
    """A numeric array from an .npy, or the array `key` of an .npz.

    Raises:
        FeatureFileError: unreadable file, missing key or non-numeric data; names file and key.
    """
    where = f"{path}[{key}]" if key is not None else str(path)
    try:
        if key is None:
            array = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as z:
                array = z[key]
    except KeyError as err:
        raise FeatureFileError(f"{where}: no such array in the .npz; check the file") from err
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise _load_error(where, path.suffix.lstrip("."), err) from err
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.number):
        raise FeatureFileError(f"{where}: not a numeric array ({getattr(array, 'dtype', type(array))})")
    return array


def _text_dim(path: Path) -> int:
    with open_text(path) as f:
        for line in f:
            fields = line.replace(",", " ").split()
            if len(fields) > 1 or (fields and not fields[0].lstrip("-").isdigit()):
                return len(fields)  # skips a CSV's one-integer width header
    raise FeatureFileError(f"{path}: no feature rows")


def peek_feature_dim(entry: FeatureEntry) -> int:
    """D_file of an entry without reading much of it (an .npy is memory-mapped)."""
    path = entry.paths[0]
    if entry.format in ("txt", "csv"):
        return _text_dim(path)
    if entry.key is None:
        try:
            return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[-1])
        except (OSError, ValueError, IndexError) as err:
            raise _load_error(str(path), "npy", err) from err
    shape = read_array(path, entry.key).shape
    if not shape:
        raise FeatureFileError(f"{entry.where}: a scalar, not a feature array")
    return int(shape[-1])
