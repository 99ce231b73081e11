"""The training configuration: one frozen dataclass, presets named after Table 3, YAML and overrides.

Precedence: dataclass defaults (the paper's settings, section 4.3) < preset < YAML file <
`--key value` overrides. Unknown keys, values of the wrong type and numbers outside a key's range
(RANGES, the same checks for YAML files and `--key value`) are errors that name the key.
The comment of each field is its documentation, in the source and in `claws train --help`
(field_help reads it).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import re
import textwrap
import tokenize
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from claws.data.atomic import write_text
from claws.data.text_files import read_text
from claws.pipeline.options import SEED, WINDOW, Range, integer, number


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; saved as config.yaml and in every checkpoint."""

    shards: str = ""  # shard directory (or file) holding the split "train" videos
    name: str = ""  # run name: the run folder is <runs_dir>/<name> (empty: the preset, else the model)
    runs_dir: str = "runs"  # parent folder of run folders
    model: str = "claws"  # "claws" (CLAWS Net and its ablations) or "mil" (Sultani et al. 2018)
    feature_dim: int = 2048  # d of the shards' features (paper 4.3: 2048); checked before training
    seed: int = 0  # seeds weights, dropout, window order, k-means, validation split
    device: str = "auto"  # "auto" (cuda when available), "cpu", "cuda", "cuda:N"
    # torch intra-op threads on the CPU (0 = torch's default). Results are the same for any count;
    # which is faster depends on the machine's other load: on the 2-core development machine two
    # threads took 0.75x the step time of one when idle, 7x when other jobs held both cores
    # (bench/train.py measures it).
    cpu_threads: int = 1
    feature_dtype: str = "float32"  # in-memory storage of training features: float32 or float16
    iterations: int = 100_000  # optimizer steps (paper 4.3: 100k)
    optimizer: str = "rmsprop"  # "rmsprop" (paper 4.3) or "adagrad" (Sultani et al.)
    lr: float = 1e-4  # initial learning rate (paper 4.3)
    lr_decay_step: int = 80_000  # multiply lr by lr_decay_factor after this many steps (paper)
    lr_decay_factor: float = 0.1  # lr multiplier at lr_decay_step (paper 4.3: ten times decrease)
    weight_decay: float = 0.0  # L2 on all parameters through the optimizer (paper: none)
    window: int = 64  # b, consecutive clips per window/batch (paper 4.3: 64 feature vectors)
    windows_per_iteration: int = 1  # windows per optimizer step (paper: one batch of b clips)
    rbs: bool = True  # random batch selection; False = windows in order, video after video
    hidden1: int = 512  # FC module 1 size (paper 4.3)
    hidden2: int = 32  # FC module 2 size (paper 4.3)
    dropout: float = 0.6  # dropout rate after each FC module; paper silent, 0.6 as Sultani et al.
    init: str = "xavier_uniform"  # weight init: xavier_uniform, xavier_normal, kaiming_uniform, torch_default
    nsm1: bool = True  # normalcy suppression module 1 (section 3.3)
    nsm2: bool = True  # normalcy suppression module 2
    # NSM softmax x window length b (columns sum to b, not 1), so an even suppression is the
    # identity. Measured reason (README "Real-feature benchmark"): with columns summing to 1 the
    # two NSMs scale the head's input by ~1/b^2 and, at lr 1e-4 for 3,000 iterations on real
    # UCF-Crime features, the scores stay flat (score gap 0.0003, frame AUC 0.65); scaled: 0.76.
    nsm_window_scaled: bool = True
    smooth_sparsity: bool = True  # temporal smoothness + sparsity losses (section 3.5)
    clustering: bool = True  # clustering distance loss (section 3.4)
    lambda1: float = 0.9  # weight of L_pred; (1 - lambda1) weighs L_c (Eq. 3, paper 4.3)
    lambda2: float = 8e-5  # weight of L_s + L_ts (paper 4.3)
    alpha: float = 1.0  # upper bound of the normal-video clustering loss (Eq. 2, paper 4.3)
    # clustering distance (DESIGN.md): "scale_free" (per video, unit vectors, live batch clips)
    # or "literal" (||c1 - c2|| / m_i on the window's raw representation, for the record)
    cluster_loss: str = "scale_free"
    cluster_min_distance: float = 0.05  # delta: 1/d uses max(d, delta); "literal" needs ~1e-6
    kmeans_max_iter: int = 100  # Lloyd iterations per epoch's 2-means at most
    kmeans_on_units: bool = False  # 2-means on r / ||r|| (the distance's space) instead of r
    kmeans_tol: float = 1e-3  # stop the epoch's 2-means once at most this share of clips moved
    mil_segments: int = 32  # MIL: segments per video (Sultani et al.)
    mil_videos_per_class: int = 30  # MIL: anomalous and normal videos per step (30 + 30)
    mil_smoothness: float = 8e-5  # MIL: weight of the smoothness term
    mil_sparsity: float = 8e-5  # MIL: weight of the sparsity term
    val_fraction: float = 0.0  # share of TRAINING videos held out (stratified) for validation
    val_every: int = 1000  # steps between validations (when val_fraction > 0)
    log_every: int = 100  # steps between metrics.jsonl lines (means over the interval)
    checkpoint_every: int = 5000  # steps between step-N.pt checkpoints (last.pt too)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, field order kept."""
        return dataclasses.asdict(self)


