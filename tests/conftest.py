"""Fixtures shared by all tests: the real data in ../shared/data, and CPU-only defaults."""

from __future__ import annotations

import os
from pathlib import Path

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked gpu when no CUDA device is present."""
    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
