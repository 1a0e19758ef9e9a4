"""The training loop shared by tokenizer and predictor training.

``train("predictor", "configs/finetune-small-csv.yaml")`` (or ``kronos train predictor CONFIG``) runs:

1. set up the process group when launched by torchrun (DDP or FSDP, gloo on CPU, NCCL on GPU);
2. build (or reuse) the memory-mapped data corpus, then random-window loaders, disjoint per rank;
3. build the model fresh or from a checkpoint, AdamW (betas 0.9/0.95, weight decay 0.1) with a
   one-cycle learning-rate schedule, gradient accumulation and norm clipping, mixed precision on GPU;
4. validate before training and after every epoch; keep ``best/`` (hub layout) by the task's
   validation metric; stop early after ``early_stopping_patience`` validations without improvement;
5. write ``last/`` (resumable: weights, optimiser, scheduler, RNG, data position) after every epoch
   and every ``checkpoint_every`` steps; metrics go to ``metrics.csv`` and TensorBoard.

A run started again with the same ``output_dir`` continues from ``last/`` (``train.resume: auto``).
"""

from __future__ import annotations

import math
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from kronos.core.files import atomic_write_text, new_temp_dir, remove_empty_tree, remove_stale_temp_dirs, replace_dir
from kronos.training import distributed as dd
from kronos.training.checkpoint import (
    CheckpointError,
    TrainerState,
    capture_rng,
    load_trainer_state,
    restore_rng,
    save_checkpoint,
    save_model_dir,
)
from kronos.training.config import (
    Kind,
    RunConfig,
    TrainConfigError,
    dump_config,
    load_config,
)
from kronos.training.data import prepare_corpus
from kronos.training.metrics import MetricsLogger
from kronos.training.objectives import PredictorTask, Task, make_task
from kronos.training.windows import EvalWindowSampler, RandomWindowSampler, WindowDataset

