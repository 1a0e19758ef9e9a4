"""Next-token sampling as small pure functions: temperature, then top-k, then top-p, then one draw.

No function edits the caller's tensor. The filters reproduce the original's numbers exactly so that a
seeded run consumes random draws in the same order and gets the same tokens. Settings arrive validated
(:class:`kronos.inference.options.SamplingOptions`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["logits_to_probs", "sample", "sample_from_uniform", "top_k_filter", "top_p_filter"]


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits of each row (ties with the k-th kept), the rest become -inf."""
    k = min(max(k, 1), logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def _removed_sorted(sorted_logits: torch.Tensor, p: float) -> torch.Tensor:
    cumulative = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
    remove_sorted = cumulative > p
    # Shift right so the token that crosses p is kept; the most likely token is always kept.
    return torch.cat([torch.zeros_like(remove_sorted[..., :1]), remove_sorted[..., :-1]], dim=-1)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability reaches ``p`` (the top token always).

    The same tokens as sorting with ``torch.sort`` (the original). On CPU the order comes from NumPy's
    sort, several times faster on many rows; the kept set can depend on the order of equal logits only
    where equal logits straddle the cut, and such rows are re-sorted with ``torch.sort``.
    """
    if logits.device.type != "cpu" or logits.dim() != 2 or logits.requires_grad:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        remove_sorted = _removed_sorted(sorted_logits, p)
        return logits.masked_fill(remove_sorted.scatter(-1, order, remove_sorted), float("-inf"))
    order = torch.from_numpy(np.argsort(-logits.detach().numpy(), axis=-1))
    sorted_logits = logits.gather(-1, order)
    remove_sorted = _removed_sorted(sorted_logits, p)
    kept = (~remove_sorted).sum(dim=-1, keepdim=True)
    last_kept = sorted_logits.gather(-1, kept - 1)
    first_removed = sorted_logits.gather(-1, kept.clamp(max=logits.shape[-1] - 1))
    tied = ((last_kept == first_removed) & (kept < logits.shape[-1])).flatten().nonzero().flatten()
    if len(tied):
        s, o = torch.sort(logits[tied], descending=True, dim=-1)
        order[tied], remove_sorted[tied] = o, _removed_sorted(s, p)
    return logits.masked_fill(remove_sorted.scatter(-1, order, remove_sorted), float("-inf"))


def logits_to_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Sampling distribution: ``logits / T``; top-k if ``top_k > 0`` (then top-p is ignored), else top-p if < 1."""
    logits = logits / temperature
    if top_k > 0:
        logits = top_k_filter(logits, top_k)
    elif top_p < 1.0:
        logits = top_p_filter(logits, top_p)
    return F.softmax(logits, dim=-1)


def sample(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token per row ``(B, 1)`` drawn with ``torch.multinomial`` from the filtered distribution."""
    return torch.multinomial(logits_to_probs(logits, temperature, top_k, top_p), num_samples=1, generator=generator)


def sample_from_uniform(
    logits: torch.Tensor, uniform: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0
) -> torch.Tensor:
    """One token per row ``(B, 1)`` by inverse CDF of the filtered distribution at ``uniform`` ``(B,)`` in [0, 1).

    The draw of a row depends only on its own logits and its own uniform, never on the other rows of
    the batch: with uniforms drawn from a per-series generator a series gets the same tokens alone,
    in any batch and in any order (what ``torch.multinomial`` with one shared generator cannot give).
    """
    probs = logits_to_probs(logits, temperature, top_k, top_p).double()
    cdf = probs.cumsum(dim=-1)
    target = (uniform.to(cdf.dtype) * cdf[:, -1]).unsqueeze(-1)
    # right=True: the first token whose cumulative probability exceeds the target; zero-probability
    # tokens (filtered out) can never be chosen.
    return torch.searchsorted(cdf, target, right=True).clamp_(max=logits.shape[-1] - 1)
