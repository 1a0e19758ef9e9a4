"""The error a training run stops with when it cannot go on.

Its own module because both the loop (:mod:`kronos.training.trainer`) and resuming from a checkpoint
(:mod:`kronos.training.checkpoint`) raise it; ``kronos.training`` and the trainer re-export it.
"""

from __future__ import annotations

__all__ = ["TrainingError"]


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, incompatible checkpoint, too little data)."""
