"""ShanghaiTech Campus in the weakly supervised split of Zhong et al. (CVPR 2019).

`SH_Train.txt` and `SH_Test.txt` list video names, one per line. A name with a 4-digit suffix
(`01_0014`) is a video of the ORIGINAL test set, which exists only as JPEG frame folders
`testing/frames/01_0014/000.jpg...` (per-frame masks in `testing/test_frame_mask/01_0014.npy`);
those are the anomalous videos. Other names (`01_001`) are videos of the original training set,
`training/videos/01_001.avi`, all normal. Frame folders carry no frame rate: ShanghaiTech was
recorded at 24 fps, which is what is recorded for them.
"""

from __future__ import annotations

import re
from pathlib import Path

from claws.data.videos import (
    FRAME_SUFFIXES, DatasetError, VideoItem, check_unique, index_videos, read_lines,
)

FPS = 24.0  # ShanghaiTech Campus frame rate
_NAME = re.compile(r"^\d{2}_\d{3,4}$")


def is_original_test_video(name: str) -> bool:
    """True for `SS_NNNN` (4-digit suffix): a frame folder of the original test set, anomalous."""
    return len(name.split("_")[-1]) == 4


def read_split(path: Path, split: str) -> list[VideoItem]:
    """Videos of one split file; label 1 exactly for original test-set videos."""
    items = []
    for n, line in enumerate(read_lines(path, f"ShanghaiTech {split} list"), 1):
        name = line.split(",")[0].strip()
        if not _NAME.match(name):
            raise DatasetError(f"{path}:{n}: expected a name like 01_001 or 01_0014, got {line!r}")
        anomalous = is_original_test_video(name)
        items.append(VideoItem(
            video_id=name, path=None, label=1 if anomalous else 0, split=split,
            class_name="Anomalous" if anomalous else "Normal", is_frame_folder=anomalous, fps=FPS,
        ))
    return items


def _frame_folder(root: Path, name: str) -> Path | None:
    for folder in (root / "testing" / "frames" / name, root / "frames" / name):
        if folder.is_dir() and any(p.suffix.lower() in FRAME_SUFFIXES for p in folder.iterdir()):
            return folder
    return None


def shanghaitech_items(
    root: Path | None, train_list: Path | None, test_list: Path | None
) -> tuple[list[VideoItem], list[str]]:
    """ShanghaiTech videos of the given split files, located under `root`.

    Args:
        root: the dataset root (with `training/videos` and `testing/frames`); None leaves paths unset.
        train_list: `SH_Train.txt` or None.
        test_list: `SH_Test.txt` or None.

    Returns:
        (items, ids of listed videos not found).
    """
    if train_list is None and test_list is None:
        raise DatasetError("ShanghaiTech: give a train list, a test list, or both")
    items = (read_split(train_list, "train") if train_list else []) + (
        read_split(test_list, "test") if test_list else []
    )
    check_unique(items, "ShanghaiTech lists")
    if root is None:
        return items, []
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset root {root} is not a directory")
    videos = index_videos(root / "training") if (root / "training").is_dir() else index_videos(root)
    located, missing = [], []
    for item in items:
        path = _frame_folder(root, item.video_id) if item.is_frame_folder else videos.get(item.video_id)
        if path is None:
            missing.append(item.video_id)
        else:
            located.append(item.with_path(path, item.is_frame_folder))
    return located, missing
