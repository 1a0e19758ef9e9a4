"""Checkpoints: the best model in the hub layout, and resumable training state.

``<output_dir>/best/`` is exactly what ``Kronos.from_pretrained`` / ``KronosTokenizer.from_pretrained``
read: ``config.json`` + ``model.safetensors``.

``<output_dir>/last/`` holds everything needed to continue a run where it stopped:

* ``config.json`` + ``model.safetensors``: the current weights (also loadable with ``from_pretrained``);
* ``trainer_state.pt``: optimiser, scheduler and grad-scaler state, every rank's RNG states, the step,
  epoch and position inside the epoch's window order, the best metric so far and the early-stopping
  counter. It is written with ``torch.save`` but holds only tensors and plain Python values, and is
  read back with ``torch.load(weights_only=True)``: nothing is ever unpickled.

``<output_dir>/predictor/`` (predictor runs) bundles ``best/`` with its tokenizer and ``predictor.json``
for ``KronosPredictor.from_pretrained``.

All folders are written under a temporary name and swapped in (see :mod:`kronos.core.files`), so an
interrupted save leaves the previous checkpoint intact. :class:`RunCheckpoints` does this for a running
trainer: it saves ``best/`` and ``last/`` from the live (possibly sharded) model and optimiser, and
resumes from ``last/`` after checking that the checkpoint belongs to the same run.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from kronos.core.files import atomic_write_text, new_temp_dir, recover_dir, replace_dir
from kronos.model.hub import CONFIG_NAME, WEIGHTS_NAME
from kronos.model.registry import write_predictor_settings
from kronos.training import distributed as dd
from kronos.training.errors import TrainingError

__all__ = [
    "STATE_NAME",
    "CheckpointError",
    "RunCheckpoints",
    "TrainerState",
    "capture_rng",
    "load_trainer_state",
    "restore_rng",
    "save_checkpoint",
    "save_hub_layout",
    "save_model_dir",
    "write_predictor_bundle",
]

STATE_NAME = "trainer_state.pt"
STATE_FORMAT = 1


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing, damaged or from an incompatible run."""


@dataclass
class TrainerState:
    """Counters and bookkeeping saved with a resumable checkpoint."""

    kind: str
    step: int = 0
    epoch: int = 0
    epoch_position: int = 0
    best_metric: float = float("inf")
    best_step: int = -1
    bad_validations: int = 0
    global_batch: int = 0
    world_size: int = 1
    finished: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The counters as plain values (what ``trainer_state.pt`` stores)."""
        return dict(self.__dict__)

    def record_validation(self, metric: float, min_delta: float) -> bool:
        """Count a validation's metric (lower is better) at the current step; True when it is the new best.

        The first validation is always the best so far; later ones must beat it by more than ``min_delta``,
        else they count towards early stopping (not at step 0, when nothing has been trained yet).
        """
        if metric < self.best_metric - min_delta or self.best_step < 0:
            self.best_metric, self.best_step = metric, self.step
            self.bad_validations = 0
            return True
        if self.step > 0:
            self.bad_validations += 1
        return False


def capture_rng() -> dict[str, Any]:
    """This process's RNG states (torch CPU and CUDA, numpy, Python) as tensors and plain values."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": _to_plain(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def _to_plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value


