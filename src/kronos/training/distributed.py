"""DDP and FSDP wrapping for training under ``torchrun``, and the model/optimizer state across ranks.

The process group itself (rank, device, barriers, collectives) is :mod:`kronos.core.distributed`, re-exported
here so a training run needs one import. The model is wrapped in DistributedDataParallel or FSDP
(``fully_shard`` per transformer block, for models that do not fit one device).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from kronos.core.distributed import (
    DistEnv,
    all_reduce_sum,
    barrier,
    broadcast_object,
    gather_objects,
    setup_distributed,
    teardown_distributed,
)

__all__ = [
    "DistEnv",
    "all_reduce_sum",
    "barrier",
    "broadcast_object",
    "full_model_state",
    "gather_objects",
    "gradient_sync",
    "setup_distributed",
    "teardown_distributed",
    "unwrap",
    "wrap_model",
]


def _is_fsdp(model: nn.Module) -> bool:
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # pragma: no cover - very old torch
        return False
    return isinstance(model, FSDPModule)


def wrap_model(model: nn.Module, env: DistEnv, strategy: str = "ddp") -> nn.Module:
    """Move ``model`` to the device and wrap it for data-parallel training.

    ``ddp``: DistributedDataParallel (parameters replicated; rank 0's weights are broadcast at
    construction). ``fsdp``: ``fully_shard`` on every transformer block and on the root, so
    parameters, gradients and optimiser state are sharded across ranks (every rank must build the
    same initial weights: the trainer seeds all ranks alike before construction).
    """
    model = model.to(env.device)
    if not env.distributed:
        return model
    if strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP

        if env.device.type == "cuda":
            return DDP(model, device_ids=[env.device.index], output_device=env.device.index)
        return DDP(model)
    if strategy == "fsdp":
        import warnings

        from torch.distributed.fsdp import fully_shard

        from kronos.model.blocks import TransformerBlock

        # FSDP2 warns when a wrapped module returns a view (the logits are views); the trainer never
        # modifies model outputs in place, which is what the warning is about.
        warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module .* returned a view tensor")

        for module in list(model.modules()):
            if isinstance(module, TransformerBlock):
                fully_shard(module)
        fully_shard(model)
        return model
    raise ValueError(f"unknown distributed strategy {strategy!r}; expected 'ddp' or 'fsdp'")


def unwrap(model: nn.Module) -> nn.Module:
    """The user module inside a DDP wrapper (FSDP2 modules are the user module itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def gradient_sync(model: nn.Module, sync: bool) -> contextlib.AbstractContextManager[None]:
    """Context in which backward does (``sync``) or does not all-reduce gradients (accumulation steps)."""
    if sync:
        return contextlib.nullcontext()
    if isinstance(model, nn.parallel.DistributedDataParallel):
        return model.no_sync()
    if _is_fsdp(model):
        return _fsdp_no_sync(model)
    return contextlib.nullcontext()


@contextlib.contextmanager
def _fsdp_no_sync(model: nn.Module) -> Iterator[None]:
    model.set_requires_gradient_sync(False)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)  # type: ignore[attr-defined]


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The full (unsharded) state dict on CPU, on every rank (collective under FSDP: call on all ranks)."""
    if _is_fsdp(model):
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
        )

        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=False))
        return {k: (v.full_tensor() if hasattr(v, "full_tensor") else v).detach().cpu() for k, v in state.items()}
    return {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}


def optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Optimiser state to save (collective under FSDP: gathered to full tensors keyed by parameter name)."""
    if _is_fsdp(model):
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_optimizer_state_dict,
        )

        return get_optimizer_state_dict(
            model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
    return optimizer.state_dict()


def load_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Inverse of :func:`optimizer_state` (collective under FSDP)."""
    if _is_fsdp(model):
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_optimizer_state_dict,
        )

        set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))
        return
    optimizer.load_state_dict(state)


def load_model_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a full state dict into a (possibly wrapped or sharded) model (collective under FSDP)."""
    if _is_fsdp(model):
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
        )

        set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True))
        return
    unwrap(model).load_state_dict(state)
