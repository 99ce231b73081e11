"""Headless Chromium for checking the review page (tests/pipeline/test_review.py, bench/review.py).

No WebDriver, no DevTools client: the page takes its test commands from the URL hash (see the top
of review_assets/review.js) and writes the outcome into attributes of <html>, which
`--dump-dom` prints once the virtual time budget is spent.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

FLAGS = ("--headless=new", "--disable-gpu", "--no-sandbox", "--allow-file-access-from-files",
         "--autoplay-policy=no-user-gesture-required", "--hide-scrollbars", "--mute-audio")


def chromium_binary() -> str | None:
    """The Chromium executable on PATH (Debian: `chromium`), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(args: list[str], timeout_s: float) -> str:
    binary = chromium_binary()
    if binary is None:
        raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
    done = subprocess.run([binary, *FLAGS, *args], capture_output=True, text=True,
                          timeout=timeout_s, check=True)
    return done.stdout


def page_url(page: Path, fragment: str = "") -> str:
    """The file:// URL of a page, with an optional `#fragment` (test commands)."""
    return Path(page).resolve().as_uri() + (f"#{fragment}" if fragment else "")


def dump_dom(url: str, budget_ms: int = 5000, timeout_s: float = 60.0) -> str:
    """The page's DOM after `budget_ms` of virtual time (scripts, media loading and timers run)."""
    return _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", url], timeout_s)


def html_attribute(dom: str, name: str) -> str | None:
    """The value of an attribute of the <html> element in a dumped DOM, unescaped, or None."""
    tag = re.search(r"<html\b[^>]*>", dom)
    found = re.search(rf'\s{re.escape(name)}="([^"]*)"', tag.group(0)) if tag else None
    return html.unescape(found.group(1)) if found else None


def screenshot(url: str, target: Path, size: tuple[int, int] = (1280, 800),
               budget_ms: int = 8000, timeout_s: float = 60.0) -> Path:
    """Save a PNG of the page at `size` (width, height) after `budget_ms` of virtual time."""
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    _run([f"--virtual-time-budget={budget_ms}", f"--window-size={size[0]},{size[1]}",
          f"--screenshot={Path(target).resolve()}", url], timeout_s)
    return Path(target)
