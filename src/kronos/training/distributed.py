"""Process-group setup for ``torchrun`` (single node or multi-node rendezvous), DDP and FSDP wrapping.

The same entry points run alone or under ``torchrun``: when ``WORLD_SIZE`` > 1 is in the environment
(torchrun sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``), the default
process group is initialised with NCCL on CUDA and gloo on CPU, each process takes the GPU of its
local rank, and the model is wrapped in DistributedDataParallel or FSDP (``fully_shard`` per
transformer block, for models that do not fit one device).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

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


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job and which device it computes on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_local_main(self) -> bool:
        return self.local_rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise RuntimeError(f"environment variable {name}={raw!r} is not an integer") from None


def setup_distributed(device: str = "auto", *, timeout_minutes: float = 60.0) -> DistEnv:
    """Initialise the process group when launched by torchrun; pick this process's device.

    ``device``: ``auto`` (the local rank's GPU when CUDA is available, else CPU), ``cpu``, ``cuda`` or
    ``cuda:N`` (single-process only). The timeout is long because rank 0 may build the data corpus
    while the others wait.
    """
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError(f"train.device is {device!r} but CUDA is not available on this machine")
    if use_cuda:
        if world > 1 or device in ("auto", "cuda"):
            dev = torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
        else:
            dev = torch.device(device)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    backend = None
    if world > 1:
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if not dist.is_initialized():
            kwargs: dict[str, Any] = {"backend": backend, "timeout": datetime.timedelta(minutes=timeout_minutes)}
            if dev.type == "cuda":
                kwargs["device_id"] = dev
            dist.init_process_group(**kwargs)
        rank, world = dist.get_rank(), dist.get_world_size()
    return DistEnv(rank=rank, world_size=world, local_rank=local_rank, device=dev, backend=backend)


def teardown_distributed(env: DistEnv) -> None:
    """Destroy the process group this module created (no-op when single-process)."""
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    """Wait for every rank (no-op when single-process)."""
    if env.distributed:
        if env.backend == "nccl":
            dist.barrier(device_ids=[env.device.index])
        else:
            dist.barrier()


def all_reduce_sum(values: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Sum a tensor over ranks (returned on the input's device)."""
    if not env.distributed:
        return values
    out = values.detach().to(env.device, copy=True)
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.to(values.device)


def broadcast_object(obj: Any, env: DistEnv, src: int = 0) -> Any:
    """Rank ``src``'s Python object on every rank (small control values only)."""
    if not env.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=env.device if env.backend == "nccl" else None)
    return box[0]


def gather_objects(obj: Any, env: DistEnv) -> list[Any]:
    """Every rank's ``obj`` as a list indexed by rank (on every rank)."""
    if not env.distributed:
        return [obj]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


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

        from kronos.blocks import TransformerBlock

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
