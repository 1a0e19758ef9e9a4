"""Transformer building blocks shared by the tokenizer and the predictor.

Parameter names are those of the published checkpoints (``norm1``, ``self_attn.q_proj``,
``rotary.inv_freq``, ``ffn.w1`` ...). Attention takes optional absolute ``positions`` (for cached
decoding and left-padded rows), an optional ``cache`` (:class:`kronos.model.cache.LayerCache`) and an
optional key mask; with none of them it computes exactly what the original computes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from kronos.model.cascade import shared_prefix_attention

if TYPE_CHECKING:
    from kronos.model.cache import LayerCache

__all__ = [
    "CrossAttention",
    "FeedForward",
    "RMSNorm",
    "RotaryEmbedding",
    "SelfAttention",
    "TransformerBlock",
    "attention_mask",
]


class RMSNorm(nn.Module):
    """Root-mean-square norm computed in float32 and cast back, times a learned ``weight``."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(torch.mean(xf * xf, dim=-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


class FeedForward(nn.Module):
    """SwiGLU feed-forward ``w2(silu(w1 x) * w3 x)`` without biases, dropout after."""

    def __init__(self, d_model: int, ff_dim: int, dropout_p: float = 0.0) -> None:
        super().__init__()
        self.w1 = nn.Linear(d_model, ff_dim, bias=False)
        self.w3 = nn.Linear(d_model, ff_dim, bias=False)
        self.w2 = nn.Linear(ff_dim, d_model, bias=False)
        self.ffn_dropout = nn.Dropout(dropout_p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.shape[-2] != 1:
            return self.ffn_dropout(self.w2(F.silu(self.w1(x)) * self.w3(x)))
        # A decode step (one new token per row, no autograd): w1 and w3 as one matrix product, which on CPU is
        # about 40% faster for hundreds of rows and gives the same numbers (each output is the same dot product).
        gate, up = F.linear(x, self._fused_w13()).split(self.w1.out_features, dim=-1)
        return self.ffn_dropout(self.w2(F.silu(gate) * up))

    def _fused_w13(self) -> torch.Tensor:
        """``[w1; w3]`` stacked, rebuilt whenever either weight changed (training, loading, ``.to()``)."""
        key = (self.w1.weight.data_ptr(), self.w1.weight._version, self.w3.weight.data_ptr(), self.w3.weight._version)
        if getattr(self, "_w13_key", None) != key:
            self._w13 = torch.cat([self.w1.weight, self.w3.weight]).detach()
            self._w13_key = key
        return self._w13


class RotaryEmbedding(nn.Module):
    """Rotary position embedding with a saved ``inv_freq`` buffer (it is in the checkpoints).

    Without ``positions`` the angles are those of positions ``0..q_len-1`` applied to q and k alike,
    which is the original behaviour (it is why the dependency layer, queried with one token, applies
    no rotation at all). With ``positions`` (``(T,)`` or ``(B, T)``) each row gets its absolute
    positions: what cached decoding and left-padded batches need.
    """

    def __init__(self, head_dim: int) -> None:
        super().__init__()
        inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        self.register_buffer("inv_freq", inv_freq)

    def _cos_sin(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = positions.to(self.inv_freq.dtype).unsqueeze(-1) * self.inv_freq  # (..., T, hd/2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()

    @staticmethod
    def rotate_half(x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((-x2, x1), dim=-1)

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # q, k: (B, H, T, hd)
        if positions is None:
            positions = torch.arange(q.shape[-2], device=q.device)
        cos, sin = self._cos_sin(positions)
        if cos.dim() == 3:  # per-row positions (B, T, hd) -> (B, 1, T, hd)
            cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        cos, sin = cos.to(q.dtype), sin.to(q.dtype)
        return q * cos + self.rotate_half(q) * sin, k * cos + self.rotate_half(k) * sin


def attention_mask(
    q_len: int, k_len: int, *, causal: bool, key_valid: torch.Tensor | None, device: torch.device
) -> torch.Tensor | None:
    """Boolean mask ``(B|1, 1, q_len, k_len)`` (True = may attend), or None when plain causal suffices.

    Queries are the last ``q_len`` of the ``k_len`` keys. A padded query that would see no valid
    key may attend to itself, so padded rows stay finite (their outputs are never used).
    """
    if key_valid is None and (not causal or q_len == k_len or q_len == 1):
        return None  # plain causal (q_len == k_len), or a single newest query that sees every key
    q_idx = torch.arange(k_len - q_len, k_len, device=device).unsqueeze(-1)
    k_idx = torch.arange(k_len, device=device).unsqueeze(0)
    mask = (k_idx <= q_idx) if causal else torch.ones(q_len, k_len, dtype=torch.bool, device=device)
    mask = mask.unsqueeze(0).unsqueeze(0)  # (1, 1, q, k)
    if key_valid is not None:
        mask = mask & key_valid[:, None, None, :]
        if q_len == k_len or causal:
            mask = mask | (k_idx == q_idx).unsqueeze(0).unsqueeze(0)
    return mask


class _Attention(nn.Module):
    """Projections and head bookkeeping common to self- and cross-attention."""

    def __init__(self, d_model: int, n_heads: int, attn_dropout_p: float = 0.0, resid_dropout_p: float = 0.0) -> None:
        super().__init__()
        self.d_model = d_model
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.rotary = RotaryEmbedding(self.head_dim)
        self.attn_dropout_p = attn_dropout_p
        self.resid_dropout = nn.Dropout(resid_dropout_p)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)

    def _attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, is_causal: bool
    ) -> torch.Tensor:
        # SDPA's is_causal aligns queries to the first keys, so it is only right when q_len == k_len.
        is_causal = is_causal and mask is None and q.shape[-2] == k.shape[-2]
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_dropout_p if self.training else 0.0, is_causal=is_causal
        )
        return self._merge_heads(out)

    def _merge_heads(self, out: torch.Tensor) -> torch.Tensor:
        b, _, t, _ = out.shape
        return self.resid_dropout(self.out_proj(out.transpose(1, 2).contiguous().view(b, t, self.d_model)))


