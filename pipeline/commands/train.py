"""`claws train`: the command line of the training loop (claws.pipeline.training.loop).

One `--key value` flag per TrainConfig field, documented by the field's comment in
pipeline/training/config.py. Building the parser imports no torch; the loop is imported when it runs.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from claws.pipeline.training.config import (
    CHOICES, PRESETS, RANGES, RESUME_OVERRIDABLE, TrainConfig, field_help, field_types, load_config,
    option_type,
)

DESCRIPTION = f"""\
Train on the split 'train' videos of a shard folder.

Precedence: the paper's defaults < --preset < --config YAML < --key value. The run folder
<runs-dir>/<name> gets config.yaml, metrics.jsonl, train.log and checkpoints/ (last.pt, step-N.pt).
--resume RUN_DIR (or --resume with --runs-dir and --name) continues that run from last.pt with its
saved config, in that folder, whatever config.yaml says (a copied or renamed run folder continues
where it is); only these keys may change: {", ".join(RESUME_OVERRIDABLE)}. A resume checks
that the shards hold the data the run was trained on (the same videos, contents and statistics)
and stops with what changed; --resume-other-data continues on other data (and --shards may then
name another folder), from a new epoch, recorded in the run.

Presets (--preset): the rows of Table 3 (bottom-up, then top-down: CLAWS Net minus one part),
the paper's clustering distance read literally, and the MIL baseline:
{textwrap.fill(", ".join(PRESETS), 96, initial_indent="  ", subsequent_indent="  ",
               break_on_hyphens=False)}"""

_METAVARS = {"shards": "DIR", "runs_dir": "DIR"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `claws train` to the command line."""
    parser = subparsers.add_parser(
        "train", help="train CLAWS Net (or an ablation, or the MIL baseline) on feature shards",
        description=DESCRIPTION,
        usage="%(prog)s [-h] --shards DIR [--preset NAME] [--config YAML] [--resume [RUN_DIR]] "
        "[--KEY VALUE ...]",
    )
    parser.add_argument("--preset", choices=list(PRESETS), metavar="NAME",
                        help="a Table 3 row or the MIL baseline (listed above); default: none, "
                        "the paper's CLAWS Net")
    parser.add_argument("--config", type=Path, metavar="YAML", help="YAML file of config keys")
    parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="RUN_DIR",
                        help="continue the run folder RUN_DIR, else <runs-dir>/<name>, from its "
                        "last.pt (--shards not needed)")
    parser.add_argument("--resume-other-data", action="store_true",
                        help="with --resume: continue even though the shards differ from those "
                        "the run was trained on (videos changed, added or removed, other "
                        "statistics); logged loudly and recorded in the run")
    keys = parser.add_argument_group("config keys (pipeline/training/config.py TrainConfig)")
    defaults, meanings = TrainConfig(), field_help()
    for key, kind in field_types().items():
        default = getattr(defaults, key)
        text = meanings[key].replace("%", "%%")
        if key in RANGES:
            text += f"; {RANGES[key].describe()}"
        if key == "shards":
            text += "; required unless --config sets it or --resume continues a run"
        elif default != "":
            text += f" (default: {default})"
        keys.add_argument(
            f"--{key.replace('_', '-')}", dest=f"cfg_{key}", type=option_type(key),
            choices=CHOICES.get(key),
            metavar=None if key in CHOICES else _METAVARS.get(key, kind.__name__.upper()), help=text,
        )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of `claws train`; returns the exit code."""
    if not (args.resume or args.cfg_shards or args.config):
        raise argparse.ArgumentError(
            None, "--shards DIR is required (a folder of feature shards), unless --config YAML sets "
            "shards or --resume continues a run")
    from claws.pipeline.training.run_dir import RunDir  # these import torch
    from claws.pipeline.training.loop import resume_config, train

    overrides = {
        key[4:]: value for key, value in vars(args).items()
        if key.startswith("cfg_") and value is not None
    }
    name = overrides.get("name") or args.preset or overrides.get("model") or "claws"
    runs_dir = overrides.get("runs_dir", TrainConfig.runs_dir)
    if args.resume:
        folder = Path(runs_dir) / name if args.resume is True else Path(args.resume)
        named = ("name" in overrides or "runs_dir" in overrides) and args.resume is not True
        if named and (Path(runs_dir) / name).resolve() != folder.resolve():
            raise argparse.ArgumentError(
                None, f"--resume {folder} and --runs-dir/--name ({Path(runs_dir) / name}) name "
                "two folders; give the run folder once")
        overrides = {k: v for k, v in overrides.items() if k not in ("name", "runs_dir")}
        config = resume_config(RunDir(folder), overrides, args.resume_other_data)
    elif args.resume_other_data:
        raise argparse.ArgumentError(None, "--resume-other-data goes with --resume")
    else:
        config = load_config(args.preset, args.config, {**overrides, "name": name})
    path = train(config, resume=bool(args.resume), other_data=args.resume_other_data)
    print(f"run folder: {path}")
    return 0