__all__ = ["TrainResult", "TrainingError", "train"]


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, incompatible checkpoint, too little data)."""


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


def _mixed_precision(mode: str, device: torch.device, strategy: str = "ddp") -> torch.dtype | None:
    """The autocast dtype: bf16 on GPUs that have it, else fp16 with loss scaling; none on CPU (``auto``).

    fp16 loss scaling is not combined with FSDP's sharded gradients here, so ``auto`` falls back to
    fp32 there on GPUs without bf16, and an explicit ``fp16`` with FSDP is an error.
    """
    if mode == "no":
        return None
    if mode == "auto":
        if device.type != "cuda":
            return None
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None if strategy == "fsdp" else torch.float16
    if mode == "fp16" and device.type != "cuda":
        raise TrainConfigError("train.mixed_precision: fp16 needs a CUDA device; use 'no' (or 'bf16') on CPU")
    if mode == "fp16" and strategy == "fsdp":
        raise TrainConfigError(
            "train.mixed_precision: fp16 is not supported with train.distributed: fsdp; use bf16 (or 'no')"
        )
    return torch.bfloat16 if mode == "bf16" else torch.float16


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
        self.progress = None
        self.progress_task = None

    # -- messages -------------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        if not self.env.is_main:
            return
        if self.progress is not None:
            self.progress.console.print(f"[kronos train] {msg}", markup=False, highlight=False, soft_wrap=True)
        else:
            print(f"[kronos train] {msg}", file=sys.stderr, flush=True)

    # -- setup ----------------------------------------------------------------------------------
    def setup(self) -> None:
        cfg, t, env = self.cfg, self.t, self.env
        if env.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            for stale in remove_stale_temp_dirs(self.out):
                self.log(f"removed {stale.name}, left by an interrupted run")
        dd.barrier(env)
        self.corpus = prepare_corpus(cfg, env, log=self.log)
        self.train_set = WindowDataset(self.corpus, "train", clip=cfg.data.clip)
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
        self.dtype = _mixed_precision(t.mixed_precision, env.device, t.distributed if env.distributed else "ddp")

        # Identical initial weights on every rank (FSDP does not broadcast), then per-rank randomness.
        _seed_all(cfg.seed)
        self.task: Task = make_task(self.kind, cfg, env.device)
        module = self.task.build_model()
        self.model_config = self.task.model_config(module)
        self.n_params = sum(p.numel() for p in module.parameters() if p.requires_grad)
        self.model = dd.wrap_model(module, env, t.distributed)
        _seed_all(cfg.seed + 7919 * (env.rank + 1))

        params = [p for p in self.model.parameters() if p.requires_grad]
        fused = env.device.type == "cuda" and t.distributed == "ddp"
        self.optimizer = torch.optim.AdamW(
            params,
            lr=t.lr,
            betas=(t.betas[0], t.betas[1]),
            eps=t.eps,
            weight_decay=t.weight_decay,
            **({"fused": True} if fused else {}),
        )
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer,
            max_lr=t.lr,
            total_steps=max(self.total_steps, 2),
            pct_start=t.pct_start,
            div_factor=t.div_factor,
            final_div_factor=t.final_div_factor,
            cycle_momentum=False,
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)
        self.state = TrainerState(kind=self.kind, global_batch=self.global_batch, world_size=env.world_size)
        self.state.extra["total_steps"] = self.total_steps
        self.metrics = MetricsLogger(self.out, self.task.metrics, enabled=env.is_main, tensorboard=t.tensorboard)
        self.validations: list[dict[str, float]] = []
        self.initial_val: dict[str, float] | None = None
        self._resume_if_any()
        self.metrics.resume(self.state.step)
        if env.is_main:
            atomic_write_text(self.out / "config.yaml", dump_config(cfg))
        self.train_sampler = RandomWindowSampler(
            len(self.train_set),
            self.steps_per_epoch * self.global_batch,
            seed=cfg.seed,
            rank=env.rank,
            world_size=env.world_size,
        )
        self.val_sampler = EvalWindowSampler(len(self.val_set), t.val_samples, rank=env.rank, world_size=env.world_size)
        self.log(
            f"{self.kind}: {self.n_params:,} trainable parameters on {env.world_size} process(es) ({env.device}, "
            f"{t.distributed if env.distributed else 'single'}), precision {self.dtype or torch.float32}; "
            f"{len(self.train_set):,} train / {len(self.val_set):,} val windows of {self.corpus.window} bars; "
            f"global batch {self.global_batch}, {self.steps_per_epoch} steps/epoch, {self.total_steps} steps"
        )

    def _resume_if_any(self) -> None:
        mode = self.t.resume
        last = self.out / "last"
        if mode == "never":
            if last.exists() or (self.out / ".last.old").exists():
                raise TrainingError(
                    f"{self.out} already holds a training checkpoint (last/); set train.resume: auto to continue it, "
                    f"or choose a new output_dir"
                )
            return
        folder = last if mode == "auto" else Path(mode).expanduser()
        if mode == "auto" and not (last.exists() or (self.out / ".last.old").exists()):
            return
        try:
            payload, folder = load_trainer_state(folder)
        except CheckpointError as exc:
            raise TrainingError(f"train.resume: {exc}") from None
        saved = payload["trainer"]
        if saved["kind"] != self.kind:
            raise TrainingError(f"{folder} is a {saved['kind']} checkpoint; this is {self.kind} training")
        if saved["global_batch"] != self.global_batch:
            raise TrainingError(
                f"{folder} was trained with a global batch of {saved['global_batch']} (batch_size x "
                "accumulation_steps x processes); "
                f"this run has {self.global_batch}. Resume with the same setting, or fine-tune from it with "
                f"model.init: {folder}"
            )
        if saved.get("extra", {}).get("total_steps") != self.total_steps:
            raise TrainingError(
                f"{folder} was scheduled for {saved.get('extra', {}).get('total_steps')} steps, the config now "
                f"gives {self.total_steps}; "
                f"resume with the same epochs/max_steps/steps_per_epoch, or fine-tune from it with model.init: {folder}"
            )
        from safetensors.torch import load_file

        weights = load_file(str(folder / "model.safetensors"))
        dd.load_model_state(self.model, weights)
        dd.load_optimizer_state(self.model, self.optimizer, payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        if payload.get("scaler"):
            self.scaler.load_state_dict(payload["scaler"])
        self.state = TrainerState(**saved)
        rng = payload.get("rng") or []
        if len(rng) == self.env.world_size:
            restore_rng(rng[self.env.rank])
        else:
            self.log(
                f"checkpoint holds RNG states of {len(rng)} process(es), this run has {self.env.world_size}: "
                "RNG reseeded"
            )
        self.initial_val = saved.get("extra", {}).get("initial_val")
        self.validations = list(saved.get("extra", {}).get("validations", []))
        self.log(
            f"resumed from {folder} at step {self.state.step} (epoch {self.state.epoch}, position "
            f"{self.state.epoch_position})"
        )

    # -- loaders --------------------------------------------------------------------------------
    def _loader(self, dataset: WindowDataset, sampler: Any, batch_size: int) -> DataLoader:
        t = self.t
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=t.num_workers,
            drop_last=False,
            pin_memory=self.env.device.type == "cuda",
            persistent_workers=False,
            prefetch_factor=4 if t.num_workers > 0 else None,
            # A private generator: creating a loader must not draw from the global RNG, or a resumed
            # run would diverge from an uninterrupted one.
            generator=torch.Generator().manual_seed(self.cfg.seed),
        )

    def _to_device(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        dev = self.env.device
        return {"x": batch["x"].to(dev, non_blocking=True), "stamp": batch["stamp"].to(dev, non_blocking=True)}

    def _autocast(self) -> Any:
        if self.dtype is None:
            return torch.autocast(device_type=self.env.device.type, enabled=False)
        return torch.autocast(device_type=self.env.device.type, dtype=self.dtype)

    # -- validation -----------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        env = self.env
        names = ("loss", *self.task.metrics)
        sums = torch.zeros(len(names) + 1, dtype=torch.float64)
        loader = self._loader(self.val_set, self.val_sampler, self.t.val_batch_size or self.t.batch_size)
        with self.task.eval_mode(self.model):
            for batch in loader:
                b = self._to_device(batch)
                with self._autocast():
                    terms = self.task.eval_metrics(self.model, b)
                n = b["x"].shape[0]
                for i, name in enumerate(names):
                    sums[i] += float(terms[name]) * n
                sums[-1] += n
        sums = dd.all_reduce_sum(sums, env)
        count = float(sums[-1])
        return {name: float(sums[i]) / count for i, name in enumerate(names)} | {"samples": count}

    def _after_validation(self, val: dict[str, float]) -> bool:
        """Record a validation; save ``best/`` when it improves. Returns True when training should stop."""
        st, t = self.state, self.t
        self.validations.append({"step": st.step, **val})
        self.metrics.log("val", st.step, st.epoch, val)
        metric = val[self.task.select]
        improved = metric < st.best_metric - t.early_stopping_min_delta
        if not math.isfinite(metric):
            raise TrainingError(
                f"validation {self.task.select} is {metric} at step {st.step}; lower train.lr or check the data"
            )
        if improved or st.best_step < 0:
            st.best_metric, st.best_step = metric, st.step
            st.bad_validations = 0
            self._save_best()
        elif st.step > 0:
            st.bad_validations += 1
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
    def _save_best(self) -> None:
        state = dd.full_model_state(self.model)
        if self.env.is_main:
            save_model_dir(self.out / "best", self.model_config, state)
        dd.barrier(self.env)

    def save_last(self) -> None:
        env = self.env
        model_state = dd.full_model_state(self.model)
        optim_state = dd.optimizer_state(self.model, self.optimizer)
        rngs = dd.gather_objects(capture_rng(), env)
        if env.is_main:
            self.state.extra["initial_val"] = self.initial_val
            self.state.extra["validations"] = self.validations
            save_checkpoint(
                self.out / "last",
                model_config=self.model_config,
                model_state=model_state,
                trainer=self.state,
                optimizer=optim_state,
                scheduler=self.scheduler.state_dict(),
                scaler=self.scaler.state_dict(),
                rng=rngs,
                run_config_yaml=dump_config(self.cfg),
            )
            self.metrics.flush()
        dd.barrier(env)

    def _write_predictor_bundle(self) -> None:
        """``<output_dir>/predictor/``: best model, tokenizer and predictor.json, for ``from_pretrained``."""
        if not self.env.is_main or not isinstance(self.task, PredictorTask) or not (self.out / "best").is_dir():
            return
        import json

        target = self.out / "predictor"
        tmp = new_temp_dir(target)
        try:
            shutil.copytree(self.out / "best", tmp / "model")
            self.task.tokenizer.save_pretrained(tmp / "tokenizer")
            atomic_write_text(
                tmp / "predictor.json",
                json.dumps({"max_context": self.cfg.model.max_context, "clip": self.cfg.data.clip}, indent=2) + "\n",
            )
            replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    # -- the loop -------------------------------------------------------------------------------
    def _start_progress(self) -> None:
        if not (self.env.is_main and self.t.progress):
            return
        from kronos.core.progress import progress_bar

        self.progress = progress_bar(info=True, stderr=True)
        self.progress.start()
        self.progress_task = self.progress.add_task(
            f"{self.kind}", total=self.total_steps, completed=self.state.step, info=""
        )

    def _stop_progress(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def run(self) -> TrainResult:
        st, t, env = self.state, self.t, self.env
        stopped_early = False
        if st.finished:
            self.log(f"{self.out} holds a finished run (step {st.step}); nothing to do")
            return self._result(stopped_early=False)
        self._start_progress()
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
                self.optimizer.zero_grad(set_to_none=True)
                for batch in loader:
                    b = self._to_device(batch)
                    micro += 1
                    sync = micro % t.accumulation_steps == 0
                    with dd.gradient_sync(self.model, sync):
                        with self._autocast():
                            loss, terms = self.task.train_loss(self.model, b)
                        self.scaler.scale(loss / t.accumulation_steps).backward()
                    sums += torch.stack([terms[n].detach().double() for n in names]) / t.accumulation_steps
                    if not sync:
                        continue
                    if t.grad_clip is not None:
                        self.scaler.unscale_(self.optimizer)
                        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
                        grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                    self.scheduler.step()
                    self.optimizer.zero_grad(set_to_none=True)
                    st.step += 1
                    st.epoch_position += self.global_batch
                    n_logged += 1
                    if self.progress is not None:
                        self.progress.update(self.progress_task, advance=1)
                    if (
                        st.step % t.log_every == 0
                        or st.step == self.total_steps
                        or st.epoch_position >= self.steps_per_epoch * self.global_batch
                    ):
                        avg = (dd.all_reduce_sum(sums, env) / (n_logged * env.world_size)).cpu()
                        values = {name: float(avg[i]) for i, name in enumerate(names)}
                        if self.progress is not None:
                            self.progress.update(self.progress_task, info=f"epoch {epoch} loss {values['loss']:.4f}")
                        if not all(math.isfinite(v) for v in values.values()):
                            raise TrainingError(
                                f"training loss became non-finite by step {st.step} ({values}); lower "
                                "train.lr, keep train.grad_clip, "
                                f"or check the data"
                            )
                        now = time.perf_counter()
                        values.update(
                            lr=self.scheduler.get_last_lr()[0],
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
            self._stop_progress()
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