_ALL_ON = {"rbs": True, "nsm1": True, "nsm2": True, "smooth_sparsity": True, "clustering": True}
_BBN = {"rbs": False, "nsm1": False, "nsm2": False, "smooth_sparsity": False, "clustering": False}

# Table 3 rows (bottom-up, then top-down: CLAWS Net minus one part), and the MIL baseline.
PRESETS: dict[str, dict[str, Any]] = {
    "bbn": _BBN,
    "bbn+rbs": {**_BBN, "rbs": True},
    "bbn+rbs+nsm1": {**_BBN, "rbs": True, "nsm1": True},
    "bbn+rbs+nsm1+nsm2": {**_BBN, "rbs": True, "nsm1": True, "nsm2": True},
    "bbn+rbs+nsm1+nsm2+ls": {**_ALL_ON, "clustering": False},
    "claws-rbs": {**_ALL_ON, "rbs": False},
    "claws-nsm1": {**_ALL_ON, "nsm1": False},
    "claws-nsm2": {**_ALL_ON, "nsm2": False},
    "claws-nsm1-nsm2": {**_ALL_ON, "nsm1": False, "nsm2": False},
    "claws-ls": {**_ALL_ON, "smooth_sparsity": False},
    "claws": _ALL_ON,
    # The paper's clustering distance read literally (DESIGN.md), kept for the record.
    "claws-literal": {**_ALL_ON, "cluster_loss": "literal", "cluster_min_distance": 1e-6},
    # Sultani et al. 2018: Adagrad lr 1e-3, Glorot-normal init, 20k iterations, L2 1e-3.
    "mil": {"model": "mil", "optimizer": "adagrad", "lr": 1e-3, "iterations": 20_000,
            "lr_decay_step": 20_000, "init": "xavier_normal", "weight_decay": 1e-3},
}

# The keys a resumed run may change; every other key stays as the run saved it.
RESUME_OVERRIDABLE = ("iterations", "val_every", "log_every", "checkpoint_every", "device",
                      "cpu_threads")

# The allowed values of the fields that take one of a few names.
CHOICES: dict[str, tuple[str, ...]] = {
    "model": ("claws", "mil"), "optimizer": ("rmsprop", "adagrad"),
    "feature_dtype": ("float32", "float16"), "cluster_loss": ("scale_free", "literal"),
    "init": ("xavier_uniform", "xavier_normal", "kaiming_uniform", "torch_default"),
}


