"""The house rules of the code base, checked on the source: imports flow one way, commands stay
apart from library code, library code takes typed arguments, and every module has its tests.

Layers, bottom to top: data/ (numpy and h5py only), model/ (torch), extract/ (data/, torch and
the decoders), pipeline/ (everything). Inside pipeline/, one folder per job, bottom to top:
training/ < scoring/ < watching/ < evaluation/ < review/; a job folder imports the shared modules
at the top of pipeline/ (lock, interrupt, options, metrics) and job folders below it, never one
above. The verbs live in pipeline/commands/ (listed in claws.pipeline.cli.COMMANDS): the dispatcher
imports them, library modules never do, and no command imports another. The scoring job reads one
way: job -> inputs -> curve -> events/files.

    python tests/test_layout.py               # prints pipeline/'s modules, rooms and import arrows
    python tests/test_layout.py --write-help  # records `claws --help` of every command (cli_help.txt)
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import sys
from pathlib import Path

import pytest

from claws.pipeline.cli import COMMANDS, build_parser, subcommands

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("data", "extract", "model", "pipeline")
# What each package may import from the project.
ALLOWED = {"data": {"data"}, "model": {"model"}, "extract": {"data", "extract"},
           "pipeline": {"data", "extract", "model", "pipeline"}}
DATA_THIRD_PARTY = {"numpy", "h5py"}
# Job folders of pipeline/, bottom to top: each may import those before it, never those after.
JOB_ROOMS = ("training", "scoring", "watching", "evaluation", "review")
# Modules at the top of pipeline/ that every job shares; they import no job folder and no command.
SHARED = ("lock", "interrupt", "options", "metrics")
# Inside scoring/: who may import whom (the job calls each step once per video, one way down).
SCORING_ARROWS = {
    "job": {"inputs", "curve", "events", "files"},
    "inputs": {"curve"},
    "curve": set(),
    "events": set(),
    "files": {"curve", "events", "plots"},
    "plots": {"events"},
}
# Modules whose tests live under another name: module -> test files that exercise it.
COVERED_BY = {
    "data/footage.py": ["tests/data/test_datasets.py"],
    "data/shanghaitech.py": ["tests/data/test_datasets.py"],
    "data/ucf_crime.py": ["tests/data/test_datasets.py"],
    "data/videos.py": ["tests/data/test_datasets.py"],
    "pipeline/options.py": ["tests/pipeline/test_cli.py"],
    "pipeline/training/data.py": ["tests/pipeline/test_training.py"],
    "pipeline/training/loop.py": ["tests/pipeline/test_training.py"],
    "pipeline/training/steps.py": ["tests/pipeline/test_training_steps.py"],
    "pipeline/scoring/inputs.py": ["tests/pipeline/test_curves.py"],
    "pipeline/scoring/curve.py": ["tests/pipeline/test_curves.py"],
    "pipeline/scoring/files.py": ["tests/pipeline/test_scoring.py"],
    "pipeline/scoring/job.py": ["tests/pipeline/test_scoring.py"],
    "pipeline/evaluation/job.py": ["tests/pipeline/test_evaluation.py"],
    "pipeline/evaluation/report.py": ["tests/pipeline/test_evaluation.py"],
    "pipeline/review/site.py": ["tests/pipeline/test_review_site.py"],
    "pipeline/review/video.py": ["tests/pipeline/test_review_site.py"],
    "pipeline/review/live.py": ["tests/pipeline/test_review_live.py"],
    "pipeline/review/live_site.py": ["tests/pipeline/test_review_live.py"],
    "pipeline/watching/evidence.py": ["tests/pipeline/test_evidence.py"],
    "pipeline/watching/job.py": ["tests/pipeline/test_watch.py"],
    "pipeline/watching/notify.py": ["tests/pipeline/test_notify.py"],
    "pipeline/watching/source.py": ["tests/pipeline/test_watch.py"],
    "pipeline/watching/stretch.py": ["tests/pipeline/test_watch.py"],
    # commands: their parsers in test_cli.py, their runs through the CLI in the job's tests
    "pipeline/commands/score.py": ["tests/pipeline/test_cli.py", "tests/pipeline/test_scoring.py"],
    "pipeline/commands/evaluate.py": ["tests/pipeline/test_cli.py",
                                      "tests/pipeline/test_evaluation.py"],
    "pipeline/commands/review.py": ["tests/pipeline/test_review_site.py"],
    "pipeline/commands/watch.py": ["tests/pipeline/test_cli.py", "tests/pipeline/test_watch.py"],
    "pipeline/commands/shards.py": ["tests/pipeline/test_cli.py", "tests/pipeline/test_extract.py"],
    "pipeline/commands/train.py": ["tests/pipeline/test_cli.py", "tests/pipeline/test_training.py"],
}
# Modules whose covering tests run them through a `claws` verb only (no direct import).
THROUGH_COMMAND = {"pipeline/scoring/curve.py": "score", "pipeline/scoring/inputs.py": "score"}
HELP_FILE = ROOT / "tests" / "cli_help.txt"


def modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if p.name != "__init__.py")


def module_name(path: Path) -> str:
    """claws.<package>[.<room>].<module> of a source file."""
    return ".".join(("claws", *path.relative_to(ROOT).with_suffix("").parts))


def imported(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside functions (absolute names)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module.startswith("claws."):  # from claws.pipeline.scoring import files
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def room(name: str) -> str:
    """The room of a pipeline module: its job folder, "commands", or the module's own name."""
    return name.split(".")[2]


