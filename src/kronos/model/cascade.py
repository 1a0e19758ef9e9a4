"""Cascade attention: many rows that share a prefix (the sample paths of one series) attend over it at once.

Attention over keys ``[prefix, own]`` equals the merge of attention over ``prefix`` and over ``own``,
each weighted by its share of the softmax mass (its log-sum-exp). The prefix part is computed once per
series with all its rows' queries stacked as one block, so its keys and values are read once per series
and never copied per row: the memory traffic of a decode step no longer grows with the number of paths
times the history length. Model code only: tensors in, tensors out.
"""

from __future__ import annotations

import torch

__all__ = ["attention_with_lse", "shared_prefix_attention"]

#: Up to this many keys, a single query per row is computed with broadcast products.
_FEW_KEYS = 32
_cpu_flash = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


def attention_with_lse(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention ``(B, H, T, hd)`` and its log-sum-exp ``(B, H, T, 1)`` (scale ``hd ** -0.5``).

    ``bias`` is added to the scores (``-inf`` masks a key); it broadcasts to ``(B, H, T, S)``. There
    must be at least one key; keys and values are cast to the queries' type, as autocast does. On CPU
    this is PyTorch's fused flash kernel, which returns the log-sum-exp it computes anyway; elsewhere
    two matrix products.
    """
    if k.shape[-2] == 0:
        raise ValueError("attention needs at least one key")
    k, v = k.to(q.dtype), v.to(q.dtype)  # under autocast the cache may hold a wider type than the queries
    if q.shape[-2] == 1 and k.shape[-2] <= _FEW_KEYS and bias is None:
        # One query per row over a few keys (a path's own generated bars): broadcast products beat a
        # kernel launch per row.
        scores = (q * q.shape[-1] ** -0.5 * k).sum(dim=-1, keepdim=True).float()  # (B, H, S, 1)
        lse = torch.logsumexp(scores, dim=-2, keepdim=True)
        out = (torch.exp(scores - lse).to(v.dtype) * v).sum(dim=-2, keepdim=True)
        return out, lse.view(*q.shape[:-1], 1)
    if _cpu_flash is not None and q.device.type == "cpu" and q.dtype in (torch.float32, torch.bfloat16):
        if bias is not None:
            bias = bias.to(q.dtype).expand(q.shape[0], -1, -1, -1)
        out, lse = _cpu_flash(q, k, v, 0.0, False, attn_mask=bias)
        return out, lse.unsqueeze(-1).to(torch.float32)
    scores = torch.matmul(q, k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    if bias is not None:
        scores = scores + bias
    lse = torch.logsumexp(scores.float(), dim=-1, keepdim=True)
    return torch.matmul(torch.exp(scores.float() - lse).to(v.dtype), v), lse


def _bias(valid: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return torch.zeros(valid.shape, dtype=dtype, device=valid.device).masked_fill(~valid, float("-inf"))


def shared_prefix_attention(
    q: torch.Tensor,
    prefix_k: torch.Tensor,
    prefix_v: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    prefix_valid: torch.Tensor | None = None,
    causal: bool = True,
) -> torch.Tensor:
    """Attention of ``q`` over a prefix shared by groups of rows, then each row's own keys.

    ``q`` ``(rows, H, T, hd)`` with ``rows = series * group`` (a series' rows adjacent);
    ``prefix_k/v`` ``(series, H, P, hd)``; ``k/v`` ``(rows, H, L, hd)`` the row's own keys after the
    prefix, of which the queries are the last ``T`` (causal among them when ``causal``; every query
    sees the whole prefix). ``prefix_valid`` ``(series, P)`` masks padded prefix positions. Equals
    attention over the concatenated keys up to floating-point rounding.
    """
    rows, heads, t, hd = q.shape
    series = prefix_k.shape[0]
    group = rows // series
    qp = q.view(series, group, heads, t, hd).transpose(1, 2).reshape(series, heads, group * t, hd)
    bias = None if prefix_valid is None else _bias(prefix_valid[:, None, None, :], q.dtype)
    out_p, lse_p = attention_with_lse(qp, prefix_k, prefix_v, bias)
    out_p = out_p.view(series, heads, group, t, hd).transpose(1, 2)
    lse_p = lse_p.view(series, heads, group, t, 1).transpose(1, 2)
    n = k.shape[-2]
    if n == 0:
        return out_p.reshape(rows, heads, t, hd)
    own_bias = None
    if causal and t > 1:
        q_idx = torch.arange(n - t, n, device=q.device).unsqueeze(-1)
        own_bias = _bias((torch.arange(n, device=q.device).unsqueeze(0) <= q_idx)[None, None], q.dtype)
    out_s, lse_s = attention_with_lse(q, k, v, own_bias)
    out_s = out_s.view(series, group, heads, t, hd)
    # The prefix's share of the softmax mass: exp(lse_p) / (exp(lse_p) + exp(lse_s)).
    w = torch.sigmoid(lse_p - lse_s.view(series, group, heads, t, 1)).to(out_s.dtype)
    return (out_s + w * (out_p - out_s)).reshape(rows, heads, t, hd)
