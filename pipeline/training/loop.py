"""`claws train`: the one training loop for CLAWS Net (and its Table 3 ablations) and MIL.

One iteration is one optimizer step on `windows_per_iteration` windows of b=64 consecutive clips
(paper 4.3: "batch size b is set to 64 feature vectors"); an epoch is one pass over all windows
of all training videos, at the start of which the clustering loss's 2-means is recomputed. MIL
steps on 30 anomalous + 30 normal videos. Everything a resumed run needs (optimizer, scheduler,
RNG, epoch position, the epoch's clusters, the metrics accumulator) is in every checkpoint, and
all other randomness is a function of (seed, epoch) or (seed, step), so `--resume` after a kill
reproduces the uninterrupted run exactly on the same device (on CUDA under deterministic
algorithms: `deterministic_cuda`). A resume checks that the shards hold the data the checkpoint
was trained on (claws.pipeline.training.data.data_record) and refuses other data unless asked
(`other_data`), which then goes on from a new epoch and is recorded in every later checkpoint
("resumed_on_other_data") and in metrics.jsonl. SIGINT or SIGTERM ends the step in flight and
saves last.pt before the run stops (`Trainer.fit`), so nothing since the last checkpoint is lost.
The command line is claws.pipeline.commands.train.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch
from tqdm import tqdm

from claws.model.windows import derived_seed, window_order
from claws.pipeline.training.checkpoint import (
    Checkpoint, build_model, intact_checkpoints, load_checkpoint, save_checkpoint,
)
from claws.pipeline.training.config import RESUME_OVERRIDABLE, TrainConfig, load_config, save_yaml
from claws.pipeline.interrupt import Pending, deferred_interrupts
from claws.pipeline.lock import folder_lock
from claws.pipeline.training.run_dir import RunDir
from claws.pipeline.training.steps import (
    EpochClusters, claws_step, clip_representation, cluster_state, epoch_clusters, mil_step, validate,
)
from claws.pipeline.training.data import TrainingData, data_changes, load_training_data

log = logging.getLogger(__name__)


def model_args(config: TrainConfig) -> dict:
    """Constructor keywords of the configured model."""
    common = {"feature_dim": config.feature_dim, "hidden1": config.hidden1,
              "hidden2": config.hidden2, "dropout": config.dropout, "init": config.init}
    if config.model == "mil":
        return {**common, "num_segments": config.mil_segments}
    return {**common, "nsm1": config.nsm1, "nsm2": config.nsm2,
            "nsm_window_scaled": config.nsm_window_scaled}


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


CUBLAS_WORKSPACE = ":4096:8"  # cuBLAS's setting for reproducible results (cuBLAS docs, torch's)


def deterministic_cuda(device: torch.device) -> tuple[bool, bool] | None:
    """On CUDA, make the run bitwise repeatable, so that a resumed run equals an uninterrupted one.

    Float index_add_ and cumsum are non-deterministic on CUDA by default (torch's
    use_deterministic_algorithms docs) and feed the k-means centres and seeding, the cluster sums
    a resume recomputes, and the MIL segments. This turns deterministic algorithms on (none of the
    training's ops is one torch refuses then) and sets CUBLAS_WORKSPACE_CONFIG, which cuBLAS reads
    when it starts: call it before any CUDA work. On the CPU the run is repeatable as it is.

    Returns:
        The previous (enabled, warn_only) to restore, or None when nothing was changed.
    """
    if device.type != "cuda":
        return None
    if "CUBLAS_WORKSPACE_CONFIG" not in os.environ:
        if torch.cuda.is_initialized():  # e.g. C3D ran first in this process (claws demo)
            log.warning("CUDA was started before training set CUBLAS_WORKSPACE_CONFIG; for a "
                        "bitwise repeatable run start it in its own process (claws train)")
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE
    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True)
    return previous


def _optimizer(config: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    if config.optimizer == "adagrad":
        return torch.optim.Adagrad(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.RMSprop(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


class Trainer:
    """State of one run: model, optimizer, data, epoch position; `fit()` is the loop."""

    def __init__(self, config: TrainConfig, run: RunDir, data: TrainingData, device: torch.device):
        self.config, self.run, self.data, self.device = config, run, data, device
        torch.manual_seed(config.seed)
        self.model = build_model(config.model, model_args(config)).to(device).train()
        self.optimizer = _optimizer(config, self.model)
        self.scheduler = torch.optim.lr_scheduler.StepLR(
            self.optimizer, step_size=config.lr_decay_step, gamma=config.lr_decay_factor)
        self.step, self.epoch, self.position = 0, 0, 0
        self.order: torch.Tensor | None = None
        self.clusters: EpochClusters | None = None
        self.cluster_weights: dict | None = None  # module 1 at the epoch start (scale-free resume)
        self.sums: dict[str, float] = {}
        self.other_data: list[dict] = []  # resumes on other data ("resumed_on_other_data")
        self.saved_step = -1  # the step last.pt holds, when this process saved it
        self.segments = data.train.segments(config.mil_segments).to(device) if config.model == "mil" else None
        counts = torch.tensor(data.train.windows_per_video)
        self.first_window = (torch.cumsum(counts, 0) - counts).to(device)

    def training_state(self) -> dict:
        state = {
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(), "epoch": self.epoch, "position": self.position,
            "assignments": None if self.clusters is None else self.clusters.assignments.to(torch.int8).cpu(),
            "cluster_weights": self.cluster_weights,
            "metric_sums": dict(self.sums),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def restore(self, path: Path, other_data: bool = False) -> dict | None:
        """Continue from the checkpoint `path` (see the module docstring for other data).

        Returns:
            The record of this resume when it is on other data ({"step", "changes", "shards"}),
            else None.

        Raises:
            ValueError: the checkpoint is damaged (the usable ones are named), or the data
                differs from what it was trained on and `other_data` is False.
        """
        try:
            ckpt = load_checkpoint(path)
        except ValueError as err:  # damaged or unreadable: say which checkpoints can be used
            raise ValueError(f"{err}; {_alternatives(path)}") from err
        changes = _data_changes(ckpt, self.data, other_data)
        self.other_data = list(ckpt.feature_meta.get("resumed_on_other_data", []))
        state = ckpt.training_state
        self.model.load_state_dict(ckpt.model.state_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.step, self.epoch, self.position = ckpt.step, state["epoch"], state["position"]
        self.sums = dict(state["metric_sums"])
        if changes:  # the epoch's windows and clusters were of the old data: start a new epoch
            self.epoch, self.position = self.epoch + 1, 0
            record = {"step": self.step, "changes": changes, "shards": self.data.feature_meta["shards"]}
            self.other_data.append(record)
            log.warning("!!! %s: RESUMED ON OTHER DATA at step %d (--resume-other-data): %s; "
                        "training goes on from a new epoch on %s, and every later checkpoint "
                        "records it (resumed_on_other_data) !!!", path, self.step,
                        "; ".join(changes), record["shards"])
            return record
        if state["assignments"] is not None:
            self.clusters = self._restore_clusters(state["assignments"].to(self.device, torch.int64),
                                                   state.get("cluster_weights"))
        if self.config.model == "claws":
            self.order = self._epoch_order()
        log.info("resumed %s at step %d (epoch %d)", path, self.step, self.epoch)
        return None

    def _restore_clusters(self, assignments: torch.Tensor, weights: dict | None) -> EpochClusters:
        """The epoch's clusters again: the epoch-start representation is recomputed from the
        module-1 weights saved at the epoch start (exact, and far smaller than N x Z1 values)."""
        scale_free = self.config.cluster_loss == "scale_free"
        representation = None
        if scale_free:
            if weights is None:
                raise ValueError("checkpoint lacks the epoch-start weights of the scale-free "
                                 "clustering loss; resume it with the version that wrote it")
            with torch.random.fork_rng(devices=[]):  # building it must not move the run's RNG
                snapshot = build_model(self.config.model, model_args(self.config)).to(self.device)
            snapshot.module1.load_state_dict(weights)
            representation = clip_representation(snapshot.eval(), self.data.train)
        return cluster_state(representation, assignments, self.data.train, scale_free)

    def save(self, final: bool = False) -> None:
        kwargs = dict(
            model=self.model, model_name=self.config.model, model_args=model_args(self.config),
            config=self.config.to_dict(), norm_stats=self.data.norm_stats,
            feature_meta={**self.data.feature_meta,
                          **({"resumed_on_other_data": self.other_data} if self.other_data else {})},
            step=self.step, seed=self.config.seed,
            training_state=self.training_state(),
        )
        if final or self.step % self.config.checkpoint_every == 0:
            save_checkpoint(self.run.step_checkpoint(self.step), **kwargs)
        save_checkpoint(self.run.last, **kwargs)
        self.saved_step = self.step

    def _epoch_order(self) -> torch.Tensor:
        pairs = window_order(self.data.train.windows_per_video, self.config.rbs, self.config.seed, self.epoch)
        return self.first_window[pairs[:, 0].to(self.device)] + pairs[:, 1].to(self.device)

    def _epoch_finished(self) -> bool:
        """Whether the next CLAWS step needs a new epoch (none started yet, or all windows seen)."""
        return self.config.model == "claws" and (
            self.order is None or self.position >= len(self.order))

    def _start_epoch(self) -> None:
        """The epoch boundary: the epoch's window order and the clustering loss's 2-means."""
        if self.order is not None:
            self.epoch += 1
        self.order, self.position = self._epoch_order(), 0
        if self.config.clustering:
            self.clusters, figures = epoch_clusters(
                self.model, self.data.train, self.config.kmeans_max_iter,
                derived_seed(self.config.seed, self.epoch), self.config.kmeans_tol,
                self.config.cluster_loss == "scale_free", self.config.kmeans_on_units)
            if self.config.cluster_loss == "scale_free":  # what a resume rebuilds units from
                self.cluster_weights = {k: v.detach().clone().cpu()
                                        for k, v in self.model.module1.state_dict().items()}
            self.run.write_metrics({"kind": "clustering", "step": self.step, "epoch": self.epoch, **figures})

    def _losses(self) -> tuple[dict, dict]:
        """Loss terms and guards of the next step (CLAWS: the epoch's next windows)."""
        config = self.config
        if config.model == "mil":
            generator = torch.Generator().manual_seed(derived_seed(config.seed, self.step))
            terms = mil_step(self.model, self.segments, self.data.train.labels,
                             config.mil_videos_per_class, config, generator)
            return terms, {}
        windows = self.order[self.position : self.position + config.windows_per_iteration]
        self.position += len(windows)
        out = claws_step(self.model, self.data.train, windows, self.clusters, config)
        return out.terms, out.guards

    def _accumulate(self, terms: dict, guards: dict) -> None:
        values = {k: v.detach() for k, v in {**terms, **guards}.items()}
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.sums["_steps"] = self.sums.get("_steps", 0) + 1

    def _log(self, seconds: float, steps: int) -> dict:
        count = self.sums.pop("_steps", 1)
        record = {"kind": "train", "step": self.step, "epoch": self.epoch,
                  "lr": self.scheduler.get_last_lr()[0]}
        for key, value in self.sums.items():
            value = float(value)
            record[key] = int(value) if key.startswith("cluster_") else value / count
        record["iterations_per_s"] = round(steps / max(seconds, 1e-9), 2)
        self.run.write_metrics(record)
        self.sums = {}
        return record

    def fit(self) -> None:
        """The loop: (epoch boundary,) loss, backward, step; log, validate and checkpoint on
        schedule. The time of an epoch's clustering is logged on its own line, not in the step rate.

        Raises:
            claws.pipeline.interrupt.Interrupted: SIGINT or SIGTERM arrived; the step in flight
                was finished and saved to last.pt first, so a resume loses nothing.
        """
        bar = tqdm(total=self.config.iterations, initial=self.step, desc="train", unit="it",
                   disable=None)
        try:
            with deferred_interrupts() as pending:
                self._loop(bar, pending)
        finally:
            bar.close()

    def _loop(self, bar: tqdm, pending: Pending) -> None:
        config = self.config
        tick, tick_step = time.perf_counter(), self.step
        while self.step < config.iterations:
            if self._epoch_finished():
                started = time.perf_counter()
                self._start_epoch()
                tick += time.perf_counter() - started  # iterations_per_s counts steps only
            terms, guards = self._losses()
            if not torch.isfinite(terms["total"]):
                raise FloatingPointError(f"step {self.step}: non-finite loss {({k: float(v) for k, v in terms.items()})}")
            self.optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            bar.update(1)
            self._accumulate(terms, guards)
            if self.step % config.log_every == 0 or self.step == config.iterations:
                record = self._log(time.perf_counter() - tick, self.step - tick_step)
                bar.set_postfix(loss=f"{record['total']:.4f}")
                tick, tick_step = time.perf_counter(), self.step
            if self.data.val is not None and (self.step % config.val_every == 0 or self.step == config.iterations):
                figures = validate(self.model, self.data.val, config, config.seed)
                self.run.write_metrics({"kind": "val", "step": self.step, **figures})
                log.info("step %d: validation %s", self.step, figures)
            if self.step % config.checkpoint_every == 0 or self.step == config.iterations:
                self.save(final=self.step == config.iterations)
            if pending.signum is not None:  # between steps: the state is whole
                if self.saved_step != self.step:
                    self.save()
                raise pending.interrupted(f"interrupted at step {self.step}: checkpoint saved to "
                                          f"{self.run.last}, rerun with --resume")


def _alternatives(last: Path) -> str:
    """What to resume from instead of a damaged last.pt: the step-N.pt files that verify."""
    intact = intact_checkpoints(last.parent)
    if not intact:
        return (f"no step-N.pt in {last.parent} verifies either: start the run again "
                "(another --name, or delete the folder)")
    names = ", ".join(p.name for p in intact)
    return (f"checkpoints of this run that verify and could be used instead: {names}; to resume "
            f"from the latest, copy it over {last.name} (cp {intact[0]} {last}) and rerun")


def _data_changes(ckpt: Checkpoint, data: TrainingData, other_data: bool) -> list[str]:
    """How `data` differs from what `ckpt` was trained on (empty: the same, or not recorded).

    Raises:
        ValueError: it differs and `other_data` is False; the message names what changed.
    """
    saved = ckpt.feature_meta.get("training_data")
    if saved is None:
        log.warning("%s records no training data (written before checkpoints recorded it): "
                    "cannot check that %s holds the data it was trained on; continuing",
                    ckpt.path, data.feature_meta["shards"])
        return []
    changes = data_changes(saved, data.feature_meta["training_data"])
    if changes and not other_data:
        raise ValueError(
            f"{ckpt.path} was trained on other data than {data.feature_meta['shards']} holds now: "
            f"{'; '.join(changes)}. Restore the shards it was trained on, start a new run "
            "(another --name), or pass --resume-other-data to continue on these shards (a "
            "different run from then on, recorded in its checkpoints)")
    if other_data and not changes:
        log.info("--resume-other-data: %s holds the data %s was trained on; resuming as usual",
                 data.feature_meta["shards"], ckpt.path)
    return changes


def train(config: TrainConfig, resume: bool = False, other_data: bool = False) -> Path:
    """Train (or resume) the run <runs_dir>/<name>; returns the run folder.

    Args:
        config: the run's config.
        resume: continue from the run's last.pt.
        other_data: let a resume continue on shards that differ from those the checkpoint was
            trained on (--resume-other-data); otherwise that is a ValueError naming what changed.
    """
    if not config.shards:
        raise ValueError("no shards given: pass --shards DIR (a folder of feature shards)")
    run = RunDir(Path(config.runs_dir) / config.name)
    with folder_lock(run.path, "claws train"):  # one job per run folder
        run.prepare(resume)
        _train_in(run, config, resume, other_data)
    return run.path


def _train_in(run: RunDir, config: TrainConfig, resume: bool, other_data: bool = False) -> None:
    """The body of `train`, in a prepared and locked run folder."""
    handler = run.attach_log()
    threads = torch.get_num_threads()  # restored afterwards: callers (demo, benches) run C3D next
    determinism = None
    try:
        save_yaml(config, run.config)
        device = _device(config.device)
        determinism = deterministic_cuda(device)  # before the data goes to the device
        if device.type == "cpu" and config.cpu_threads > 0:
            torch.set_num_threads(config.cpu_threads)
        dtype = torch.float16 if config.feature_dtype == "float16" else torch.float32
        data = load_training_data(Path(config.shards), config.feature_dim, config.window,
                                  config.val_fraction, config.seed, dtype, device)
        trainer = Trainer(config, run, data, device)
        if resume:
            other = trainer.restore(run.last, other_data)
            run.truncate_metrics(trainer.step)
            if other is not None:
                run.write_metrics({"kind": "resume_other_data", **other})
            if trainer.step >= config.iterations:
                log.info("nothing to train: %s is at step %d of %d; its checkpoints are kept as they "
                         "are (raise --iterations to train on)", run.path, trainer.step, config.iterations)
                return
        log.info("run %s: %s model, seed %d, %d iterations on %s", run.path, config.model,
                 config.seed, config.iterations, device)
        trainer.fit()
        log.info("finished: %s", run.last)
    finally:
        torch.set_num_threads(threads)
        if determinism is not None:
            torch.use_deterministic_algorithms(determinism[0], warn_only=determinism[1])
        logging.getLogger("claws").removeHandler(handler)
        handler.close()


def resume_config(run: RunDir, overrides: dict, other_data: bool = False) -> TrainConfig:
    """The saved config of a run, with the few overrides a resume may change.

    The run folder locates itself: `name` and `runs_dir` become those of `run.path`, whatever
    config.yaml says, so a copied or renamed run folder continues where it is and never writes
    into the folder it was copied from. A --shards naming the saved shards folder by another path
    (absolute or relative) is the same shards; another folder only with `other_data`
    (--resume-other-data).
    """
    if not run.config.is_file():
        raise FileNotFoundError(f"{run.path}: no config.yaml to resume from")
    saved = load_config(yaml_path=run.config).to_dict()
    overrides = {k: v for k, v in overrides.items()
                 if not (k == "shards" and _same_path(saved.get(k, ""), v))}
    allowed = RESUME_OVERRIDABLE + (("shards",) if other_data else ())
    refused = sorted(k for k, v in overrides.items() if k not in allowed and saved.get(k) != v)
    if refused:
        raise ValueError(
            f"--resume continues {run.path} with its saved config; cannot change {', '.join(refused)} "
            f"(allowed: {', '.join(allowed)}; shards with --resume-other-data); start a new run "
            "with another --name instead"
        )
    folder = run.path if run.path.name not in ("", ".", "..") else run.path.resolve()
    where = {"name": folder.name, "runs_dir": str(folder.parent)}
    if not _same_path(str(Path(saved["runs_dir"]) / saved["name"]), str(folder)):
        log.warning("%s says the run is %s; it was copied or moved: continuing in %s", run.config,
                    Path(saved["runs_dir"]) / saved["name"], folder)
    return load_config(yaml_path=run.config, overrides={**overrides, **where})


def _same_path(a: str, b: str) -> bool:
    """Whether two paths name the same file or folder (relative ones from the working folder)."""
    return Path(a).resolve() == Path(b).resolve()
