"""Every `claws ...` command written in README.md and the Dockerfile names a sub-command that exists
and only options that sub-command accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from claws.pipeline.cli import build_parser, main, subcommands

ROOT = Path(__file__).resolve().parents[1]
# README: a line that starts with the command (in a code block, or after a `$ ` prompt).
# Dockerfile: the command after the image name of a `docker run ... claws ...` example.
PATTERNS = {
    "README.md": r"^\s*(?:\$\s+)?claws\s+(.*)$",
    "Dockerfile": r"^#?\s*docker run\b.*?\sclaws\s+(.*)$",
}


def claws_commands(path: Path, pattern: str) -> list[str]:
    """The arguments of every `claws` command in a file, backslash-continued lines joined (in a
    Dockerfile comment the continued line starts with `#` too)."""
    text = re.sub(r"\\\n#?", " ", path.read_text())
    return [m.group(1) for line in text.splitlines() if (m := re.match(pattern, line))]


COMMANDS = [(name, args) for name, pattern in PATTERNS.items()
            for args in claws_commands(ROOT / name, pattern)]


def test_the_files_hold_commands() -> None:
    files = [name for name, _ in COMMANDS]
    assert files.count("README.md") >= 15 and files.count("Dockerfile") == 1


@pytest.mark.parametrize("source, args", COMMANDS, ids=[f"{n}: claws {a[:60]}" for n, a in COMMANDS])
def test_command_exists_and_takes_its_options(capsys: pytest.CaptureFixture, source: str,
                                              args: str) -> None:
    # Placeholders stay as written: `[--json]` is an optional flag; `VIDEO...`, `...` are no options.
    words = [w.strip("[]") for w in shlex.split(args, comments=True)]
    parser, path = build_parser(), []
    while (action := subcommands(parser)) is not None:
        name = words[len(path)] if len(path) < len(words) else "(none)"
        assert name in action.choices, f"{source}: `claws {args}`: no sub-command {name!r}"
        path.append(name)
        parser = action.choices[name]
    options = parser._option_string_actions
    unknown = [w for w in words if w.startswith("--") and w.split("=")[0] not in options]
    assert not unknown, f"{source}: `claws {args}`: claws {' '.join(path)} has no {', '.join(unknown)}"
    with pytest.raises(SystemExit) as exit_info:
        main([*path, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: claws {' '.join(path)} ")
