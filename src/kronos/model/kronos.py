"""The Kronos autoregressive predictor: next-bar (coarse, fine) token logits.

Token ids of both levels are embedded and fused, calendar embeddings are added, a causal
transformer runs over the window, and two heads give the coarse logits and — through the dependency
layer that attends from the coarse token over the context — the fine logits. Keys and constructor
arguments match the published ``Kronos-mini|small|base`` checkpoints.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from kronos.model.blocks import CrossAttention, RMSNorm, TransformerBlock
from kronos.model.cache import KVCache
from kronos.model.config import KronosConfig
from kronos.model.hub import PretrainedMixin

__all__ = ["DependencyAwareLayer", "DualHead", "HierarchicalEmbedding", "Kronos", "TemporalEmbedding"]

DEP_HEADS = 4  # the dependency layer has 4 heads whatever n_heads is (a checkpoint fact)


class HierarchicalEmbedding(nn.Module):
    """``fusion_proj(cat(emb_s1(s1) * sqrt(d), emb_s2(s2) * sqrt(d)))``."""

    def __init__(self, s1_bits: int, s2_bits: int, d_model: int) -> None:
        super().__init__()
        self.d_model = d_model
        self.emb_s1 = nn.Embedding(2**s1_bits, d_model)
        self.emb_s2 = nn.Embedding(2**s2_bits, d_model)
        self.fusion_proj = nn.Linear(2 * d_model, d_model)

    def forward(self, s1_ids: torch.Tensor, s2_ids: torch.Tensor) -> torch.Tensor:
        scale = math.sqrt(self.d_model)
        return self.fusion_proj(torch.cat([self.emb_s1(s1_ids) * scale, self.emb_s2(s2_ids) * scale], dim=-1))


class FixedEmbedding(nn.Module):
    """A frozen sinusoidal table (``.emb.weight``), used when ``learn_te`` is false."""

    def __init__(self, size: int, d_model: int) -> None:
        super().__init__()
        position = torch.arange(size).float().unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model))
        table = torch.zeros(size, d_model)
        table[:, 0::2] = torch.sin(position * div_term)
        table[:, 1::2] = torch.cos(position * div_term)
        self.emb = nn.Embedding(size, d_model)
        self.emb.weight = nn.Parameter(table, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.emb(x).detach()


class TemporalEmbedding(nn.Module):
    """Sum of minute, hour, weekday, day-of-month and month embeddings; ``stamp`` is ``(B, T, 5)`` in that order."""

    SIZES = {"minute": 60, "hour": 24, "weekday": 7, "day": 32, "month": 13}

    def __init__(self, d_model: int, learn_te: bool) -> None:
        super().__init__()
        make = (lambda n: nn.Embedding(n, d_model)) if learn_te else (lambda n: FixedEmbedding(n, d_model))
        self.minute_embed = make(self.SIZES["minute"])
        self.hour_embed = make(self.SIZES["hour"])
        self.weekday_embed = make(self.SIZES["weekday"])
        self.day_embed = make(self.SIZES["day"])
        self.month_embed = make(self.SIZES["month"])

    def forward(self, stamp: torch.Tensor) -> torch.Tensor:
        x = stamp.long()
        # Summation order as in the published implementation (hour first, minute last).
        return (
            self.hour_embed(x[..., 1])
            + self.weekday_embed(x[..., 2])
            + self.day_embed(x[..., 3])
            + self.month_embed(x[..., 4])
            + self.minute_embed(x[..., 0])
        )


class DependencyAwareLayer(nn.Module):
    """``norm(h + cross_attn(query=emb_s1(s1), key=h, value=h))``: conditions the fine head on the coarse token."""

    def __init__(
        self, d_model: int, n_heads: int = DEP_HEADS, attn_dropout_p: float = 0.0, resid_dropout_p: float = 0.0
    ) -> None:
        super().__init__()
        self.cross_attn = CrossAttention(d_model, n_heads, attn_dropout_p, resid_dropout_p)
        self.norm = RMSNorm(d_model)

    def forward(
        self,
        hidden_states: torch.Tensor,
        sibling_embed: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        causal: bool | None = None,
    ) -> torch.Tensor:
        key_valid = None if key_padding_mask is None else ~key_padding_mask.bool()
        attn = self.cross_attn(sibling_embed, hidden_states, hidden_states, key_valid=key_valid, causal=causal)
        # With a single sibling query (generation) the residual broadcasts over the window.
        return self.norm(hidden_states + attn)


class DualHead(nn.Module):
    """Coarse (``proj_s1``) and fine (``proj_s2``) vocab projections and the next-token loss."""

    def __init__(self, s1_bits: int, s2_bits: int, d_model: int) -> None:
        super().__init__()
        self.vocab_s1, self.vocab_s2 = 2**s1_bits, 2**s2_bits
        self.proj_s1 = nn.Linear(d_model, self.vocab_s1)
        self.proj_s2 = nn.Linear(d_model, self.vocab_s2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj_s1(x)

    def cond_forward(self, x2: torch.Tensor) -> torch.Tensor:
        return self.proj_s2(x2)

    def compute_loss(
        self,
        s1_logits: torch.Tensor,
        s2_logits: torch.Tensor,
        s1_targets: torch.Tensor,
        s2_targets: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``((ce_s1 + ce_s2) / 2, ce_s1, ce_s2)``; positions where ``padding_mask`` is True are ignored."""
        s1_targets, s2_targets = s1_targets.long(), s2_targets.long()
        if padding_mask is not None:
            s1_targets = s1_targets.masked_fill(padding_mask.bool(), -100)
            s2_targets = s2_targets.masked_fill(padding_mask.bool(), -100)
        ce_s1 = F.cross_entropy(s1_logits.reshape(-1, self.vocab_s1), s1_targets.reshape(-1), ignore_index=-100)
        ce_s2 = F.cross_entropy(s2_logits.reshape(-1, self.vocab_s2), s2_targets.reshape(-1), ignore_index=-100)
        return (ce_s1 + ce_s2) / 2, ce_s1, ce_s2


