"""The training loop shared by tokenizer and predictor training.

``train("predictor", "configs/finetune-small-csv.yaml")`` (or ``kronos train predictor CONFIG``) runs:

1. set up the process group when launched by torchrun (DDP or FSDP, gloo on CPU, NCCL on GPU);
2. build (or reuse) the memory-mapped data corpus, then random-window loaders, disjoint per rank;
3. build the model fresh or from a checkpoint, AdamW (betas 0.9/0.95, weight decay 0.1) with a
   one-cycle learning-rate schedule, gradient accumulation and norm clipping, mixed precision on GPU;
4. validate before training and after every epoch (:mod:`kronos.training.validation`); keep ``best/`` (hub
   layout) by the task's validation metric; stop early after ``early_stopping_patience`` validations without
   improvement;
5. write ``last/`` (resumable: weights, optimiser, scheduler, RNG, data position) after every epoch
   and every ``checkpoint_every`` steps; metrics go to ``metrics.csv`` and TensorBoard.

A run started again with the same ``output_dir`` continues from ``last/`` (``train.resume: auto``).
What one optimiser step does is :mod:`kronos.training.optim`; writing checkpoints and resuming from them
is :mod:`kronos.training.checkpoint`; this module runs the epochs, validations and logging around them.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from kronos.core.files import atomic_write_text, remove_empty_tree, remove_stale_temp_dirs
from kronos.training import distributed as dd
from kronos.training.checkpoint import RunCheckpoints, TrainerState, write_predictor_bundle
from kronos.training.config import Kind, dump_config, load_config
from kronos.training.data import prepare_corpus
from kronos.training.errors import TrainingError
from kronos.training.metrics import MetricsLogger, RunConsole
from kronos.training.objectives import PredictorTask, Task, make_task
from kronos.training.optim import Optimization, autocast_dtype
from kronos.training.schema import RunConfig, TrainConfigError
from kronos.training.validation import Validation, window_loader
from kronos.training.windows import RandomWindowSampler, WindowDataset, group_weights

__all__ = ["TrainResult", "TrainingError", "train"]


@dataclass
class TrainResult:
    """What a run produced. ``model`` is this rank's trained module (unwrapped), for in-process use."""

    kind: str
    output_dir: Path
    best_dir: Path | None
    best_metric: float
    best_step: int
    initial_val: dict[str, float] | None
    final_val: dict[str, float] | None
    steps: int
    epochs: int
    stopped_early: bool
    model: nn.Module | None = None
    validations: list[dict[str, float]] = field(default_factory=list)