# The range of every numeric field. Counts of steps stop at 10**9 (paper: 1e5), sizes at 65,536;
# weights of loss terms at 1000 (paper: at most 1), so that no loss can overflow.
_STEPS, _SIZE, _WEIGHT = integer(1, 10**9), integer(1, 65_536), number(0.0, 1000.0)
RANGES: dict[str, Range] = {
    "feature_dim": _SIZE, "seed": SEED, "cpu_threads": integer(0, 1024), "iterations": _STEPS,
    "lr": number(0.0, 1.0, low_open=True), "lr_decay_step": _STEPS,
    "lr_decay_factor": number(0.0, 1.0, low_open=True), "weight_decay": number(0.0, 1.0),
    "window": WINDOW, "windows_per_iteration": integer(1, 4096), "hidden1": _SIZE,
    "hidden2": _SIZE, "dropout": number(0.0, 1.0, high_open=True), "lambda1": number(0.0, 1.0),
    "lambda2": _WEIGHT, "alpha": _WEIGHT, "cluster_min_distance": number(0.0, 1000.0, low_open=True),
    "kmeans_max_iter": integer(1, 1_000_000), "kmeans_tol": number(0.0, 1.0, high_open=True),
    "mil_segments": integer(1, 100_000), "mil_videos_per_class": integer(1, 100_000),
    "mil_smoothness": _WEIGHT, "mil_sparsity": _WEIGHT,
    "val_fraction": number(0.0, 1.0, high_open=True), "val_every": _STEPS, "log_every": _STEPS,
    "checkpoint_every": _STEPS,
}


def field_types() -> dict[str, type]:
    """Field name -> its Python type (int, float, bool, str)."""
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainConfig)}


def field_help() -> dict[str, str]:
    """Field name -> its meaning, read from the comments in TrainConfig's source.

    The meaning of a field is its trailing comment, else the first sentence of the comment block
    right above it (the rest of such a block gives the reason, for readers of the source).
    """
    source = textwrap.dedent(inspect.getsource(TrainConfig))
    comments = {token.start[0]: token.string.lstrip("#").strip()
                for token in tokenize.generate_tokens(io.StringIO(source).readline)
                if token.type == tokenize.COMMENT}
    lines = source.splitlines()
    meanings = {}
    for node in ast.parse(source).body[0].body:
        if not isinstance(node, ast.AnnAssign):
            continue
        text = comments.get(node.end_lineno, "")
        if not text:
            above = node.lineno - 1
            while above in comments and lines[above - 1].lstrip().startswith("#"):
                above -= 1
            block = " ".join(comments[n] for n in range(above + 1, node.lineno))
            text = re.split(r"(?<=\.)\s+(?=[A-Z])", block)[0].removesuffix(".")
        meanings[node.target.id] = text
    return meanings


def _flag(text: str) -> bool:
    """A command-line true/false (also 1/0, yes/no, on/off)."""
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def option_type(key: str) -> Callable[[str], Any]:
    """The argparse `type` of `--key`: its Range for a number, true/false for a flag, else str."""
    if key in RANGES:
        return RANGES[key]
    return _flag if field_types()[key] is bool else str


def parse_value(key: str, text: str) -> Any:
    """A command-line string converted to the type of field `key`, its range checked."""
    try:
        return option_type(key)(text)
    except argparse.ArgumentTypeError as err:
        raise ValueError(f"--{key.replace('_', '-')}: {err}") from None


def _checked(key: str, value: Any, where: str) -> Any:
    types = field_types()
    if key not in types:
        raise ValueError(f"{where}: unknown config key {key!r}; known keys: {', '.join(types)}")
    kind = types[key]
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ValueError(f"{where}: {key} must be {kind.__name__}, got {value!r}")
    if key in CHOICES and value not in CHOICES[key]:
        raise ValueError(f"{where}: {key} must be one of {CHOICES[key]}, got {value!r}")
    if key in RANGES:
        RANGES[key].check(value, f"{where}: {key}")
    return value


def load_config(
    preset: str | None = None,
    yaml_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """Build a config from defaults, a preset, a YAML file and overrides (in that order).

    Args:
        preset: a key of PRESETS, or None for the defaults (the full CLAWS Net).
        yaml_path: a YAML mapping of config keys, or None.
        overrides: key -> value (already typed), e.g. from `--key value`.

    Returns:
        The validated TrainConfig.
    """
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        values.update(PRESETS[preset])
    if yaml_path is not None:
        loaded = yaml.safe_load(read_text(Path(yaml_path))) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{yaml_path}: expected a mapping of config keys, got {type(loaded).__name__}")
        values.update({k: _checked(k, v, str(yaml_path)) for k, v in loaded.items()})
    values.update({k: _checked(k, v, "override") for k, v in (overrides or {}).items()})
    return TrainConfig(**values)


def save_yaml(config: TrainConfig, path: Path) -> None:
    """Write config.yaml atomically (claws.data.atomic: no temporary is left on failure)."""
    write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
