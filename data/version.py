"""The version of this code, recorded in every shard and checkpoint it writes.

Low in the tree (standard library only) so that every folder may record it and the command-line
parser may print it (`claws --version`) without importing anything heavy.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

PACKAGE = "claws-vad"  # the distribution name in setup.cfg


def code_version(commit: bool = True) -> str:
    """The installed package version, plus the git commit of the source tree when asked for.

    Args:
        commit: append `+git<commit>[-dirty]` when the source tree is a git checkout (checkpoints
            record it); False gives the package version alone (`claws --version`, the extractor
            dict and `created_by` of shards).

    Returns:
        "<package version>+git<commit>[-dirty]" or "<package version>" ("unknown" when the
        package is not installed).
    """
    from importlib import metadata  # not at the top: importing it costs as much as the help

    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        version = "unknown"
    if not commit:
        return version
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
            text=True, timeout=10, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version}+git{sha}{'-dirty' if dirty else ''}"
