"""Fixtures shared by all tests: the real data in ../shared/data, and CPU-only defaults."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest

# ../shared/data beside the repository (as laid out for developers and CI); override with
# CLAWS_SHARED_DATA. Tests that need it skip with the reason when it is absent.
SHARED_DATA = Path(
    os.environ.get("CLAWS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


class SharedPath(type(Path())):
    """A path under the shared data whose `/` skips the test when the joined path is missing.

    A data folder that exists but lacks one file skips only the tests that need that file, each
    naming it, instead of failing them.
    """

    def __truediv__(self, key: str) -> "SharedPath":
        path = super().__truediv__(key)
        if not path.exists():
            pytest.skip(f"real test data file missing: {path} (see SOURCES.md of the shared data)")
        return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data (real annotations, splits, mean cube, features, videos)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (set CLAWS_SHARED_DATA)")
    return SharedPath(SHARED_DATA)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A fresh 4 MB tmpfs for out-of-space and read-only cases, unmounted afterwards.

    Mounting needs root (CI containers, the development machine); elsewhere the test skips and
    says why.
    """
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                              capture_output=True, text=True)
    except OSError as err:
        pytest.skip(f"cannot mount a tmpfs here ({err})")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def fill_disk() -> Callable[[Path], Path]:
    """A function that fills the file system holding a folder (a `tmpfs`) with a ballast file,
    written until the disk refuses more, and returns that file (delete it to free the space)."""

    def fill(folder: Path) -> Path:
        ballast = Path(folder) / "ballast"
        with open(ballast, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        return ballast

    return fill


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked gpu when no CUDA device is present."""
    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture
def with_bom() -> Callable[[Path, str], Path]:
    """Writes a text file as Excel and Notepad save UTF-8: the byte-order mark, then the text."""

    def write(path: Path, text: str) -> Path:
        path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
        return path

    return write