def _to_tuple(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_to_tuple(v) for v in value)
    return value


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    random.setstate(_to_tuple(state["python"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def save_hub_layout(directory: Path, config: dict[str, Any], state: dict[str, torch.Tensor]) -> None:
    """Write ``config.json`` and ``model.safetensors`` into ``directory`` (which must exist)."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    try:
        save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
    except Exception as exc:  # safetensors reports a full disk as its own error, naming no file
        raise CheckpointError(f"cannot write {directory / WEIGHTS_NAME}: {_first_line(exc)}") from exc
    atomic_write_text(directory / CONFIG_NAME, json.dumps(config, indent=2, sort_keys=True) + "\n")


def save_model_dir(
    target: Path, config: dict[str, Any], state: dict[str, torch.Tensor], extra_files: dict[str, str] | None = None
) -> Path:
    """Atomically (re)write a hub-layout folder ``target`` with the given weights and text files."""
    tmp = new_temp_dir(target)
    try:
        save_hub_layout(tmp, config, state)
        for name, text in (extra_files or {}).items():
            atomic_write_text(tmp / name, text)
        return replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_checkpoint(
    target: Path,
    *,
    model_config: dict[str, Any],
    model_state: dict[str, torch.Tensor],
    trainer: TrainerState,
    optimizer: dict[str, Any],
    scheduler: dict[str, Any],
    scaler: dict[str, Any],
    rng: list[dict[str, Any]],
    run_config_yaml: str,
) -> Path:
    """Atomically write a resumable checkpoint folder (call on rank 0 with every rank's RNG state)."""
    tmp = new_temp_dir(target)
    try:
        save_hub_layout(tmp, model_config, model_state)
        payload = {
            "format": STATE_FORMAT,
            "trainer": trainer.to_dict(),
            "optimizer": optimizer,
            "scheduler": scheduler,
            "scaler": scaler,
            "rng": rng,
            "config_yaml": run_config_yaml,
        }
        try:
            torch.save(payload, tmp / STATE_NAME)
        except (OSError, RuntimeError) as exc:  # a full disk: torch names no file
            raise CheckpointError(f"cannot write {target / STATE_NAME}: {_first_line(exc)}") from exc
        atomic_write_text(tmp / "run_config.yaml", run_config_yaml)
        return replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_trainer_state(folder: Path) -> tuple[dict[str, Any], Path]:
    """Read ``trainer_state.pt`` of a checkpoint folder safely (``weights_only=True``).

    Returns the payload and the folder actually used (an interrupted save is recovered first).
    """
    found = recover_dir(folder)
    if found is None:
        raise CheckpointError(f"no checkpoint at {folder}")
    path = Path(found) / STATE_NAME
    if not path.is_file():
        raise CheckpointError(f"{found} is not a resumable checkpoint: {STATE_NAME} is missing")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        # torch's own message advises weights_only=False, which would unpickle untrusted data: never repeat it
        raise CheckpointError(
            f"{path}: not a readable trainer state ({type(exc).__name__}; a truncated or corrupt file, or not "
            "written by kronos train): resume from another checkpoint or start afresh"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT:
        raise CheckpointError(
            f"{path}: unknown trainer state format "
            f"{payload.get('format') if isinstance(payload, dict) else type(payload)!r}"
        )
    return payload, Path(found)


def write_predictor_bundle(out: Path, tokenizer: Any, *, max_context: int, clip: float) -> Path:
    """Write ``<out>/predictor/`` for ``from_pretrained``: ``best/`` as ``model/``, tokenizer, ``predictor.json``."""
    target = out / "predictor"
    tmp = new_temp_dir(target)
    try:
        shutil.copytree(out / "best", tmp / "model")
        tokenizer.save_pretrained(tmp / "tokenizer")
        write_predictor_settings(tmp, max_context=max_context, clip=clip)
        return replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class RunCheckpoints:
    """The ``best/`` and ``last/`` checkpoints of one run, saved from and resumed into its live training objects.

    Every method is collective: call it on all ranks (under FSDP the state is gathered from every shard);
    only rank 0 writes.
    """

    def __init__(
        self,
        out: Path,
        env: dd.DistEnv,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        scaler: Any,
        model_config: dict[str, Any],
    ) -> None:
        self.out, self.env, self.model_config = out, env, model_config
        self.model, self.optimizer, self.scheduler, self.scaler = model, optimizer, scheduler, scaler

    def save_best(self) -> None:
        """(Re)write ``best/`` with the current weights, in the hub layout."""
        state = dd.full_model_state(self.model)
        if self.env.is_main:
            save_model_dir(self.out / "best", self.model_config, state)
        dd.barrier(self.env)

    def save_last(self, trainer: TrainerState, run_config_yaml: str) -> None:
        """(Re)write ``last/``: weights, optimiser, scheduler, scaler, every rank's RNG and ``trainer``.

        No barrier at the end: the caller finishes its own bookkeeping on rank 0 first, then waits.
        """
        model_state = dd.full_model_state(self.model)
        optim_state = dd.optimizer_state(self.model, self.optimizer)
        rngs = dd.gather_objects(capture_rng(), self.env)
        if self.env.is_main:
            save_checkpoint(
                self.out / "last",
                model_config=self.model_config,
                model_state=model_state,
                trainer=trainer,
                optimizer=optim_state,
                scheduler=self.scheduler.state_dict(),
                scaler=self.scaler.state_dict(),
                rng=rngs,
                run_config_yaml=run_config_yaml,
            )

    def _resume_folder(self, mode: str) -> Path | None:
        """The checkpoint that ``train.resume`` names (``auto``: ``last/`` if there is one), or None."""
        last = self.out / "last"
        exists = last.exists() or (self.out / ".last.old").exists()
        if mode == "never":
            if exists:
                raise TrainingError(
                    f"{self.out} already holds a training checkpoint (last/); set train.resume: auto to continue it, "
                    f"or choose a new output_dir"
                )
            return None
        if mode == "auto":
            return last if exists else None
        return Path(mode).expanduser()

    def resume(
        self, mode: str, *, kind: str, global_batch: int, total_steps: int, log: Callable[[str], None]
    ) -> TrainerState | None:
        """Load the checkpoint ``mode`` names into the training objects; its counters, or None to start afresh.

        The checkpoint must be of the same kind, global batch and schedule length (else the run it continues
        would not be the one configured: fine-tune from it with ``model.init`` instead). This rank's RNG state
        is restored when the checkpoint has one per process of this run.
        """
        folder = self._resume_folder(mode)
        if folder is None:
            return None
        try:
            payload, folder = load_trainer_state(folder)
        except CheckpointError as exc:
            raise TrainingError(f"train.resume: {exc}") from None
        saved = payload["trainer"]
        if saved["kind"] != kind:
            raise TrainingError(f"{folder} is a {saved['kind']} checkpoint; this is {kind} training")
        if saved["global_batch"] != global_batch:
            raise TrainingError(
                f"{folder} was trained with a global batch of {saved['global_batch']} (batch_size x "
                "accumulation_steps x processes); "
                f"this run has {global_batch}. Resume with the same setting, or fine-tune from it with "
                f"model.init: {folder}"
            )
        if saved.get("extra", {}).get("total_steps") != total_steps:
            raise TrainingError(
                f"{folder} was scheduled for {saved.get('extra', {}).get('total_steps')} steps, the config now "
                f"gives {total_steps}; "
                f"resume with the same epochs/max_steps/steps_per_epoch, or fine-tune from it with model.init: {folder}"
            )
        from safetensors.torch import load_file

        weights = load_file(str(folder / WEIGHTS_NAME))
        dd.load_model_state(self.model, weights)
        dd.load_optimizer_state(self.model, self.optimizer, payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        if payload.get("scaler"):
            self.scaler.load_state_dict(payload["scaler"])
        state = TrainerState(**saved)
        rng = payload.get("rng") or []
        if len(rng) == self.env.world_size:
            restore_rng(rng[self.env.rank])
        else:
            n, world = len(rng), self.env.world_size
            log(f"checkpoint holds RNG states of {n} process(es), this run has {world}: RNG reseeded")
        log(f"resumed from {folder} at step {state.step} (epoch {state.epoch}, position {state.epoch_position})")
        return state
