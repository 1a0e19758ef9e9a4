"""Per-bar anomaly scores: how surprised the model is by each observed bar, given the bars before it.

The score of bar ``t`` is the negative log-likelihood (nats) of its observed tokens under the model,
conditioned only on the tokens of bars ``< t`` (within the model's context):

    score_t = -log p(s1_t | bars < t) - log p(s2_t | s1_t, bars < t)

which is exactly the probability with which generation would have produced that bar: the coarse
logits are those of the last context position, and the fine logits come from the dependency layer
queried with the observed coarse token over the context hidden states (one query, no rotary angle,
the residual taken from the last context position), as in :func:`kronos.inference.generation.generate_tokens`.

All positions are scored in one pass per window: the transformer is causal, and the fine head is
evaluated with a causal mask over the context (query ``i`` sees hidden states ``<= i``), which equals
running the length-1 generation query on each truncated context (pinned by a test). Histories longer
than ``max_context + 1`` bars are scored in sliding windows advancing by ``stride`` bars; each bar
then sees between ``max_context - stride + 1`` and ``max_context`` bars of context (``stride=1`` is
exactly the generation window, at one forward pass per bar).

That one-pass scoring takes the tokens of one window, normalised as a whole. Strict causality (a
bar's score must not change when later bars arrive, as live monitoring needs) also asks that each bar
be normalised and tokenised with statistics of the bars before it only, exactly as a one-step
forecast made just before it would see it: :func:`last_bar_nll` scores the last bar of each of a
batch of such windows (one window per scored bar, right-padded; the tokenizer and the transformer are
causal, so padding after a window's end changes nothing in it).

Model code only: tensors in, tensors out.
"""

from __future__ import annotations

from typing import Any

import torch

from kronos.model.kronos import Kronos

__all__ = ["last_bar_nll", "token_nll"]


@torch.no_grad()
def token_nll(
    model: Kronos,
    s1: torch.Tensor,
    s2: torch.Tensor,
    stamp: torch.Tensor | None,
    max_context: int,
    *,
    stride: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Negative log-likelihood of each bar's coarse and fine tokens given the bars before it.

    Args:
        s1, s2: token ids ``(B, T)``.
        stamp: calendar features ``(B, T, 5)`` or None.
        max_context: the most bars the model sees at once.
        stride: window advance for histories longer than ``max_context + 1`` bars (default
            ``max(1, max_context // 8)``).

    Returns:
        ``(nll_s1, nll_s2)`` float32 ``(B, T)``; bar 0 has no context and is NaN.
    """
    if s1.shape != s2.shape or s1.dim() != 2:
        raise ValueError(f"s1 and s2 must both be (batch, bars), got {tuple(s1.shape)} and {tuple(s2.shape)}")
    if max_context < 1:
        raise ValueError(f"max_context must be >= 1, got {max_context}")
    stride = max(1, max_context // 8) if stride is None else stride
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    was_training = model.training
    model.eval()
    try:
        b, t = s1.shape
        nll1 = torch.full((b, t), float("nan"), device=s1.device)
        nll2 = torch.full((b, t), float("nan"), device=s1.device)
        n_inputs = t - 1  # inputs 0..T-2 predict bars 1..T-1
        end, scored = min(max_context, n_inputs), 0
        while scored < n_inputs:
            start = end - min(max_context, end)
            ctx = model.hidden_states(
                s1[:, start:end], s2[:, start:end], None if stamp is None else stamp[:, start:end]
            )
            s1_logits = model.head(ctx).float()
            s2_logits = model.fine_logits_each_position(ctx, s1[:, start + 1 : end + 1]).float()
            lp1 = -torch.log_softmax(s1_logits, -1).gather(-1, s1[:, start + 1 : end + 1, None].long())[..., 0]
            lp2 = -torch.log_softmax(s2_logits, -1).gather(-1, s2[:, start + 1 : end + 1, None].long())[..., 0]
            keep = slice(scored - start, end - start)  # inputs not scored by an earlier window
            nll1[:, scored + 1 : end + 1] = lp1[:, keep]
            nll2[:, scored + 1 : end + 1] = lp2[:, keep]
            scored, end = end, min(end + stride, n_inputs)
        return nll1, nll2
    finally:
        model.train(was_training)


@torch.no_grad()
def last_bar_nll(
    tokenizer: Any, model: Kronos, x: torch.Tensor, stamp: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """NLL of the last bar of each window given the bars before it in that window.

    Args:
        x: normalised windows ``(B, L, d_in)``, right-padded; window ``b`` holds ``lengths[b] >= 2`` bars,
            its context then the scored bar.
        stamp: calendar features ``(B, L, 5)``.
        lengths: ``(B,)`` window lengths.

    Returns:
        ``(nll_s1, nll_s2)`` ``(B,)``: the coarse token of the scored bar under the coarse logits of the
        last context position, and its fine token under the fine logits given that coarse token, the
        dependency layer attending over the valid context only (the generation step).
    """
    was_training = (tokenizer.training, model.training)
    tokenizer.eval()
    model.eval()
    try:
        b, length, _ = x.shape
        s1, s2 = tokenizer.encode(x, half=True)
        lengths = lengths.to(s1.device).long()
        if (lengths < 2).any() or (lengths > length).any():
            raise ValueError(f"window lengths must be in [2, {length}]")
        rows = torch.arange(b, device=s1.device)
        ctx_len = length - 1
        pad = torch.arange(ctx_len, device=s1.device)[None, :] >= (lengths - 1)[:, None]  # True after the context
        s1_logits, context = model.decode_s1(s1[:, :ctx_len], s2[:, :ctx_len], stamp[:, :ctx_len])
        last = lengths - 2  # the last context position
        target1, target2 = s1[rows, lengths - 1], s2[rows, lengths - 1]
        s2_logits = model.decode_s2(context, target1[:, None], padding_mask=pad)[rows, last]
        nll1 = -torch.log_softmax(s1_logits[rows, last].float(), -1).gather(-1, target1[:, None].long())[:, 0]
        nll2 = -torch.log_softmax(s2_logits.float(), -1).gather(-1, target2[:, None].long())[:, 0]
        return nll1, nll2
    finally:
        tokenizer.train(was_training[0])
        model.train(was_training[1])
