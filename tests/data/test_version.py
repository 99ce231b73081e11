"""The one version function: the package version alone, or with the git commit of the source."""

from __future__ import annotations

import re
import subprocess
from importlib import metadata

import pytest

from claws.data.version import code_version

PACKAGE = metadata.version("claws-vad")


def test_without_commit_is_the_installed_package_version() -> None:
    assert code_version(commit=False) == PACKAGE  # `claws --version`, shards' claws_version


def test_with_commit_names_the_commit_and_a_dirty_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"rev-parse": "0123456789ab\n", "status": " M data/x.py\n"}

    def run(argv, **kwargs):
        return subprocess.CompletedProcess(argv, 0, stdout=answers[argv[1]], stderr="")

    monkeypatch.setattr(subprocess, "run", run)
    assert code_version() == f"{PACKAGE}+git0123456789ab-dirty"
    answers["status"] = ""
    assert code_version() == f"{PACKAGE}+git0123456789ab"


def test_without_git_it_is_the_package_version(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(argv, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", run)
    assert code_version() == PACKAGE


def test_this_checkout() -> None:
    assert re.fullmatch(rf"{re.escape(PACKAGE)}(\+git[0-9a-f]{{12}}(-dirty)?)?", code_version())