class SelfAttention(_Attention):
    """Causal multi-head self-attention with rotary positions (``self_attn`` in the checkpoints)."""

    def forward(
        self,
        x: torch.Tensor,
        *,
        positions: torch.Tensor | None = None,
        key_valid: torch.Tensor | None = None,
        cache: LayerCache | None = None,
    ) -> torch.Tensor:
        q, k, v = self._heads(self.q_proj(x)), self._heads(self.k_proj(x)), self._heads(self.v_proj(x))
        q, k = self.rotary(q, k, positions)
        if cache is not None:
            k, v = cache.update(k, v)
            prefix = cache.prefix
            if prefix is not None:  # sample paths over their series' shared history
                pk, pv, valid, _ = prefix
                return self._merge_heads(shared_prefix_attention(q, pk, pv, k, v, prefix_valid=valid))
        mask = attention_mask(q.shape[-2], k.shape[-2], causal=True, key_valid=key_valid, device=x.device)
        return self._attend(q, k, v, mask, is_causal=True)


class CrossAttention(_Attention):
    """Attention of sibling (coarse-token) queries over the context: the dependency layer's ``cross_attn``.

    Checkpoint quirk kept on purpose: it is causal in training mode and not causal in eval mode, and
    its rotary angles follow the query length (a single query is not rotated, nor are the keys).
    """

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        *,
        key_valid: torch.Tensor | None = None,
        causal: bool | None = None,
    ) -> torch.Tensor:
        """``causal=None`` follows the module's mode (the published behaviour); True/False force it."""
        q, k, v = self._heads(self.q_proj(query)), self._heads(self.k_proj(key)), self._heads(self.v_proj(value))
        q, k = self.rotary(q, k)
        causal = self.training if causal is None else causal
        mask = attention_mask(q.shape[-2], k.shape[-2], causal=causal, key_valid=key_valid, device=query.device)
        return self._attend(q, k, v, mask, is_causal=causal)

    def project_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of new context positions, for the generation-time cache (unrotated)."""
        return self._heads(self.k_proj(context)), self._heads(self.v_proj(context))

    def attend_each_position(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Query ``i`` over context ``0..i``, unrotated: ``T`` generation steps (length-1 queries) in one pass.

        Equals :meth:`attend_cached` of query ``i`` over the first ``i + 1`` context positions, for
        every ``i`` at once (used to score observed bars).
        """
        q = self._heads(self.q_proj(query))
        k, v = self.project_kv(context)
        return self._attend(q, k, v, None, is_causal=True)

    def attend_cached(
        self, query: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """One query token per row over cached keys/values: the eval-mode generation step.

        With a length-1 query the rotary angle is zero, so neither q nor k is rotated.
        """
        q = self._heads(self.q_proj(query))
        mask = None if key_valid is None else key_valid[:, None, None, :]
        return self._attend(q, k, v, mask, is_causal=False)

    def attend_cached_shared(
        self,
        query: torch.Tensor,
        prefix_k: torch.Tensor,
        prefix_v: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        prefix_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """:meth:`attend_cached` over a prefix shared by groups of rows plus each row's own keys."""
        q = self._heads(self.q_proj(query))
        return self._merge_heads(shared_prefix_attention(q, prefix_k, prefix_v, k, v, prefix_valid=prefix_valid))


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + attn(norm1 x)``, then ``x + ffn(norm2 x)``."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        ff_dim: int,
        ffn_dropout_p: float = 0.0,
        attn_dropout_p: float = 0.0,
        resid_dropout_p: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = RMSNorm(d_model)
        self.self_attn = SelfAttention(d_model, n_heads, attn_dropout_p, resid_dropout_p)
        self.norm2 = RMSNorm(d_model)
        self.ffn = FeedForward(d_model, ff_dim, ffn_dropout_p)

    def forward(
        self,
        x: torch.Tensor,
        *,
        positions: torch.Tensor | None = None,
        key_valid: torch.Tensor | None = None,
        cache: LayerCache | None = None,
    ) -> torch.Tensor:
        x = x + self.self_attn(self.norm1(x), positions=positions, key_valid=key_valid, cache=cache)
        return x + self.ffn(self.norm2(x))
