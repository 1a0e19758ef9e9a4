"""Checkpoints: the best model in the hub layout, and resumable training state.

``<output_dir>/best/`` is exactly what ``Kronos.from_pretrained`` / ``KronosTokenizer.from_pretrained``
read: ``config.json`` + ``model.safetensors``.

``<output_dir>/last/`` holds everything needed to continue a run where it stopped:

* ``config.json`` + ``model.safetensors``: the current weights (also loadable with ``from_pretrained``);
* ``trainer_state.pt``: optimiser, scheduler and grad-scaler state, every rank's RNG states, the step,
  epoch and position inside the epoch's window order, the best metric so far and the early-stopping
  counter. It is written with ``torch.save`` but holds only tensors and plain Python values, and is
  read back with ``torch.load(weights_only=True)``: nothing is ever unpickled.

Both folders are written under a temporary name and swapped in (see :mod:`kronos.core.files`), so an
interrupted save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from kronos.core.files import atomic_write_text, new_temp_dir, recover_dir, replace_dir
from kronos.model.hub import CONFIG_NAME, WEIGHTS_NAME

__all__ = [
    "STATE_NAME",
    "CheckpointError",
    "TrainerState",
    "capture_rng",
    "load_trainer_state",
    "restore_rng",
    "save_checkpoint",
    "save_hub_layout",
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
        return dict(self.__dict__)


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


def save_hub_layout(directory: Path, config: dict[str, Any], state: dict[str, torch.Tensor]) -> None:
    """Write ``config.json`` and ``model.safetensors`` into ``directory`` (which must exist)."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
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
        import shutil

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
        torch.save(payload, tmp / STATE_NAME)
        atomic_write_text(tmp / "run_config.yaml", run_config_yaml)
        return replace_dir(tmp, target)
    except BaseException:
        import shutil

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
        raise CheckpointError(f"{path}: cannot be read safely ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT:
        raise CheckpointError(
            f"{path}: unknown trainer state format "
            f"{payload.get('format') if isinstance(payload, dict) else type(payload)!r}"
        )
    return payload, Path(found)
