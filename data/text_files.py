"""How claws reads the text files a user gives: lists, manifests, annotations, CSVs, YAML configs.

UTF-8 with or without a byte-order mark ("utf-8-sig": Excel's "CSV UTF-8" and Windows Notepad
write one, and left in place it becomes part of the first header or video name). Bytes that are
not UTF-8 are kept as os.fsdecode keeps them in file names ("surrogateescape"), so a listed name
still matches its file on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

ENCODING = "utf-8-sig"  # UTF-8; a leading byte-order mark is dropped
ERRORS = "surrogateescape"  # bytes that are not UTF-8 as os.fsdecode gives them


def read_text(path: Path) -> str:
    """The whole text of a user's file, without a byte-order mark."""
    return Path(path).read_text(encoding=ENCODING, errors=ERRORS)


def open_text(path: Path) -> TextIO:
    """A user's text file opened for the csv module (newline="" as it asks), without a BOM."""
    return Path(path).open(newline="", encoding=ENCODING, errors=ERRORS)
