"""What the non-forecasting tasks need from a loaded model: the model, its tokenizer and how inputs are normalised.

Why a separate object: anomaly scores, embeddings and synthesis tokenise and normalise exactly as
forecasting does, but they have no use for a predictor's sampling machinery. They take this small
frozen value (``KronosPredictor.components`` builds it) instead of reading a predictor's attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from kronos.bars.normalizer import Normalizer
from kronos.model.kronos import Kronos
from kronos.model.tokenizer import KronosTokenizer

__all__ = ["Components"]


@dataclass(frozen=True)
class Components:
    """A model and tokenizer on ``device``, the context the model attends to and the clip of normalised inputs."""

    model: Kronos
    tokenizer: KronosTokenizer
    device: torch.device
    max_context: int
    clip: float

    def normalizer(self, x: np.ndarray) -> Normalizer:
        """A :class:`Normalizer` fitted to feature rows ``x`` (float32 statistics, as forecasting uses)."""
        return Normalizer.fit(np.asarray(x).astype(np.float32), clip=self.clip)

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        """``array`` as a float32 tensor on the model's device."""
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(self.device)