class Kronos(PretrainedMixin, nn.Module):
    """Decoder-only transformer over (coarse, fine) bar tokens with calendar embeddings."""

    config_class = KronosConfig

    def __init__(
        self,
        s1_bits: int = 10,
        s2_bits: int = 10,
        n_layers: int = 8,
        d_model: int = 512,
        n_heads: int = 8,
        ff_dim: int = 1024,
        ffn_dropout_p: float = 0.0,
        attn_dropout_p: float = 0.0,
        resid_dropout_p: float = 0.0,
        token_dropout_p: float = 0.0,
        learn_te: bool = True,
    ) -> None:
        super().__init__()
        cfg = KronosConfig(
            s1_bits=s1_bits,
            s2_bits=s2_bits,
            n_layers=n_layers,
            d_model=d_model,
            n_heads=n_heads,
            ff_dim=ff_dim,
            ffn_dropout_p=ffn_dropout_p,
            attn_dropout_p=attn_dropout_p,
            resid_dropout_p=resid_dropout_p,
            token_dropout_p=token_dropout_p,
            learn_te=learn_te,
        )
        self.config = cfg
        self.s1_bits, self.s2_bits, self.d_model = s1_bits, s2_bits, d_model
        self.s1_vocab_size = 2**s1_bits
        self.embedding = HierarchicalEmbedding(s1_bits, s2_bits, d_model)
        self.time_emb = TemporalEmbedding(d_model, learn_te)
        self.token_drop = nn.Dropout(token_dropout_p)
        self.transformer = nn.ModuleList(
            [
                TransformerBlock(d_model, n_heads, ff_dim, ffn_dropout_p, attn_dropout_p, resid_dropout_p)
                for _ in range(n_layers)
            ]
        )
        self.norm = RMSNorm(d_model)
        self.dep_layer = DependencyAwareLayer(d_model)
        self.head = DualHead(s1_bits, s2_bits, d_model)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.xavier_normal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding) and module.weight.requires_grad:
            nn.init.normal_(module.weight, mean=0.0, std=self.d_model**-0.5)

    # -- backbone ------------------------------------------------------------------------------
    def hidden_states(
        self,
        s1_ids: torch.Tensor,
        s2_ids: torch.Tensor,
        stamp: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        *,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Final normed hidden states ``(B, T, d_model)`` of the given tokens.

        With a ``cache`` the tokens continue the cached window at positions ``cache.length ...``; the
        caller advances the cache afterwards. ``padding_mask`` (True = padding) follows PyTorch's
        ``key_padding_mask`` convention.
        """
        x = self.embedding(s1_ids, s2_ids)
        if stamp is not None:
            x = x + self.time_emb(stamp)
        x = self.token_drop(x)
        key_valid = None if padding_mask is None else ~padding_mask.bool()
        positions = None
        if cache is not None:
            positions = torch.arange(cache.length, cache.length + s1_ids.shape[1], device=s1_ids.device)
            if cache.offset is not None:  # left-padded rows: own positions, padding masked
                positions = positions.unsqueeze(0) - cache.offset.unsqueeze(1)
                # (with a shared prefix the padding is all in the prefix, which masks it itself)
                key_valid = None if cache.prefix is not None else cache.key_valid(cache.length + s1_ids.shape[1])
        for i, layer in enumerate(self.transformer):
            x = layer(x, positions=positions, key_valid=key_valid, cache=None if cache is None else cache.layer(i))
        return self.norm(x)

    # -- the original's public methods -----------------------------------------------------------
    def forward(
        self,
        s1_ids: torch.Tensor,
        s2_ids: torch.Tensor,
        stamp: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        use_teacher_forcing: bool = False,
        s1_targets: torch.Tensor | None = None,
        dep_causal: bool | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training forward: ``(s1_logits, s2_logits)`` for every position.

        The fine head is conditioned on the true next coarse ids (``use_teacher_forcing``) or, as in
        the original fine-tuning, on coarse ids sampled from the model's own coarse distribution.
        ``dep_causal=None`` keeps the published quirk (the dependency layer is causal only in training
        mode); pass True to score a whole window in eval mode (validation) without the fine head
        seeing later bars.
        """
        h = self.hidden_states(s1_ids, s2_ids, stamp, padding_mask)
        s1_logits = self.head(h)
        if use_teacher_forcing:
            if s1_targets is None:
                raise ValueError("use_teacher_forcing=True needs s1_targets")
            sibling = self.embedding.emb_s1(s1_targets)
        else:
            probs = F.softmax(s1_logits.detach(), dim=-1)
            sampled = torch.multinomial(probs.view(-1, self.s1_vocab_size), 1).view(s1_ids.shape)
            sibling = self.embedding.emb_s1(sampled)
        x2 = self.dep_layer(h, sibling, key_padding_mask=padding_mask, causal=dep_causal)
        return s1_logits, self.head.cond_forward(x2)

    def decode_s1(
        self,
        s1_ids: torch.Tensor,
        s2_ids: torch.Tensor,
        stamp: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Coarse logits ``(B, T, 2**s1_bits)`` and the context (final hidden states) for :meth:`decode_s2`."""
        context = self.hidden_states(s1_ids, s2_ids, stamp, padding_mask)
        return self.head(context), context

    def decode_s2(
        self, context: torch.Tensor, s1_ids: torch.Tensor, padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Fine logits given the context and coarse ids (``(B, 1)`` at generation: use the last position)."""
        x2 = self.dep_layer(context, self.embedding.emb_s1(s1_ids), key_padding_mask=padding_mask)
        return self.head.cond_forward(x2)

    def fine_logits_each_position(self, context: torch.Tensor, s1_next: torch.Tensor) -> torch.Tensor:
        """Fine logits ``(B, T, V2)`` where position ``i`` is the generation step for bar ``i + 1``.

        ``context`` holds the final hidden states of bars ``0..T-1``; ``s1_next`` the coarse ids of bars
        ``1..T``. Position ``i`` equals ``decode_s2(context[:, :i + 1], s1_next[:, i:i + 1])[:, -1]``
        (eval mode), i.e. what generation computes, for all positions in one pass.
        """
        attn = self.dep_layer.cross_attn.attend_each_position(self.embedding.emb_s1(s1_next), context)
        return self.head.cond_forward(self.dep_layer.norm(context + attn))

    # -- cached generation ---------------------------------------------------------------------
    def new_cache(
        self,
        batch_size: int,
        max_len: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> KVCache:
        """An empty cache for ``batch_size`` rows of up to ``max_len`` positions."""
        ref = self.norm.weight
        return KVCache(
            n_layers=len(self.transformer),
            batch_size=batch_size,
            n_heads=self.config.n_heads,
            head_dim=self.d_model // self.config.n_heads,
            dep_heads=DEP_HEADS,
            dep_head_dim=self.d_model // DEP_HEADS,
            max_len=max_len,
            device=device or ref.device,
            dtype=dtype or ref.dtype,
        )

    def step_s1(
        self, s1_ids: torch.Tensor, s2_ids: torch.Tensor, stamp: torch.Tensor | None, cache: KVCache
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run new tokens through the cached window.

        Returns the coarse logits of the last one ``(B, V1)`` and its context ``(B, 1, d)``.

        Also stores the dependency layer's keys/values of the new context and advances the cache.
        """
        h = self.hidden_states(s1_ids, s2_ids, stamp, cache=cache)
        cache.update_dep(*self.dep_layer.cross_attn.project_kv(h))
        cache.advance(s1_ids.shape[1])
        last = h[:, -1:]
        return self.head(last)[:, -1], last

    def step_s2(self, last_context: torch.Tensor, s1_ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Fine logits ``(B, V2)`` of the newest bar given its sampled coarse ids ``(B, 1)``, from the cache.

        Equals ``decode_s2(context, s1_ids)[:, -1]`` of the uncached path (eval mode).
        """
        k, v = cache.dep_keys()
        query = self.embedding.emb_s1(s1_ids)
        cross = self.dep_layer.cross_attn
        p = cache.prefix
        if p is None:
            attn = cross.attend_cached(query, k, v, cache.key_valid(cache.length))
        else:  # sample paths over their series' shared history
            attn = cross.attend_cached_shared(query, p.dep_k, p.dep_v, k, v, p.valid)
        return self.head.cond_forward(self.dep_layer.norm(last_context + attn))[:, -1]
