"""The house rules of the code base, checked on the source: imports flow one way, commands stay
apart from library code, library code takes typed arguments, and every module has its tests.

Layers, bottom to top: data/ (numpy and h5py only), model/ (torch), extract/ (data/, torch and
the decoders), pipeline/ (everything). A command module (one per `claws` verb, listed in
claws.pipeline.cli.COMMANDS) is imported by the dispatcher only; library modules never import one.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from claws.pipeline.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("data", "extract", "model", "pipeline")
# What each package may import from the project.
ALLOWED = {"data": {"data"}, "model": {"model"}, "extract": {"data", "extract"},
           "pipeline": {"data", "extract", "model", "pipeline"}}
DATA_THIRD_PARTY = {"numpy", "h5py"}
# Modules whose tests live under another name: module -> test files that exercise it.
COVERED_BY = {
    "data/footage.py": ["tests/data/test_datasets.py"],
    "data/shanghaitech.py": ["tests/data/test_datasets.py"],
    "data/ucf_crime.py": ["tests/data/test_datasets.py"],
    "data/videos.py": ["tests/data/test_datasets.py"],
    "pipeline/curve_files.py": ["tests/pipeline/test_scoring.py"],
    "pipeline/fake_scores.py": ["tests/pipeline/test_review_site.py"],
    "pipeline/review_browser.py": ["tests/pipeline/test_review_site.py"],
    "pipeline/review_video.py": ["tests/pipeline/test_review_site.py"],
    "pipeline/report.py": ["tests/pipeline/test_evaluation.py"],
    "pipeline/options.py": ["tests/pipeline/test_cli.py"],
    # commands: their parsers in test_cli.py, their runs through the CLI in the job's tests
    "pipeline/score.py": ["tests/pipeline/test_cli.py", "tests/pipeline/test_scoring.py"],
    "pipeline/evaluate.py": ["tests/pipeline/test_cli.py", "tests/pipeline/test_evaluation.py"],
    "pipeline/review.py": ["tests/pipeline/test_review_site.py"],
    "pipeline/shards.py": ["tests/pipeline/test_cli.py", "tests/pipeline/test_extract.py"],
    "pipeline/train.py": ["tests/pipeline/test_cli.py", "tests/pipeline/test_training.py"],
    "pipeline/training_data.py": ["tests/pipeline/test_training.py"],
}


def modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).glob("*.py") if p.name != "__init__.py")


def imported(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside functions (absolute names)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module in {f"claws.{p}" for p in PACKAGES}:  # from claws.pipeline import x
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", modules(), ids=rel)
def test_imports_flow_down(path: Path) -> None:
    package = path.parent.name
    project = {n.split(".")[1] for n in imported(path) if n.startswith("claws.") and n.count(".") >= 1}
    assert project <= ALLOWED[package], f"{rel(path)} imports {sorted(project - ALLOWED[package])}"
    if package == "data":
        third = {n.split(".")[0] for n in imported(path)} - {"claws"} - set(sys.stdlib_module_names)
        assert third <= DATA_THIRD_PARTY, f"{rel(path)} imports {sorted(third)}"


def test_library_modules_never_import_a_command_module() -> None:
    commands = {f"claws.pipeline.{name}" for name in COMMANDS}
    offenders = {}
    for path in (ROOT / "pipeline").glob("*.py"):
        if path.stem in COMMANDS or path.stem == "cli":
            continue
        hits = imported(path) & commands
        if hits:
            offenders[rel(path)] = sorted(hits)
    assert not offenders, offenders


def test_commands_import_no_other_command() -> None:
    """A command imports library modules; only the dispatcher (cli.py) knows the commands
    (the demo runs the other commands through the dispatcher, as a user would)."""
    commands = {f"claws.pipeline.{name}" for name in COMMANDS}
    for name in COMMANDS:
        path = ROOT / "pipeline" / f"{name}.py"
        others = imported(path) & (commands - {f"claws.pipeline.{name}"})
        assert not others, f"{rel(path)} imports the commands {sorted(others)}"


def test_no_namespace_is_built_outside_the_cli() -> None:
    built = [f"{rel(p)}:{n.lineno}" for p in modules() for n in ast.walk(ast.parse(p.read_text()))
             if isinstance(n, ast.Call) and ast.unparse(n.func).endswith("argparse.Namespace")]
    assert not built, built


@pytest.mark.parametrize("path", [p for p in modules() if p.parent.name != "pipeline"
                                  or p.stem not in (*COMMANDS, "cli")], ids=rel)
def test_library_functions_take_no_namespace(path: Path) -> None:
    """Library modules take typed arguments; parsed command lines stay in the commands."""
    assert "argparse.Namespace" not in path.read_text(), rel(path)


@pytest.mark.parametrize("path", modules(), ids=rel)
def test_every_module_has_tests(path: Path) -> None:
    own = ROOT / "tests" / path.parent.name / f"test_{path.name}"
    if own.is_file():
        return
    covering = COVERED_BY.get(rel(path))
    assert covering, f"{rel(path)} has no {rel(own)} and no entry in COVERED_BY"
    for test in covering:
        text = (ROOT / test).read_text()
        names = [f"claws.{path.parent.name}.{path.stem}", f"import {path.stem}", f" {path.stem}."]
        if path.parent.name == "pipeline" and path.stem in COMMANDS:  # run as `claws <verb>`
            names.append(f'"{path.stem.replace("_", "-")}"')
        assert any(n in text for n in names), f"{test} does not mention {rel(path)}"