StepCallback = Callable[[int, dict[str, Any]], None]


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _Trainer:
    def __init__(self, kind: Kind, cfg: RunConfig, callbacks: Sequence[StepCallback] = ()) -> None:
        self.kind = kind
        self.cfg = cfg
        self.t = cfg.train
        self.callbacks = list(callbacks)
        self.out = Path(cfg.output_dir).expanduser()
        self.env = dd.setup_distributed(self.t.device)
        self.console = RunConsole(enabled=self.env.is_main)
        self.log = self.console.log

    # -- setup ----------------------------------------------------------------------------------
    def setup(self) -> None:
        cfg, t, env = self.cfg, self.t, self.env
        if env.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            for stale in remove_stale_temp_dirs(self.out):
                self.log(f"removed {stale.name}, left by an interrupted run")
        dd.barrier(env)
        self.corpus = prepare_corpus(cfg, env, log=self.log)
        self.train_set = WindowDataset(
            self.corpus, "train", clip=cfg.data.clip, min_lookback=t.min_lookback, seed=cfg.seed
        )
        self.val_set = WindowDataset(self.corpus, "val", clip=cfg.data.clip)
        if len(self.val_set) < env.world_size:
            raise TrainingError(
                f"the validation split has {len(self.val_set)} windows of {self.corpus.window} bars; raise "
                "data.val_fraction, "
                f"lower data.lookback/horizon or add data (every rank needs at least one)"
            )
        self.global_batch = t.batch_size * t.accumulation_steps * env.world_size
        n_train = len(self.train_set)
        self.steps_per_epoch = t.steps_per_epoch or max(n_train // self.global_batch, 1)
        limits = [x for x in (t.epochs * self.steps_per_epoch if t.epochs else None, t.max_steps) if x]
        self.total_steps = int(min(limits))
        self.n_epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        self.dtype = autocast_dtype(t.mixed_precision, env.device, t.distributed if env.distributed else "ddp")

        # Identical initial weights on every rank (FSDP does not broadcast), then per-rank randomness.
        _seed_all(cfg.seed)
        self.task: Task = make_task(self.kind, cfg, env.device)
        module = self.task.build_model()
        self.model_config = self.task.model_config(module)
        self.n_params = sum(p.numel() for p in module.parameters() if p.requires_grad)
        self.model = dd.wrap_model(module, env, t.distributed)
        _seed_all(cfg.seed + 7919 * (env.rank + 1))

        self.opt = opt = Optimization(self.model, t, env.device, self.dtype, self.total_steps)
        self.checkpoints = RunCheckpoints(
            self.out, env, self.model, opt.optimizer, opt.scheduler, opt.scaler, self.model_config
        )
        self.state = TrainerState(kind=self.kind, global_batch=self.global_batch, world_size=env.world_size)
        self.state.extra["total_steps"] = self.total_steps
        shares = t.group_shares()  # with frequency sampling, validation also reports each group's metric
        self.validation = Validation(
            self.task,
            self.corpus,
            self.val_set,
            samples=t.val_samples,
            shares=shares,
            env=env,
            loader=lambda dataset, sampler: self._loader(dataset, sampler, t.val_batch_size or t.batch_size),
        )
        self.metrics = MetricsLogger(
            self.out,
            [*self.task.metrics, *self.validation.group_metrics],
            enabled=env.is_main,
            tensorboard=t.tensorboard,
        )
        self.validations: list[dict[str, float]] = []
        self.initial_val: dict[str, float] | None = None
        self._resume_if_any()
        self.metrics.resume(self.state.step)
        if env.is_main:
            atomic_write_text(self.out / "config.yaml", dump_config(cfg))
        train_weights = None if shares is None else group_weights(self.corpus.window_groups("train"), shares)
        self.train_sampler = RandomWindowSampler(
            len(self.train_set),
            self.steps_per_epoch * self.global_batch,
            seed=cfg.seed,
            rank=env.rank,
            world_size=env.world_size,
            weights=train_weights,
        )
        self.log(
            f"{self.kind}: {self.n_params:,} trainable parameters on {env.world_size} process(es) ({env.device}, "
            f"{t.distributed if env.distributed else 'single'}), precision {self.dtype or torch.float32}; "
            f"{len(self.train_set):,} train / {len(self.val_set):,} val windows of {self.corpus.window} bars; "
            f"global batch {self.global_batch}, {self.steps_per_epoch} steps/epoch, {self.total_steps} steps"
        )

    def _resume_if_any(self) -> None:
        resumed = self.checkpoints.resume(
            self.t.resume, kind=self.kind, global_batch=self.global_batch, total_steps=self.total_steps, log=self.log
        )
        if resumed is not None:
            self.state = resumed
            self.initial_val = resumed.extra.get("initial_val")
            self.validations = list(resumed.extra.get("validations", []))

    # -- loaders --------------------------------------------------------------------------------
    def _loader(self, dataset: WindowDataset, sampler: Any, batch_size: int) -> DataLoader:
        return window_loader(
            dataset, sampler, batch_size, num_workers=self.t.num_workers, device=self.env.device, seed=self.cfg.seed
        )

    def _to_device(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        dev = self.env.device
        return {k: batch[k].to(dev, non_blocking=True) for k in ("x", "stamp", "fitted")}

    # -- validation -----------------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """Validation metrics over this run's validation windows (:class:`~kronos.training.validation.Validation`)."""
        return self.validation(self.model, self.opt.autocast)

    def _after_validation(self, val: dict[str, float]) -> bool:
        """Record a validation; save ``best/`` when it improves. Returns True when training should stop."""
        st, t = self.state, self.t
        self.validations.append({"step": st.step, **val})
        self.metrics.log("val", st.step, st.epoch, val)
        metric = val[self.task.select]
        if not math.isfinite(metric):
            raise TrainingError(
                f"validation {self.task.select} is {metric} at step {st.step}; lower train.lr or check the data"
            )
        if st.record_validation(metric, t.early_stopping_min_delta):
            self.checkpoints.save_best()
        msg = ", ".join(f"{k} {v:.5f}" for k, v in val.items() if k != "samples")
        self.log(
            f"validation at step {st.step} (epoch {st.epoch}): {msg}{'  [best]' if st.best_step == st.step else ''}"
        )
        patience = t.early_stopping_patience
        if patience is not None and st.bad_validations >= patience:
            self.log(f"early stopping: no improvement of val {self.task.select} in {patience} validation(s)")
            return True
        return False

    # -- saving ---------------------------------------------------------------------------------
    def save_last(self) -> None:
        if self.env.is_main:
            self.state.extra.update(initial_val=self.initial_val, validations=self.validations)
        self.checkpoints.save_last(self.state, dump_config(self.cfg))
        if self.env.is_main:
            self.metrics.flush()
        dd.barrier(self.env)

    def _write_predictor_bundle(self) -> None:
        """``<output_dir>/predictor/``: best model, tokenizer and predictor.json, for ``from_pretrained``."""
        if self.env.is_main and isinstance(self.task, PredictorTask) and (self.out / "best").is_dir():
            m, d = self.cfg.model, self.cfg.data
            write_predictor_bundle(self.out, self.task.tokenizer, max_context=m.max_context, clip=d.clip)

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        st, t, env = self.state, self.t, self.env
        stopped_early = False
        if st.finished:
            self.log(f"{self.out} holds a finished run (step {st.step}); nothing to do")
            return self._result(stopped_early=False)
        if t.progress:
            self.console.start(self.kind, total=self.total_steps, completed=st.step)
        try:
            if st.step == 0 and st.epoch_position == 0 and t.validate_at_start and not self.validations:
                self.initial_val = self.validate()
                stopped_early = self._after_validation(self.initial_val)
            names = ("loss", *self.task.metrics)
            bars = self.task.bars_per_sample() * self.global_batch
            while st.step < self.total_steps and not stopped_early:
                epoch = st.epoch
                self.train_sampler.set_epoch(epoch)
                self.train_sampler.set_position(st.epoch_position)
                loader = self._loader(self.train_set, self.train_sampler, t.batch_size)
                sums = torch.zeros(len(names), dtype=torch.float64, device=env.device)
                n_logged, grad_norm, t_last = 0, None, time.perf_counter()
                micro = 0
                self.opt.optimizer.zero_grad(set_to_none=True)
                for batch in loader:
                    b = self._to_device(batch)
                    micro += 1
                    sync = micro % t.accumulation_steps == 0
                    with dd.gradient_sync(self.model, sync):
                        with self.opt.autocast():
                            loss, terms = self.task.train_loss(self.model, b)
                        self.opt.backward(loss / t.accumulation_steps)
                    sums += torch.stack([terms[n].detach().double() for n in names]) / t.accumulation_steps
                    if not sync:
                        continue
                    grad_norm = self.opt.step()
                    st.step += 1
                    st.epoch_position += self.global_batch
                    n_logged += 1
                    self.console.update(advance=1)
                    if (
                        st.step % t.log_every == 0
                        or st.step == self.total_steps
                        or st.epoch_position >= self.steps_per_epoch * self.global_batch
                    ):
                        avg = (dd.all_reduce_sum(sums, env) / (n_logged * env.world_size)).cpu()
                        values = {name: float(avg[i]) for i, name in enumerate(names)}
                        self.console.update(info=f"epoch {epoch} loss {values['loss']:.4f}")
                        if not all(math.isfinite(v) for v in values.values()):
                            raise TrainingError(
                                f"training loss became non-finite by step {st.step} ({values}); lower "
                                "train.lr, keep train.grad_clip, "
                                f"or check the data"
                            )
                        now = time.perf_counter()
                        values.update(
                            lr=self.opt.lr,
                            grad_norm=grad_norm,
                            bars_per_s=bars * n_logged / max(now - t_last, 1e-9),
                        )
                        self.metrics.log("train", st.step, epoch, values, flush=False)
                        sums.zero_()
                        n_logged, t_last = 0, now
                    for cb in self.callbacks:
                        cb(st.step, {"epoch": epoch, "loss": float(terms["loss"].detach())})
                    if t.checkpoint_every and st.step % t.checkpoint_every == 0 and st.step < self.total_steps:
                        self.save_last()
                    if st.step >= self.total_steps or st.epoch_position >= self.steps_per_epoch * self.global_batch:
                        break
                # End of an epoch (or of the step budget inside one).
                if st.epoch_position >= self.steps_per_epoch * self.global_batch:
                    st.epoch, st.epoch_position = epoch + 1, 0
                val = self.validate()
                stopped_early = self._after_validation(val)
                if st.step >= self.total_steps or stopped_early:
                    st.finished = True
                self.save_last()
        finally:
            self.console.stop()
            self.metrics.close()
        self._write_predictor_bundle()
        dd.barrier(env)
        return self._result(stopped_early)

    def _result(self, stopped_early: bool) -> TrainResult:
        best = self.out / "best"
        return TrainResult(
            kind=self.kind,
            output_dir=self.out,
            best_dir=best if best.is_dir() else None,
            best_metric=self.state.best_metric,
            best_step=self.state.best_step,
            initial_val=self.initial_val,
            final_val=self.validations[-1] if self.validations else None,
            steps=self.state.step,
            epochs=self.state.epoch,
            stopped_early=stopped_early,
            model=dd.unwrap(self.model),
            validations=self.validations,
        )


def train(
    kind: Kind,
    config: RunConfig | str | os.PathLike[str],
    *,
    overrides: Sequence[str] = (),
    callbacks: Sequence[StepCallback] = (),
) -> TrainResult:
    """Train the tokenizer or the predictor as the run configuration says (see the module docstring).

    ``config`` is a :class:`RunConfig` or the path of a YAML file; ``overrides`` are ``key.path=value``
    strings applied on top (YAML files only). ``callbacks`` are called as ``cb(step, info)`` after
    every optimiser step (an exception raised there stops the run, leaving the last checkpoint).
    Works alone or under ``torchrun``; the process group is torn down at the end.
    """
    if kind not in ("tokenizer", "predictor"):
        raise TrainConfigError(f"unknown training kind {kind!r}; expected 'tokenizer' or 'predictor'")
    if isinstance(config, RunConfig):
        if overrides:
            raise TrainConfigError("overrides apply to YAML config files; edit the RunConfig object instead")
        cfg = config.for_kind(kind)
    else:
        cfg = load_config(config, kind=kind, overrides=overrides)
    threads = torch.get_num_threads()
    if cfg.train.cpu_threads is not None:
        torch.set_num_threads(cfg.train.cpu_threads)
    trainer = _Trainer(kind, cfg, callbacks)
    out_existed = trainer.out.exists()
    try:
        try:
            trainer.setup()
        except BaseException:
            # a run that cannot start (missing data, too few windows, a clashing checkpoint ...) leaves no
            # empty output folder behind; files already there (a built corpus, earlier results) stay
            if not out_existed and trainer.env.is_main:
                remove_empty_tree(trainer.out)
            raise
        return trainer.run()
    finally:
        dd.teardown_distributed(trainer.env)
        torch.set_num_threads(threads)
