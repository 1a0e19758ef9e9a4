"""Window embeddings: the model's final hidden states over a window, pooled into one vector.

A pretrained Kronos summarises the market state it has read in its hidden states; pooling them gives
a fixed-size vector per window for clustering, regime detection, nearest-neighbour search or as
features for a downstream model. Windows are normalised on their own (as for forecasting), so the
embedding describes the *shape* of the window, not its price level.

Model code only: tensors in, tensors out.
"""

from __future__ import annotations

import torch

from kronos.model.kronos import Kronos

__all__ = ["POOLING", "pooled_hidden_states"]

POOLING: tuple[str, ...] = ("mean", "last", "max")


@torch.no_grad()
def pooled_hidden_states(
    model: Kronos,
    s1: torch.Tensor,
    s2: torch.Tensor,
    stamp: torch.Tensor | None = None,
    *,
    pool: str = "mean",
    padding_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(B, d_model)`` pooled final hidden states of token windows ``(B, T)``.

    ``pool``: ``mean`` over positions (a summary of the whole window), ``last`` (the state the next
    bar would be predicted from) or ``max`` (per dimension). Positions where ``padding_mask`` is True
    are ignored.
    """
    if pool not in POOLING:
        raise ValueError(f"pool must be one of {POOLING}, got {pool!r}")
    was_training = model.training
    model.eval()
    try:
        h = model.hidden_states(s1, s2, stamp, padding_mask).float()
    finally:
        model.train(was_training)
    valid = torch.ones(h.shape[:2], dtype=torch.bool, device=h.device) if padding_mask is None else ~padding_mask.bool()
    if pool == "mean":
        w = valid.float().unsqueeze(-1)
        return (h * w).sum(1) / w.sum(1).clamp_min(1.0)
    if pool == "max":
        return h.masked_fill(~valid.unsqueeze(-1), float("-inf")).amax(1)
    last = valid.long().cumsum(1).argmax(1)  # index of the last valid position
    return h[torch.arange(h.shape[0], device=h.device), last]
