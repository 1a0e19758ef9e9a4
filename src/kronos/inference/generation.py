"""Autoregressive generation of future bars: tokens in, sample paths out.

Two paths compute the same thing:

* ``use_cache=False`` is the original algorithm: each step runs the model over the whole window
  (history + generated, the last ``max_context`` tokens) and every sample path is a separate row
  from the start (the history is even encoded once per path). It is the parity and benchmark baseline.
* ``use_cache=True`` prefills each series' window once, expands the key/value cache to the sample
  paths (shared prefix), then feeds one token per step. While the window fits in ``max_context`` this
  is exact. Once it would slide, ``window="exact"`` recomputes the slid window every step as the
  original does; ``window="block"`` is a faster approximation that drops the oldest ``block`` tokens
  at once and continues cached (so the model sees between ``max_context - block`` and
  ``max_context`` tokens instead of always ``max_context``).

Turning the generated tokens back into bars is :mod:`kronos.inference.decoding` (``decode_paths`` and
``decode_tail`` are importable from here too). Model code only: tensors in, tensors out, no pandas.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from kronos.inference.decoding import decode_paths, decode_tail
from kronos.inference.options import WINDOW_MODES, SamplingOptions
from kronos.inference.sampling import sample, sample_from_uniform
from kronos.model.cache import KVCache
from kronos.model.config import DEFAULT_CLIP
from kronos.model.kronos import Kronos
from kronos.model.tokenizer import KronosTokenizer

__all__ = [
    "WINDOW_MODES",
    "auto_regressive_inference",
    "generate_tokens",
    "sample_paths",
]


@dataclass(frozen=True)
class _Run:
    """The fixed inputs of one generation: model, calendar stamps, horizon, context and how tokens are drawn."""

    model: Kronos
    stamps: torch.Tensor
    horizon: int
    max_context: int
    opts: SamplingOptions
    generator: torch.Generator | None
    uniforms: torch.Tensor | None
    on_step: Callable[[], None] | None

    def draw(self, logits: torch.Tensor, step: int, which: int) -> torch.Tensor:
        """Next tokens ``(rows, 1)``: from each row's own uniforms when given, else ``torch.multinomial`` for all."""
        o = self.opts
        if self.uniforms is None:
            return sample(logits.float(), o.temperature, o.top_k, o.top_p, self.generator)
        return sample_from_uniform(logits.float(), self.uniforms[:, step, which], o.temperature, o.top_k, o.top_p)

    def stepped(self) -> None:
        if self.on_step is not None:
            self.on_step()


