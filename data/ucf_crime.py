"""UCF-Crime as it is on disk (Sultani et al., CVPR 2018): videos anywhere under a root.

Downloads differ in folder names, so videos are found by file name anywhere under the root.
The train list `Anomaly_Train.txt` has lines `Class/name.mp4`; the test videos come from the
temporal annotation file, either Sultani's `name.mp4  Class  s1  e1  s2  e2` or the variant with
a path and frame count `Class/name.mp4 NUM_FRAMES Class s1 e1 s2 e2` (frames 1-based inclusive,
-1 = none; the intervals themselves are read by the annotation module, not here).
A class of `Normal`, `Training_Normal_Videos_Anomaly`, `Testing_Normal_Videos_Anomaly` or
`Normal_Videos_event` means a normal video.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path, PurePosixPath

from claws.data.videos import DatasetError, VideoItem, check_unique, index_videos, locate, read_lines

NORMAL_CLASSES = (
    "Normal", "Training_Normal_Videos_Anomaly", "Testing_Normal_Videos_Anomaly",
    "Normal_Videos_event",
)
FPS = 30.0  # UCF-Crime videos are 30 fps (official ReadMe); decoding reads the real rate


def _item(relpath: str, class_name: str, split: str) -> VideoItem:
    name = PurePosixPath(relpath.replace("\\", "/")).stem
    normal = class_name in NORMAL_CLASSES
    return VideoItem(
        video_id=name, path=None, label=0 if normal else 1, split=split,
        class_name="Normal" if normal else class_name,
    )


def read_train_list(path: Path) -> list[VideoItem]:
    """Training videos from `Anomaly_Train.txt` (`Class/name.mp4` per line)."""
    items = []
    for n, line in enumerate(read_lines(path, "UCF-Crime train list"), 1):
        rel = line.split()[0]
        parts = PurePosixPath(rel).parts
        if len(parts) < 2:
            raise DatasetError(f"{path}:{n}: expected 'Class/name.mp4', got {line!r}")
        items.append(_item(rel, parts[-2], "train"))
    return items


def read_test_annotation(path: Path) -> list[VideoItem]:
    """Test videos from the temporal annotation file (either of its two published layouts)."""
    items = []
    for n, line in enumerate(read_lines(path, "UCF-Crime test annotation"), 1):
        fields = line.split()
        # 'name.mp4 Class s1 e1 s2 e2' or 'Class/name.mp4 NUM_FRAMES Class s1 e1 s2 e2'
        class_at = 2 if len(fields) > 2 and fields[1].isdigit() else 1
        if len(fields) < class_at + 5:
            raise DatasetError(
                f"{path}:{n}: expected 'name.mp4 Class s1 e1 s2 e2', got {line!r}"
            )
        items.append(_item(fields[0], fields[class_at], "test"))
    return items


def ucf_crime_items(
    root: Path | None, train_list: Path | None, test_annotation: Path | None
) -> tuple[list[VideoItem], list[str]]:
    """UCF-Crime videos of the given lists, located under `root`.

    Args:
        root: folder holding the videos at any depth; None leaves paths unset (feature import).
        train_list: `Anomaly_Train.txt`, or None for no training videos.
        test_annotation: `Temporal_Anomaly_Annotation.txt` (or `Test_Annotation.txt`), or None.

    Returns:
        (items, ids of listed videos not found under root).
    """
    if train_list is None and test_annotation is None:
        raise DatasetError("UCF-Crime: give a train list, a test annotation file, or both")
    items = (read_train_list(train_list) if train_list else []) + (
        read_test_annotation(test_annotation) if test_annotation else []
    )
    items = [replace(i, fps=FPS) for i in check_unique(items, "UCF-Crime lists")]
    if root is None:
        return items, []
    return locate(items, index_videos(root))