def pipeline_arrows() -> set[tuple[str, str]]:
    """(importer, imported) pairs of modules inside pipeline/ (a folder counts as its modules)."""
    names = {module_name(p): p for p in (ROOT / "pipeline").rglob("*.py") if p.name != "__init__.py"}
    return {(a, b) for a, p in names.items() for b in imported(p) if b in names and b != a}


def upward(arrows: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """The arrows that break the room order (a job folder importing one above it, a shared module
    importing a job folder or a command, a library module importing a command)."""
    rank = {r: i for i, r in enumerate(JOB_ROOMS)}
    bad = []
    for a, b in arrows:
        ra, rb = room(a), room(b)
        if ra == rb or rb in SHARED:
            continue
        if rb == "commands" and ra != "cli" or ra in SHARED or rb == "cli" and ra != "commands":
            bad.append((a, b))
        elif ra in rank and rb in rank and rank[rb] > rank[ra]:
            bad.append((a, b))
    return sorted(bad)


@pytest.mark.parametrize("path", modules(), ids=rel)
def test_imports_flow_down(path: Path) -> None:
    package = path.relative_to(ROOT).parts[0]
    project = {n.split(".")[1] for n in imported(path) if n.startswith("claws.") and n.count(".") >= 1}
    assert project <= ALLOWED[package], f"{rel(path)} imports {sorted(project - ALLOWED[package])}"
    if package == "data":
        third = {n.split(".")[0] for n in imported(path)} - {"claws"} - set(sys.stdlib_module_names)
        assert third <= DATA_THIRD_PARTY, f"{rel(path)} imports {sorted(third)}"


def test_pipeline_is_one_folder_per_job() -> None:
    top = {p.stem for p in (ROOT / "pipeline").glob("*.py") if p.name != "__init__.py"}
    folders = {p.name for p in (ROOT / "pipeline").iterdir() if (p / "__init__.py").is_file()}
    assert top == {"cli", *SHARED}, sorted(top)
    assert folders == {"commands", *JOB_ROOMS}, sorted(folders)
    assert {p.stem for p in (ROOT / "pipeline" / "commands").glob("*.py")} - {"__init__"} == set(COMMANDS)


def test_no_import_runs_back_up() -> None:
    """Job folders import only folders below them; shared modules import no job and no command;
    only the dispatcher imports commands (by name, from COMMANDS) and only commands import it."""
    assert upward(pipeline_arrows()) == []


def test_the_rule_catches_an_arrow_back_up() -> None:
    """The check above can fail: arrows that break the order are found."""
    arrows = {("claws.pipeline.scoring.job", "claws.pipeline.review.site"),
              ("claws.pipeline.training.loop", "claws.pipeline.evaluation.job"),
              ("claws.pipeline.lock", "claws.pipeline.scoring.files"),
              ("claws.pipeline.scoring.job", "claws.pipeline.commands.score"),
              ("claws.pipeline.review.site", "claws.pipeline.scoring.files")}  # allowed
    assert len(upward(arrows)) == 4


def test_commands_import_no_other_command() -> None:
    """A command imports library modules; only the dispatcher (cli.py) knows the commands
    (the demo runs the other commands through the dispatcher, as a user would)."""
    for a, b in pipeline_arrows():
        assert not (room(a) == "commands" == room(b)), f"{a} imports the command {b}"


def test_scoring_reads_one_way() -> None:
    """job -> inputs -> curve -> events/files: no step imports the job or a step before it."""
    for a, b in pipeline_arrows():
        if room(a) == room(b) == "scoring":
            importer, step = a.split(".")[3], b.split(".")[3]
            assert step in SCORING_ARROWS[importer], f"{a} imports {b}"


@pytest.mark.parametrize("folder", ["commands", *JOB_ROOMS])
def test_every_room_says_what_it_owns(folder: str) -> None:
    doc = ast.get_docstring(ast.parse((ROOT / "pipeline" / folder / "__init__.py").read_text()))
    assert doc and doc.rstrip().endswith(".") and doc.count(". ") == 0, f"{folder}: {doc!r}"


def test_no_namespace_is_built_outside_the_cli() -> None:
    built = [f"{rel(p)}:{n.lineno}" for p in modules() for n in ast.walk(ast.parse(p.read_text()))
             if isinstance(n, ast.Call) and ast.unparse(n.func).endswith("argparse.Namespace")]
    assert not built, built


@pytest.mark.parametrize("path", [p for p in modules()
                                  if p.parent.name != "commands" and p.name != "cli.py"], ids=rel)
def test_library_functions_take_no_namespace(path: Path) -> None:
    """Library modules take typed arguments; parsed command lines stay in the commands."""
    assert "argparse.Namespace" not in path.read_text(), rel(path)


@pytest.mark.parametrize("path", modules(), ids=rel)
def test_every_module_has_tests(path: Path) -> None:
    own = ROOT / "tests" / path.relative_to(ROOT).parts[0] / f"test_{path.name}"
    if own.is_file():
        return
    covering = COVERED_BY.get(rel(path))
    assert covering, f"{rel(path)} has no {rel(own)} and no entry in COVERED_BY"
    parent = module_name(path).rsplit(".", 1)[0]
    for test in covering:
        text = (ROOT / test).read_text()
        names = [module_name(path), f"from {parent} import {path.stem}"]
        if path.parent.name == "commands":  # run as `claws <verb>`
            names.append(f'"{path.stem.replace("_", "-")}"')
        if rel(path) in THROUGH_COMMAND:
            names.append(f'"{THROUGH_COMMAND[rel(path)]}"')
        assert any(n in text for n in names), f"{test} does not mention {rel(path)}"


def help_text() -> str:
    """`claws --help` and the help of every sub-command, at a fixed width."""
    def dump(parser, prefix: list[str], out: list[str]) -> None:
        out.append(f"=== claws {' '.join(prefix)}".rstrip())
        out.append(parser.format_help())
        action = subcommands(parser)
        for name, sub in (action.choices.items() if action is not None else ()):
            dump(sub, [*prefix, name], out)

    out: list[str] = []
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            dump(build_parser(), [], out)
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(out)


def test_help_is_what_was_recorded() -> None:
    """Every command's options, defaults and words as recorded before pipeline/ was split into
    folders (issue 18: no behaviour change). Change an option on purpose, then record it again:
    `python tests/test_layout.py --write-help`."""
    assert help_text() == HELP_FILE.read_text()


def main() -> None:
    if "--write-help" in sys.argv:
        HELP_FILE.write_text(help_text())
        print(f"wrote {HELP_FILE}")
        return
    arrows = pipeline_arrows()
    names = {a for pair in arrows for a in pair} | {module_name(p) for p in (ROOT / "pipeline").rglob(
        "*.py") if p.name != "__init__.py"}
    rooms = {room(n) for n in names}
    room_arrows = {(room(a), room(b)) for a, b in arrows if room(a) != room(b)}
    print(f"pipeline/: {len(names)} modules, {len(arrows)} module arrows; {len(rooms)} rooms, "
          f"{len(room_arrows)} room arrows; arrows back up: {upward(arrows) or 'none'}")
    for a, b in sorted(room_arrows):
        print(f"  {a} -> {b}")


if __name__ == "__main__":
    main()
