"""Any footage: a folder of videos (optionally `normal/` and `anomalous/` subfolders), one video
file, or a CSV manifest with the header `path,label,split`.

In a folder, every video file at any depth is a video (a file whose ending is one of
VIDEO_SUFFIXES), and so is every frame folder. A FRAME FOLDER holds at least MIN_FRAMES
JPEG/PNG images directly, nothing else (hidden files, Thumbs.db and desktop.ini aside), and no
video at any depth below it: a stray image beside videos, one lonely image, or plots beside
their data files are never a video. Whatever a search finds that is not footage is skipped and
logged, one line per file (images: one line per folder), with the reason; a warning counts them.
Paths given as `exclude` (a command's output folder and what it writes) are never read: an
excluded path that is the searched folder itself or above it does not exclude it. Folders
reached through symbolic links are searched too, each real folder once.

A video under a folder named `normal` is labelled 0, under `anomalous` (or `abnormal`) 1,
otherwise -1 (unknown). Manifest paths are relative to the manifest's folder unless absolute;
label is anomalous/normal/1/0/-1 or empty, split is train/test or empty; a manifest may name a
file of any type (FFmpeg decides) and any folder of frames. Video ids are file stems and must be
unique.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, NamedTuple

from claws.data.videos import (
    FRAME_SUFFIXES, VIDEO_SUFFIXES, DatasetError, VideoItem, check_unique, manifest_rows,
    parse_split, printable, row_label_split,
)

logger = logging.getLogger(__name__)

_LABEL_FOLDERS = {"normal": 0, "anomalous": 1, "abnormal": 1, "anomaly": 1}
MIN_FRAMES = 2  # images a frame folder holds at least: one image alone is a stray file
# Files a file manager leaves among images; they do not stop a folder being a frame folder.
SYSTEM_FILES = ("thumbs.db", "desktop.ini")


class Skipped(NamedTuple):
    """Something a folder search found that is not footage, and why it is skipped."""

    path: Path  # a file, or a folder whose images are skipped together
    reason: str


class _Found(NamedTuple):
    """What the search found in one folder and below it."""

    items: list[VideoItem]
    skipped: list[Skipped]
    has_videos: bool  # a video file in the folder or at any depth below


def _folder_label(path: Path, root: Path) -> int:
    for part in path.relative_to(root).parts[:-1]:
        if part.lower() in _LABEL_FOLDERS:
            return _LABEL_FOLDERS[part.lower()]
    return -1


def _is_excluded(path: Path, exclude: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == e or e in resolved.parents for e in exclude)


def _names(paths: list[Path], most: int = 5) -> str:
    shown = ", ".join(printable(p.name) for p in paths[:most])
    return shown + (f", ... ({len(paths)} in all)" if len(paths) > most else "")


def _frames_verdict(images: list[Path], others: list[Path], has_videos: bool) -> str | None:
    """Why a folder holding `images` is not a frame folder (None: it is one)."""
    if has_videos:
        return "a folder that holds videos (in it or below it) is not a frame folder"
    if others:
        return (f"a frame folder holds images only, this one also {_names(others, 3)}")
    if len(images) < MIN_FRAMES:
        return f"a frame folder holds at least {MIN_FRAMES} images, this one {len(images)}"
    return None


def _search(folder: Path, root: Path, split: str, exclude: list[Path], seen: set[Path]) -> _Found:
    """Footage in `folder` and below it (see the module docstring for the rules)."""
    videos, images, others, found = [], [], [], _Found([], [], False)
    try:
        entries = sorted(folder.iterdir())
    except OSError as err:
        return _Found([], [Skipped(folder, f"cannot be listed ({err.strerror or err})")], False)
    for path in entries:
        if _is_excluded(path, exclude):
            continue
        if path.is_dir():
            real = path.resolve()
            if real in seen:
                found.skipped.append(Skipped(path, f"a link to {printable(str(real))}, searched "
                                                   "already (a loop or a second way in)"))
                continue
            seen.add(real)
            below = _search(path, root, split, exclude, seen)
            found.items.extend(below.items)
            found.skipped.extend(below.skipped)
            found = found._replace(has_videos=found.has_videos or below.has_videos)
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            videos.append(path)
        elif path.suffix.lower() in FRAME_SUFFIXES:
            images.append(path)
        elif path.name.startswith(".") or path.name.lower() in SYSTEM_FILES:
            found.skipped.append(Skipped(path, "a hidden or system file, not a video"))
        else:
            others.append(path)
    has_videos = found.has_videos or bool(videos)
    for path in videos:
        found.items.append(VideoItem(path.stem, path, _folder_label(path, root), split))
    if images:
        why = _frames_verdict(images, others, has_videos)
        if why is None:
            found.items.append(VideoItem(folder.name, folder, _folder_label(folder, root), split,
                                         is_frame_folder=True))
        else:
            count = f"{len(images)} image{'s' if len(images) > 1 else ''}"
            found.skipped.append(Skipped(folder, f"its {count} ({_names(images)}) not "
                                                 f"read: {why}"))
    for path in others:
        found.skipped.append(Skipped(path, f"not a video: {path.suffix or 'no'} ending is not one "
                                           "of the video types"))
    return found._replace(has_videos=has_videos)


def log_skipped(skipped: list[Skipped], where: str) -> None:
    """One line per skipped path with its reason, and a warning that counts them."""
    for entry in skipped:
        logger.info("skipped %s: %s", printable(str(entry.path)), entry.reason)
    if skipped:
        logger.warning("%d files or folders under %s are not footage and were skipped (each is "
                       "named in a 'skipped' line above)", len(skipped), where)


def folder_items(root: Path, split: str = "", exclude: Iterable[Path] = ()) -> list[VideoItem]:
    """Every video file and frame folder under `root` (or `root` itself when it is one video).

    Args:
        root: a folder, a video file, or a frame folder.
        split: split recorded for every video ("train", "test" or "").
        exclude: paths never read (output folders and files); one that is `root` or above it
            is ignored.

    Returns:
        Items sorted by path; an error when there is none.
    """
    root = Path(root)
    split = parse_split(split, str(root))
    if root.is_file():
        if root.suffix.lower() not in VIDEO_SUFFIXES:
            raise DatasetError(f"{root}: not a video file ({root.suffix or 'no'} ending is not "
                               "one of the video types, README 'Containers'); name it in a CSV "
                               "manifest to try it anyway")
        return [VideoItem(root.stem, root, -1, split)]
    if not root.is_dir():
        raise DatasetError(f"footage {root} does not exist")
    real = root.resolve()
    resolved = (Path(p).resolve() for p in exclude)
    excluded = [e for e in resolved if not (e == real or e in real.parents)]
    found = _search(root, root, split, excluded, {real})
    log_skipped(found.skipped, str(root))
    if not found.items:
        raise DatasetError(f"no videos or frame folders found under {root}")
    return check_unique(sorted(found.items, key=lambda i: i.path), str(root))


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


def footage_items(
    source: Path, split: str = "", allow_missing: bool = False, exclude: Iterable[Path] = ()
) -> list[VideoItem]:
    """A CSV manifest (by its .csv ending) or a folder/file of footage.

    Args:
        source: the manifest, folder, video file or frame folder.
        split: split of every video of a folder or file (a manifest names its own).
        allow_missing: skip manifest entries whose path does not exist instead of failing.
        exclude: paths a folder search never reads (the command's outputs; `folder_items`).
    """
    source = Path(source)
    if source.suffix.lower() == ".csv":
        return manifest_items(source, allow_missing)
    return folder_items(source, split, exclude)
