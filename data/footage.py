"""Any footage: a folder of videos (optionally `normal/` and `anomalous/` subfolders), one video
file, or a CSV manifest with the header `path,label,split`.

In a folder, every video file at any depth is a video, and so is every folder holding JPEG/PNG
frames directly (a frame folder). A video under a folder named `normal` is labelled 0, under
`anomalous` (or `abnormal`) 1, otherwise -1 (unknown). Manifest paths are relative to the
manifest's folder unless absolute; label is anomalous/normal/1/0/-1 or empty, split is
train/test or empty. Video ids are file stems and must be unique.
"""

from __future__ import annotations

import logging
from pathlib import Path

from claws.data.videos import (
    FRAME_SUFFIXES, VIDEO_SUFFIXES, DatasetError, VideoItem, check_unique, manifest_rows,
    parse_split, printable, row_label_split,
)

logger = logging.getLogger(__name__)

_LABEL_FOLDERS = {"normal": 0, "anomalous": 1, "abnormal": 1, "anomaly": 1}


def _folder_label(path: Path, root: Path) -> int:
    for part in path.relative_to(root).parts[:-1]:
        if part.lower() in _LABEL_FOLDERS:
            return _LABEL_FOLDERS[part.lower()]
    return -1


def _is_frame_folder(path: Path) -> bool:
    return path.is_dir() and any(
        p.suffix.lower() in FRAME_SUFFIXES and p.is_file() for p in path.iterdir()
    )


def folder_items(root: Path, split: str = "") -> list[VideoItem]:
    """Every video file and frame folder under `root` (or `root` itself when it is one video).

    Args:
        root: a folder, a video file, or a frame folder.
        split: split recorded for every video ("train", "test" or "").

    Returns:
        Items sorted by path; an error when there is none.
    """
    root = Path(root)
    split = parse_split(split, str(root))
    if root.is_file():
        if root.suffix.lower() not in VIDEO_SUFFIXES:
            raise DatasetError(f"{root}: not a video file ({', '.join(VIDEO_SUFFIXES)})")
        return [VideoItem(root.stem, root, -1, split)]
    if not root.is_dir():
        raise DatasetError(f"footage {root} does not exist")
    if _is_frame_folder(root):
        return [VideoItem(root.name, root, -1, split, is_frame_folder=True)]
    items = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
            items.append(VideoItem(path.stem, path, _folder_label(path, root), split))
        elif _is_frame_folder(path):
            items.append(VideoItem(path.name, path, _folder_label(path, root), split,
                                   is_frame_folder=True))
    if not items:
        raise DatasetError(f"no videos or frame folders found under {root}")
    return check_unique(items, str(root))


def manifest_items(manifest: Path, allow_missing: bool = False) -> list[VideoItem]:
    """Videos of a CSV manifest `path,label,split` (header required).

    Args:
        manifest: the CSV file.
        allow_missing: skip (and log) listed paths that do not exist instead of failing.
    """
    manifest = Path(manifest)
    items, missing = [], []
    for where, row in manifest_rows(manifest, "path", "path,label,split"):
        path = Path(row["path"].strip())
        path = path if path.is_absolute() else manifest.parent / path
        if not path.exists():
            if not allow_missing:
                raise DatasetError(f"{where}: {printable(str(path))} does not exist; fix the path, "
                                   "remove the line, or skip missing videos (--allow-missing)")
            missing.append(f"{where}: {printable(str(path))}")
            continue
        items.append(VideoItem(path.stem if path.is_file() else path.name, path,
                               *row_label_split(row, where), is_frame_folder=path.is_dir()))
    if missing:
        logger.warning("%d listed videos not found, skipped: %s", len(missing),
                       "; ".join(missing[:20]))
    if not items:
        raise DatasetError(f"{manifest}: " + ("none of the listed videos exists" if missing
                                              else "no videos listed"))
    return check_unique(items, str(manifest))


def footage_items(source: Path, split: str = "", allow_missing: bool = False) -> list[VideoItem]:
    """A CSV manifest (by its .csv ending) or a folder/file of footage.

    Args:
        source: the manifest, folder, video file or frame folder.
        split: split of every video of a folder or file (a manifest names its own).
        allow_missing: skip manifest entries whose path does not exist instead of failing.
    """
    source = Path(source)
    if source.suffix.lower() == ".csv":
        return manifest_items(source, allow_missing)
    return folder_items(source, split)
