"""Checkpoints that describe themselves: save atomically, load for scoring or resuming.

A checkpoint file (torch.save of plain types and tensors, read with weights_only=True) holds:
format, format_version, model_name ("claws" or "mil"), model_args (constructor keywords),
model_state, config (the whole training config as a dict), norm_stats (NormStats.to_dict(), copied
from the shards), feature_meta (feature_dim, clip_len, extractor dict with weights sha256 and
random flag, source shard dir), step, seed, code_version (package version + git commit:
claws.data.version), training_state (optimizer, scheduler, RNG, sampler position, cluster
assignments) for exact resume, and payload_sha256: a SHA-256 over every other field (keys, values,
tensor dtypes, shapes and bytes), verified on load, so a file damaged on disk or in a copy is
refused by name instead of scoring with changed weights. Files written before the checksum load
with a warning (unverified). A checkpoint is serialized in memory (a few MB) and written whole
(claws.data.atomic.write_atomic), so a full disk is a DiskFullError naming the folder and the
bytes needed, and the file it would have replaced stays as it was.

A run directory keeps them under checkpoints/: last.pt (the latest) and step-N.pt.
`stats_from` reads the statistics that `--stats-from` names (of `claws extract` and
`claws import-features`): from shards, or from a checkpoint found and verified as `--run` finds it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from claws.data.atomic import write_atomic
from claws.data.shards import SHARD_SUFFIX, NormStats, ShardSet, list_shards
from claws.data.version import code_version
from claws.model.claws import ClawsNet
from claws.model.mil import MilNet

log = logging.getLogger(__name__)

FORMAT = "claws-checkpoint"
FORMAT_VERSION = 1
LAST = "last.pt"
CHECKSUM = "payload_sha256"  # the payload field holding the checksum of all the others
MODELS: dict[str, type[nn.Module]] = {"claws": ClawsNet, "mil": MilNet}


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint; `model` is built, in eval mode, on CPU."""

    model: nn.Module
    model_name: str  # "claws" or "mil"
    model_args: dict  # constructor keywords of the model class
    config: dict  # the training config (pipeline/training/config.py TrainConfig as a dict)
    norm_stats: NormStats  # normalization of the training shards; apply it to new footage
    feature_meta: dict  # feature_dim, clip_len, extractor (incl. weights_sha256, random), shards
    step: int  # optimizer steps taken
    seed: int
    code_version: str  # "<package version>+git<commit>[-dirty]" or "<package version>"
    path: Path  # the file it was read from
    training_state: dict = field(default_factory=dict, repr=False)  # for resume only


def build_model(model_name: str, model_args: dict) -> nn.Module:
    """Construct a model from its name and constructor keywords."""
    if model_name not in MODELS:
        raise ValueError(f"unknown model {model_name!r}; choose one of {sorted(MODELS)}")
    return MODELS[model_name](**model_args)


def save_checkpoint(
    path: Path,
    *,
    model: nn.Module,
    model_name: str,
    model_args: dict,
    config: dict,
    norm_stats: NormStats,
    feature_meta: dict,
    step: int,
    seed: int,
    training_state: dict | None = None,
    version: str | None = None,
) -> Path:
    """Write a checkpoint atomically (serialized in memory, temporary name in the same folder,
    then rename).

    Args:
        path: final file path; its folder is created.
        model: the model whose state_dict is saved (moved to CPU in the file).
        model_name: "claws" or "mil".
        model_args: constructor keywords that rebuild `model`.
        config: training config as a plain dict.
        norm_stats: the shards' normalization statistics.
        feature_meta: feature description (see module docstring).
        step: optimizer steps taken.
        seed: run seed.
        training_state: optimizer/scheduler/RNG/sampler state for resume (optional).
        version: code version string; computed when None.

    Returns:
        The final path.

    Raises:
        claws.data.atomic.DiskFullError: no room for the file (the folder and the bytes needed are
            named; nothing is left behind and an old file of that name is kept).
    """
    path = Path(path)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_name": model_name,
        "model_args": dict(model_args),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": dict(config),
        "norm_stats": norm_stats.to_dict(),
        "feature_meta": dict(feature_meta),
        "step": int(step),
        "seed": int(seed),
        "code_version": version if version is not None else code_version(),
        "training_state": training_state or {},
    }
    payload[CHECKSUM] = payload_checksum(payload)
    buffer = io.BytesIO()  # torch.save on a full disk fails with a RuntimeError naming nothing
    torch.save(payload, buffer)
    return write_atomic(path, buffer.getbuffer())


