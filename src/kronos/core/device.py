"""Device and precision choices, made in one place."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["PRECISIONS", "DeviceError", "autocast", "resolve_device"]

PRECISIONS = ("fp32", "bf16", "fp16")


class DeviceError(ValueError):
    """A device name that is malformed or not available in this PyTorch build or on this machine."""


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, or the best available one: CUDA, then Apple MPS, then CPU.

    A named device must exist: ``cuda`` on a CPU-only PyTorch build (or with no GPU visible), ``mps``
    off Apple silicon, or a CUDA index beyond the GPUs present raise :class:`DeviceError` saying so,
    instead of failing later deep inside PyTorch.
    """
    if device is not None:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise DeviceError(
                f"device {device!r} is not a valid PyTorch device name ({exc}); use cpu, cuda, cuda:N or mps"
            ) from None
        if dev.type == "cuda":
            if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
                raise DeviceError(
                    f"device {device!r}: CUDA is not available in this PyTorch build ({torch.__version__}, "
                    "CPU-only); use cpu or install a CUDA build"
                )
            if not torch.cuda.is_available():
                raise DeviceError(f"device {device!r}: this PyTorch build supports CUDA but no CUDA GPU is visible")
            if dev.index is not None and dev.index >= torch.cuda.device_count():
                raise DeviceError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible")
        elif dev.type == "mps":
            mps = getattr(torch.backends, "mps", None)
            if mps is None or not mps.is_available():
                raise DeviceError(f"device {device!r}: Apple MPS is not available on this machine or PyTorch build")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast(device: torch.device, precision: str = "fp32") -> contextlib.AbstractContextManager:
    """Mixed-precision context for inference: bf16/fp16 autocast on CUDA, nothing otherwise.

    On CPU and MPS reduced precision is not used (it is slower or unsupported there), so fp32 is kept.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32" or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
