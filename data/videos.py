"""The common description of one input video, whatever dataset it comes from.

A dataset adapter (UCF-Crime, ShanghaiTech, a plain folder or manifest) turns what is on disk
into a list of `VideoItem`s; the extraction engine only ever sees these. A video is either a
file (decoded with PyAV) or a folder of JPEG/PNG frames (`is_frame_folder`).

File names are bytes. Python gives the bytes of a name that are not UTF-8 as lone surrogates
(os.fsdecode), which UTF-8 text, JSON and HDF5 cannot hold; list files and manifests are read the
same way, so a listed name still matches its file byte for byte. A video's id and every recorded
path spell such bytes as backslash escapes (`printable`): `caf\\xe9` for the Latin-1 `café`.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from claws.data.text_files import open_text, read_text

logger = logging.getLogger(__name__)

# File endings taken for videos in a folder search. FFmpeg picks its demuxer by a file's content,
# not its name, so the list only says which files to try: every container kind people record
# or export video in that PyAV's FFmpeg reads (tests/extract/test_video.py writes and decodes
# each, .dav aside, which FFmpeg reads but cannot write). Probing every file instead would take
# images (one frame each) and text (FFmpeg's tty demuxer) for videos. A file of another ending
# is skipped with a log line; a manifest may name it.
VIDEO_SUFFIXES = (
    ".mp4", ".m4v", ".mov", ".qt", ".3gp", ".3g2", ".mj2", ".f4v",  # ISO / QuickTime
    ".avi", ".divx", ".mkv", ".webm", ".flv", ".wmv", ".asf", ".dvr-ms", ".wtv",
    ".mpg", ".mpeg", ".mpe", ".m1v", ".m2v", ".vob",  # MPEG program and elementary streams
    ".ts", ".m2ts", ".mts", ".m2t",  # MPEG transport streams: recorders, camcorders, broadcast
    ".ogv", ".ogg", ".ogm", ".dv", ".mxf", ".nut", ".y4m", ".ivf", ".rm", ".rmvb",
    ".h264", ".264", ".h265", ".265", ".hevc", ".mjpeg", ".mjpg",  # raw streams of cameras
    ".dav",  # Dahua surveillance recorders
)
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
LABELS = {"anomalous": 1, "abnormal": 1, "anomaly": 1, "1": 1, "normal": 0, "0": 0, "": -1,
          "unknown": -1, "-1": -1}
SPLITS = ("train", "test", "")
# Bytes of a file stem made from a video id (`file_stem`): NAME_MAX (255 on Linux and macOS) less
# room for a suffix (".events.json", 12) and a temporary name's ".", ".tmp" and pid (12 more).
NAME_BYTES = 200


class DatasetError(ValueError):
    """A list file, annotation or dataset root is missing or malformed; the message names it."""


@dataclass(frozen=True)
class VideoItem:
    """One video to extract, with what its dataset says about it."""

    video_id: str  # unique name, no '/': the file stem or frame-folder name
    path: Path | None  # video file or frame folder; None until located under a root
    label: int = -1  # 1 anomalous, 0 normal, -1 unknown
    split: str = ""  # "train", "test" or "" (unknown)
    class_name: str = ""  # e.g. the UCF-Crime class; "Normal" for normal videos
    is_frame_folder: bool = False  # path is a folder of JPEG/PNG frames
    fps: float = 0.0  # frame rate to record when the source has none (frame folders); 0 = ask it

    def __post_init__(self) -> None:
        object.__setattr__(self, "video_id", printable(self.video_id))

    def with_path(self, path: Path, is_frame_folder: bool | None = None) -> "VideoItem":
        """A copy located at `path`."""
        folder = path.is_dir() if is_frame_folder is None else is_frame_folder
        return replace(self, path=Path(path), is_frame_folder=folder)


def printable(text: str) -> str:
    """`text` with the undecodable bytes of a file name (os.fsdecode's surrogates) as \\xNN.

    The result can be logged and written to UTF-8 text, JSON and HDF5; the file itself is still
    opened by its real name.
    """
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def file_stem(video_id: str) -> str:
    """The stem of the files named after a video (work files, curves, plots, previews).

    The id itself when its UTF-8 form has at most NAME_BYTES bytes; a longer id becomes its
    first bytes (whole characters), `~` and 16 hex digits of its sha256, NAME_BYTES bytes at
    most. Such a name plus a suffix and a temporary name's decoration (`.<stem>.tmp<pid>`)
    stays under the 255 bytes file systems allow a name; the full id is kept inside each file.
    """
    raw = video_id.encode("utf-8", "surrogateescape")
    if len(raw) <= NAME_BYTES:
        return video_id
    digest = hashlib.sha256(raw).hexdigest()[:16]
    head = raw[:NAME_BYTES - len(digest) - 1].decode("utf-8", "ignore")
    return f"{head}~{digest}"


def parse_label(text: str, where: str) -> int:
    """A label word or number (anomalous/normal/1/0/-1/empty) as 1, 0 or -1."""
    key = text.strip().lower()
    if key not in LABELS:
        raise DatasetError(f"{where}: label {text!r} is not one of anomalous, normal, 1, 0, -1")
    return LABELS[key]


def parse_split(text: str, where: str) -> str:
    """A split name (train/test/empty), validated."""
    split = text.strip().lower()
    if split not in SPLITS:
        raise DatasetError(f"{where}: split {text!r} is not 'train', 'test' or empty")
    return split


def read_lines(path: Path, what: str) -> list[str]:
    """Non-empty stripped lines of a list file; a clear error when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{what} {path} does not exist; pass the right file")
    return [line.strip() for line in read_text(path).splitlines() if line.strip()]


def manifest_rows(path: Path, key: str, header: str) -> Iterator[tuple[str, dict[str, str]]]:
    """(where, row) of a CSV manifest whose header must name column `key`; `where` is file:line.

    Args:
        path: the CSV file.
        key: the column every row needs (e.g. "path" or "video").
        header: the expected header, quoted in the error message.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"manifest {path} does not exist")
    with open_text(path) as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or key not in reader.fieldnames:
            raise DatasetError(f"{path}: needs a header line '{header}'")
        for n, row in enumerate(reader, 2):
            yield f"{path}:{n}", row


def row_label_split(row: dict[str, str], where: str) -> tuple[int, str]:
    """The label and split columns of a manifest row (both optional)."""
    return parse_label(row.get("label") or "", where), parse_split(row.get("split") or "", where)


def source_size(path: Path) -> int:
    """Bytes of a video file, or the sum over a frame folder's files."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    return path.stat().st_size


def source_stamp(paths: Path | Sequence[Path]) -> dict[str, str | int]:
    """What identifies the bytes a video's features were made from, cheaply (no reading).

    Args:
        paths: a video file, a frame folder, or several files making one video (per-crop
            feature files).

    Returns:
        source_path (the first path, resolved, `printable`), source_size (bytes, summed) and
        source_mtime_ns
        (the newest modification time; of a frame folder: of the folder and its files).
    """
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    mtimes = []
    for path in paths:
        mtimes.append(path.stat().st_mtime_ns)
        if path.is_dir():
            mtimes += [p.stat().st_mtime_ns for p in path.iterdir() if p.is_file()]
    return {"source_path": printable(str(paths[0].resolve())),
            "source_size": sum(map(source_size, paths)),
            "source_mtime_ns": max(mtimes)}


def index_videos(root: Path, suffixes: tuple[str, ...] = VIDEO_SUFFIXES) -> dict[str, Path]:
    """Video files anywhere under `root`, by stem (downloads differ in folder names).

    Args:
        root: dataset root to search recursively.
        suffixes: file endings counted as videos (case-insensitive).

    Returns:
        printable stem (the video id) -> path; when a stem appears twice the first in sorted
        order wins (logged).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset root {root} is not a directory")
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in suffixes and path.is_file():
            stem = printable(path.stem)
            if stem in found:
                logger.warning("%s: duplicate of %s, ignored", printable(str(path)),
                               printable(str(found[stem])))
                continue
            found[stem] = path
    return found


def locate(items: Iterable[VideoItem], index: dict[str, Path]) -> tuple[list[VideoItem], list[str]]:
    """Give each item the path of its video in `index`.

    Returns:
        (located items, ids of the videos not found).
    """
    located, missing = [], []
    for item in items:
        path = index.get(item.video_id)
        if path is None:
            missing.append(item.video_id)
        else:
            located.append(item.with_path(path))
    return located, missing


def check_unique(items: list[VideoItem], where: str) -> list[VideoItem]:
    """Fail when two items share a video id (their features would collide in a shard)."""
    seen: dict[str, VideoItem] = {}
    for item in items:
        if item.video_id in seen:
            raise DatasetError(f"{where}: video id {item.video_id} appears twice")
        seen[item.video_id] = item
    return items