def payload_checksum(payload: dict) -> str:
    """SHA-256 of a checkpoint payload without its checksum field.

    Walks the structure in its stored order (dicts keep insertion order through torch.save), so
    the value depends only on the content: keys, types, plain values, and for each tensor its
    dtype, shape and raw bytes.
    """
    digest = hashlib.sha256()

    def feed(value: Any) -> None:
        digest.update(type(value).__name__.encode() + b"\0")
        if isinstance(value, torch.Tensor):
            flat = value.detach().cpu().contiguous().reshape(-1)
            digest.update(f"{value.dtype}{tuple(value.shape)}".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes())
        elif isinstance(value, dict):
            for key, item in value.items():
                feed(key)
                feed(item)
            digest.update(b"}")
        elif isinstance(value, (list, tuple)):
            for item in value:
                feed(item)
            digest.update(b"]")
        else:
            digest.update(repr(value).encode() + b"\0")

    feed({k: v for k, v in payload.items() if k != CHECKSUM})
    return digest.hexdigest()


def _step_number(file: Path) -> int:
    """N of step-N.pt (-1 for a name that is not a number)."""
    number = file.stem.split("-", 1)[1]
    return int(number) if number.isdigit() else -1


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint file from a file, a run directory, or its checkpoints/ folder (latest one)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such checkpoint file or run directory")
    folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    if (folder / LAST).is_file():
        return folder / LAST
    steps = sorted(folder.glob("step-*.pt"), key=_step_number)
    if not steps:
        raise FileNotFoundError(
            f"{path}: no checkpoint found (expected checkpoints/{LAST} or step-N.pt); "
            "train first with `claws train` or pass a checkpoint file"
        )
    return steps[-1]


def _read_verified(file: Path) -> dict:
    """The payload of a checkpoint file, its format and checksum checked (ValueError otherwise)."""
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        raise ValueError(f"{file}: not a readable checkpoint, damaged or not one ({err}); "
                         "retrain or pick another") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{file}: not a claws checkpoint (no format={FORMAT!r} field)")
    if payload["format_version"] != FORMAT_VERSION:
        raise ValueError(
            f"{file}: checkpoint format {payload['format_version']}, this code reads {FORMAT_VERSION}"
        )
    stored = payload.get(CHECKSUM)
    if stored is None:
        log.warning("%s: written before checkpoints carried a checksum; loaded unverified", file)
    elif stored != payload_checksum(payload):
        raise ValueError(f"{file}: checkpoint damaged: its content does not match the checksum "
                         "saved with it (changed on disk or in a copy); use another checkpoint "
                         "of the run or retrain")
    return payload


def intact_checkpoints(folder: Path) -> list[Path]:
    """The step-N.pt files of a checkpoints folder that load and verify, latest first."""
    steps = sorted(Path(folder).glob("step-*.pt"), key=_step_number, reverse=True)
    intact = []
    for file in steps:
        try:
            _read_verified(file)
        except ValueError as err:
            log.info("%s", err)
            continue
        intact.append(file)
    return intact


def load_checkpoint(path: Path) -> Checkpoint:
    """Load a checkpoint for scoring or resuming.

    Args:
        path: a checkpoint file, or a run directory (its latest checkpoint is taken).

    Returns:
        Checkpoint with the model built from model_args, weights loaded, eval mode, on CPU.

    Raises:
        ValueError: the file is not a readable claws checkpoint, or its payload does not match
            its checksum (damaged); the message names the file.
    """
    file = resolve_checkpoint(path)
    payload = _read_verified(file)
    model = build_model(payload["model_name"], payload["model_args"])
    model.load_state_dict(payload["model_state"])  # strict: names every missing/unexpected key
    model.eval()
    return Checkpoint(
        model=model,
        model_name=payload["model_name"],
        model_args=payload["model_args"],
        config=payload["config"],
        norm_stats=NormStats.from_dict(payload["norm_stats"]),
        feature_meta=payload["feature_meta"],
        step=int(payload["step"]),
        seed=int(payload["seed"]),
        code_version=str(payload["code_version"]),
        path=file,
        training_state=payload.get("training_state", {}),
    )


def stats_from(source: Path) -> NormStats:
    """`--stats-from SOURCE`: the normalization statistics of an earlier run, to normalize new
    features exactly as its training features were.

    Args:
        source: a shard file or a folder holding shards (the statistics stored with them), or a
            checkpoint file or run folder (resolved as `--run` is: `resolve_checkpoint`; the
            statistics of the shards it was trained on, its checksum verified).

    Returns:
        The statistics; their `source` is where they were computed, else `source`.

    Raises:
        ValueError: `source` gives no statistics (unreadable, damaged, empty); the message names
            it and the file at fault, and says what to pass instead.
    """
    source = Path(source)
    try:
        holds_shards = source.suffix == SHARD_SUFFIX if source.is_file() else list_shards(source)
        if holds_shards:
            stats = ShardSet(source).stats
        else:
            stats = NormStats.from_dict(_read_verified(resolve_checkpoint(source))["norm_stats"])
    except (ValueError, FileNotFoundError) as err:  # ShardError included
        raise ValueError(f"--stats-from {source} gives no normalization statistics ({err}); pass "
                         "an earlier run's shard folder or file, or its checkpoint or run "
                         "folder") from err
    return replace(stats, source=stats.source or str(source))
