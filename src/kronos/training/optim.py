"""The optimisation recipe of the original Kronos fine-tuning, for one model.

AdamW (betas 0.9/0.95, weight decay 0.1 by default; fused on CUDA under DDP), a one-cycle learning-rate
schedule without momentum cycling (or warm-up / stable / decay), gradient-norm clipping, and mixed
precision: bf16 autocast on GPUs that have it, else fp16 with a loss-scaling :class:`~torch.amp.GradScaler`.
The trainer drives the steps (accumulation, validation, checkpoints); this module decides what one step does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from kronos.training.schema import TrainConfig, TrainConfigError

__all__ = ["Optimization", "autocast_dtype", "wsd_factor"]


def autocast_dtype(mode: str, device: torch.device, strategy: str = "ddp") -> torch.dtype | None:
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


def wsd_factor(total_steps: int, warmup: float, decay: float, final_div: float) -> Callable[[int], float]:
    """The warm-up / stable / decay multiplier of the peak rate at each step.

    Linear from ``1/total`` of the rate to the full rate over the first ``warmup`` fraction of the steps,
    constant, then linear down to ``1/final_div`` over the last ``decay`` fraction (Hu et al. 2024, MiniCPM).
    """
    n_warm = max(int(round(total_steps * warmup)), 1)
    n_decay = max(int(round(total_steps * decay)), 1)
    start_decay = total_steps - n_decay
    floor = 1.0 / final_div

    def factor(step: int) -> float:
        if step < n_warm:
            return (step + 1) / n_warm
        if step < start_decay:
            return 1.0
        frac = min((step - start_decay) / n_decay, 1.0)
        return 1.0 - (1.0 - floor) * frac

    return factor


class Optimization:
    """The optimiser, schedule and loss scaler of one (possibly wrapped) model, and what a step does with them.

    ``dtype`` is :func:`autocast_dtype`'s answer (decided before the model is built, so a bad setting fails
    early); ``total_steps`` is the length of the one-cycle schedule.
    """

    def __init__(
        self, model: nn.Module, t: TrainConfig, device: torch.device, dtype: torch.dtype | None, total_steps: int
    ) -> None:
        self.model, self.device, self.dtype, self.grad_clip = model, device, dtype, t.grad_clip
        params = [p for p in model.parameters() if p.requires_grad]
        fused = device.type == "cuda" and t.distributed == "ddp"
        self.optimizer = torch.optim.AdamW(
            params,
            lr=t.lr,
            betas=(t.betas[0], t.betas[1]),
            eps=t.eps,
            weight_decay=t.weight_decay,
            **({"fused": True} if fused else {}),
        )
        if t.schedule == "wsd":
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.optimizer, wsd_factor(max(total_steps, 2), t.pct_start, t.decay_fraction, t.final_div_factor)
            )
        else:
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer,
                max_lr=t.lr,
                total_steps=max(total_steps, 2),
                pct_start=t.pct_start,
                div_factor=t.div_factor,
                final_div_factor=t.final_div_factor,
                cycle_momentum=False,
            )
        self.scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The context to run forward passes in (mixed precision, or explicitly none)."""
        if self.dtype is None:
            return torch.autocast(device_type=self.device.type, enabled=False)
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """Accumulate the gradients of ``loss`` (scaled when training in fp16)."""
        self.scaler.scale(loss).backward()

    def step(self) -> float | None:
        """Clip, apply and clear the accumulated gradients and advance the schedule; the gradient norm if clipped."""
        grad_norm = None
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return grad_norm

    @property
    def lr(self) -> float:
        """The learning rate of the next step."""
        return self.scheduler.get_last_lr()[0]
