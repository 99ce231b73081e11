"""The Dockerfile's structure (issue 23): dependencies installed in their own layer before any source
is copied, no editable install, no pip cache, only the package's folders copied, an unprivileged
user, and the torch pin the Makefile uses. Building the image is docker/build_check.py's job (it
downloads gigabytes), not a test's."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The files that decide the dependencies; anything else copied before they are installed would
# make a code edit reinstall them.
DEPENDENCY_FILES = {"setup.cfg", "pyproject.toml", "Makefile"}
PACKAGE_FOLDERS = {"data", "extract", "model", "pipeline"}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, runs of white space made
    one space and comments dropped (a comment line inside a continued instruction too, as Docker
    does)."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(words[0].upper(), " ".join(words[1:])) for line in joined.splitlines() if (words := line.split())]


def copy_sources(arguments: str) -> list[str]:
    """The sources of a COPY (its options and destination left out)."""
    words = [w for w in shlex.split(arguments) if not w.startswith("--")]
    return words[:-1]


def dependency_step(steps: list[tuple[str, str]]) -> int:
    """The index of the RUN that installs torch."""
    runs = [i for i, (name, args) in enumerate(steps) if name == "RUN" and "TORCH_SPEC" in args]
    assert len(runs) == 1, f"expected one RUN installing $TORCH_SPEC, found {len(runs)}"
    return runs[0]


@pytest.fixture(scope="module")
def steps() -> list[tuple[str, str]]:
    return instructions((ROOT / "Dockerfile").read_text())


def test_instructions_join_continuations_and_drop_comments() -> None:
    text = "FROM x\n# note\nRUN a \\\n    && b \\\n# inside\n    && c\nUSER me\n"
    assert instructions(text) == [("FROM", "x"), ("RUN", "a && b && c"), ("USER", "me")]


def test_dependencies_are_installed_before_the_source_is_copied(steps) -> None:
    install = dependency_step(steps)
    before = [s for name, args in steps[:install] if name in {"COPY", "ADD"} for s in copy_sources(args)]
    assert {Path(s).name for s in before} <= DEPENDENCY_FILES, \
        f"copied before the dependency layer: {sorted(set(before) - DEPENDENCY_FILES)}"
    after = {Path(s).name for name, args in steps[install:] if name == "COPY" for s in copy_sources(args)}
    assert PACKAGE_FOLDERS <= after, f"package folders never copied: {sorted(PACKAGE_FOLDERS - after)}"


def test_the_runtime_image_holds_no_tests_benchmarks_or_whole_tree(steps) -> None:
    sources = {s.rstrip("/") for name, args in steps if name in {"COPY", "ADD"} for s in copy_sources(args)}
    assert not sources & {".", "tests", "bench", "docs", "docker"}, sorted(sources)


def test_no_editable_install_and_no_pip_cache(steps) -> None:
    pip_installs = [part for name, args in steps if name == "RUN"
                    for part in re.split(r"&&|;", args) if re.search(r"\bpip3? install\b", part)]
    assert len(pip_installs) >= 2
    for command in pip_installs:
        assert not re.search(r"\s(-e|--editable)\b", command), f"editable install: {command.strip()}"
        assert "--no-cache-dir" in command, f"pip keeps its download cache: {command.strip()}"


def test_the_package_is_installed_after_its_sources_are_copied(steps) -> None:
    last_copy = max(i for i, (name, _) in enumerate(steps) if name == "COPY")
    assert any(name == "RUN" and re.search(r"\bpip install\b", args) for name, args in steps[last_copy:])


def test_an_unprivileged_user_runs_the_commands(steps) -> None:
    users = [args.strip() for name, args in steps if name == "USER"]
    assert users, "no USER: every command runs as root and writes root-owned files"
    assert users[-1].split(":")[0] not in {"root", "0"}, users[-1]
    created = " ".join(args for name, args in steps if name == "RUN" and "useradd" in args)
    assert re.search(rf"useradd\b.*\s{re.escape(users[-1].split(':')[0])}\b", created), \
        f"USER {users[-1]} is never created"
    entrypoint = max(i for i, (name, _) in enumerate(steps) if name == "ENTRYPOINT")
    assert max(i for i, (name, _) in enumerate(steps) if name == "USER") < entrypoint


def test_torch_spec_default_is_the_makefiles_pin(steps) -> None:
    makefile = re.search(r"^TORCH_SPEC \?= (.+)$", (ROOT / "Makefile").read_text(), re.M)
    args = [shlex.split(args)[0] for name, args in steps if name == "ARG" and args.startswith("TORCH_SPEC=")]
    assert makefile and args, "TORCH_SPEC missing from the Makefile or the Dockerfile"
    assert args[0] == f"TORCH_SPEC={makefile.group(1).strip()}"


def test_the_build_context_leaves_out_the_venv_and_git() -> None:
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert "*" in rules or {".venv", ".git"} <= set(rules)
    assert not {"!.venv", "!.git", "!tests", "!bench"} & set(rules)