def _generate_uncached(run: _Run, s1: torch.Tensor, s2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    model, stamps, horizon, max_context = run.model, run.stamps, run.horizon, run.max_context
    rows, hist = s1.shape
    seq1 = torch.cat([s1, s1.new_zeros(rows, horizon)], dim=1)
    seq2 = torch.cat([s2, s2.new_zeros(rows, horizon)], dim=1)
    for i in range(horizon):
        end = hist + i
        start = max(0, end - max_context)
        s1_logits, context = model.decode_s1(seq1[:, start:end], seq2[:, start:end], stamps[:, start:end])
        # One draw for all coarse tokens of the batch, then one for all fine tokens (the original's order).
        t1 = run.draw(s1_logits[:, -1], i, 0)
        t2 = run.draw(model.decode_s2(context, t1)[:, -1], i, 1)
        seq1[:, end], seq2[:, end] = t1[:, 0], t2[:, 0]
        run.stepped()
    return seq1[:, hist:], seq2[:, hist:]


def _prefill(
    model: Kronos,
    hist1: torch.Tensor,
    hist2: torch.Tensor,
    hist_stamps: torch.Tensor,
    seq1: torch.Tensor,
    seq2: torch.Tensor,
    stamps: torch.Tensor,
    lo: int,
    end: int,
    sample_count: int,
    max_len: int,
    pad: torch.Tensor | None = None,
    share: bool = True,
) -> tuple[KVCache, torch.Tensor, torch.Tensor]:
    """A fresh cache holding window ``[lo, end)``, with the coarse logits and context of its last bar.

    Shared prefix: the part of the window that is history is the same for every sample path, and
    causal attention makes its keys and values independent of what follows, so it runs once per
    series and the cache is expanded to the paths (one shared copy when ``share``, cascade attention);
    only the generated part runs per path. ``pad`` ``(series,)`` is each series' left padding in the
    history columns (masked, positions shifted).
    """
    hist = hist1.shape[1]
    shared_end = min(hist, end)
    if lo >= shared_end:  # the window holds generated bars only
        cache = model.new_cache(seq1.shape[0], max_len)
        logits, context = model.step_s1(seq1[:, lo:end], seq2[:, lo:end], stamps[:, lo:end], cache)
        return cache, logits, context
    cache = model.new_cache(hist1.shape[0], max_len)
    if pad is not None:
        offset = (pad - lo).clamp(min=0)
        cache.offset = offset if bool((offset > 0).any()) else None
    logits, context = model.step_s1(
        hist1[:, lo:shared_end], hist2[:, lo:shared_end], hist_stamps[:, lo:shared_end], cache
    )
    if sample_count > 1:
        cache = cache.expand(sample_count, share=share)
        logits, context = logits.repeat_interleave(sample_count, dim=0), context.repeat_interleave(sample_count, dim=0)
    if shared_end < end:
        logits, context = model.step_s1(
            seq1[:, shared_end:end], seq2[:, shared_end:end], stamps[:, shared_end:end], cache
        )
    return cache, logits, context


def _generate_cached(
    run: _Run, s1: torch.Tensor, s2: torch.Tensor, block: int, pad: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    series, hist = s1.shape
    model, stamps, horizon, max_context = run.model, run.stamps, run.horizon, run.max_context
    sample_count = run.opts.sample_count
    hist_stamps = stamps
    row_stamps = stamps.repeat_interleave(sample_count, dim=0) if sample_count > 1 else stamps
    seq1 = torch.cat([s1.repeat_interleave(sample_count, dim=0), s1.new_zeros(series * sample_count, horizon)], dim=1)
    seq2 = torch.cat([s2.repeat_interleave(sample_count, dim=0), s2.new_zeros(series * sample_count, horizon)], dim=1)
    max_len = min(max_context, hist + horizon)

    def prefill(lo: int, end: int) -> tuple[KVCache, torch.Tensor, torch.Tensor]:
        return _prefill(
            model,
            s1,
            s2,
            hist_stamps,
            seq1,
            seq2,
            row_stamps,
            lo,
            end,
            sample_count,
            max_len,
            pad,
            run.opts.share_prefix,
        )

    cache, s1_logits, context = prefill(max(0, hist - max_context), hist)
    for i in range(horizon):
        end = hist + i
        if i > 0:
            if cache.length + 1 > max_len:
                # The window slides: "exact" recomputes the last max_context bars every step, as the
                # original does; "block" drops `block` bars at once and runs cached until full again.
                cache, s1_logits, context = prefill(
                    end - (max_context if run.opts.window == "exact" else max_context - block), end
                )
            else:
                s1_logits, context = model.step_s1(
                    seq1[:, end - 1 : end], seq2[:, end - 1 : end], row_stamps[:, end - 1 : end], cache
                )
        t1 = run.draw(s1_logits, i, 0)
        t2 = run.draw(model.step_s2(context, t1, cache), i, 1)
        seq1[:, end], seq2[:, end] = t1[:, 0], t2[:, 0]
        run.stepped()
    return seq1[:, hist:], seq2[:, hist:]


@torch.no_grad()
def generate_tokens(
    model: Kronos,
    s1: torch.Tensor,
    s2: torch.Tensor,
    stamps: torch.Tensor,
    pred_len: int,
    max_context: int,
    opts: SamplingOptions,
    *,
    generator: torch.Generator | None = None,
    on_step: Callable[[], None] | None = None,
    uniforms: torch.Tensor | None = None,
    pad: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``pred_len`` future (coarse, fine) tokens for each series and path.

    Args:
        s1, s2: history token ids ``(series, hist)``; with ``use_cache=False`` they must already be
            repeated per path (``series * sample_count`` rows, copies adjacent), as in the original.
        stamps: calendar features ``(rows, hist + pred_len, 5)`` of history and future bars.
        opts: the sampling settings, already validated (:class:`~kronos.inference.options.SamplingOptions`);
            ``block`` defaults to ``max_context // 4`` here.
        uniforms: optional ``(series * sample_count, pred_len, 2)`` draws in [0, 1) for the coarse and
            fine token of every row and step; each row then samples by inverse CDF from its own
            draws (see :func:`kronos.inference.sampling.sample_from_uniform`) instead of ``generator``.
        pad: optional ``(series,)`` left padding of each history (cached path only): padded columns
            are masked and each row's positions start after its padding, so rows of different
            lengths share a batch and each computes what it would alone.

    Returns:
        ``(s1_new, s2_new)``, each ``(series * sample_count, pred_len)``, rows series-major.
    """
    if pred_len < 1:
        raise ValueError(f"pred_len must be >= 1, got {pred_len}")
    run = _Run(model, stamps, pred_len, max_context, opts, generator, uniforms, on_step)
    if opts.use_cache:
        block = max(1, max_context // 4) if opts.block is None else opts.block
        if not block < max_context:
            raise ValueError(f"block must be in [1, max_context={max_context}), got {block}")
        return _generate_cached(run, s1, s2, block, pad)
    if pad is not None and bool((pad > 0).any()):
        raise ValueError("padded histories need use_cache=True; the original algorithm takes equal lengths")
    return _generate_uncached(run, s1, s2)


@torch.no_grad()
def sample_paths(
    tokenizer: KronosTokenizer,
    model: Kronos,
    x: torch.Tensor,
    x_stamp: torch.Tensor,
    y_stamp: torch.Tensor,
    pred_len: int,
    max_context: int,
    opts: SamplingOptions,
    *,
    generator: torch.Generator | None = None,
    on_step: Callable[[], None] | None = None,
    uniforms: torch.Tensor | None = None,
    lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """Normalised future bars ``(series, sample_count, pred_len, d_in)`` from normalised history ``x``.

    The tokenizer sees the whole history; the model the last ``max_context`` tokens. At the end the
    last ``max_context`` tokens of history + forecast are decoded and the last ``pred_len`` bars kept.

    ``lengths`` ``(series,)``: histories of different lengths, left-padded in ``x`` and ``x_stamp``
    to the longest (cached path). The tokenizer encodes and decodes each length group unpadded; the
    model runs the whole batch with the padding masked (see :func:`generate_tokens`), so each series
    gets what it would get alone. ``uniforms``: per-row draws, see :func:`generate_tokens`; without them and with
    ``opts.draws == "uniform"`` they are drawn here from ``generator`` (or the global generator) in one call, so
    the tokens are the same with or without the cache and cost no ``torch.multinomial``. ``opts`` are trusted as
    validated (``sample_count`` paths per series).
    """
    sample_count = opts.sample_count
    series, hist, _ = x.shape
    if hist < 1:
        raise ValueError("the history is empty")
    if uniforms is None and opts.draws == "uniform":
        device = generator.device if generator is not None else x.device
        uniforms = torch.rand(series * sample_count, pred_len, 2, generator=generator, device=device).to(x.device)
    if lengths is not None and bool((lengths != hist).any()):
        if not opts.use_cache:
            raise ValueError("histories of different lengths need use_cache=True")
        return _sample_padded(
            tokenizer, model, x, x_stamp, y_stamp, lengths, pred_len, max_context, opts, generator, on_step, uniforms
        )
    stamps = torch.cat([x_stamp, y_stamp], dim=1)
    if opts.use_cache:
        s1, s2 = tokenizer.encode(x, half=True)
        hist_s1, hist_s2 = s1.repeat_interleave(sample_count, 0), s2.repeat_interleave(sample_count, 0)
    else:  # the original: every path is its own row from the start
        x = x.repeat_interleave(sample_count, dim=0)
        stamps = stamps.repeat_interleave(sample_count, dim=0)
        s1, s2 = tokenizer.encode(x, half=True)
        hist_s1, hist_s2 = s1, s2
    new1, new2 = generate_tokens(
        model, s1, s2, stamps, pred_len, max_context, opts, generator=generator, on_step=on_step, uniforms=uniforms
    )
    if opts.use_cache:
        decoded = decode_paths(tokenizer, s1, s2, new1, new2, sample_count, max_context, share=opts.share_prefix)
    else:
        full1, full2 = torch.cat([hist_s1, new1], dim=1), torch.cat([hist_s2, new2], dim=1)
        decoded = decode_tail(tokenizer, full1, full2, pred_len, max_context)
    return decoded.reshape(series, sample_count, pred_len, -1)


def _sample_padded(
    tokenizer: KronosTokenizer,
    model: Kronos,
    x: torch.Tensor,
    x_stamp: torch.Tensor,
    y_stamp: torch.Tensor,
    lengths: torch.Tensor,
    horizon: int,
    max_context: int,
    opts: SamplingOptions,
    generator: torch.Generator | None,
    on_step: Callable[[], None] | None,
    uniforms: torch.Tensor | None,
) -> torch.Tensor:
    """:func:`sample_paths` for left-padded histories of different ``lengths`` (cached path)."""
    series, hist, _ = x.shape
    sample_count = opts.sample_count
    lengths = lengths.to(device=x.device, dtype=torch.long)
    if bool((lengths < 1).any()) or bool((lengths > hist).any()):
        raise ValueError(f"lengths must be in [1, {hist}], got {lengths.tolist()}")
    pad = hist - lengths
    s1 = torch.zeros(series, hist, dtype=torch.long, device=x.device)
    s2 = torch.zeros_like(s1)
    groups = {int(n): torch.nonzero(lengths == n).flatten() for n in torch.unique(lengths).tolist()}
    for n, rows in groups.items():  # the tokenizer has no key mask: encode each length unpadded
        g1, g2 = tokenizer.encode(x[rows, hist - n :], half=True)
        s1[rows, hist - n :], s2[rows, hist - n :] = g1.long(), g2.long()
    stamps = torch.cat([x_stamp, y_stamp], dim=1)
    new1, new2 = generate_tokens(
        model,
        s1,
        s2,
        stamps,
        horizon,
        max_context,
        opts,
        generator=generator,
        on_step=on_step,
        uniforms=uniforms,
        pad=pad,
    )
    out = torch.empty(series, sample_count, horizon, x.shape[-1], device=x.device, dtype=x.dtype)
    new1 = new1.view(series, sample_count, horizon)
    new2 = new2.view(series, sample_count, horizon)
    for n, rows in groups.items():
        decoded = decode_paths(
            tokenizer,
            s1[rows, hist - n :],
            s2[rows, hist - n :],
            new1[rows].flatten(0, 1),
            new2[rows].flatten(0, 1),
            sample_count,
            max_context,
            share=opts.share_prefix,
        )
        out[rows] = decoded.reshape(len(rows), sample_count, horizon, -1).to(out.dtype)
    return out


def auto_regressive_inference(
    tokenizer: KronosTokenizer,
    model: Kronos,
    x: torch.Tensor,
    x_stamp: torch.Tensor,
    y_stamp: torch.Tensor,
    max_context: int,
    pred_len: int,
    clip: float = DEFAULT_CLIP,
    T: float = 1.0,
    top_k: int = 0,
    top_p: float = 0.99,
    sample_count: int = 5,
    verbose: bool = False,
    *,
    use_cache: bool = True,
):
    """The original module-level function: mean over paths of normalised forecasts, NumPy ``(B, pred_len, d_in)``."""
    opts = SamplingOptions(
        temperature=T, top_k=top_k, top_p=top_p, sample_count=sample_count, use_cache=use_cache, draws="multinomial"
    )
    paths = sample_paths(tokenizer, model, torch.clip(x, -clip, clip), x_stamp, y_stamp, pred_len, max_context, opts)
    return paths.float().cpu().numpy().mean(axis=1)
