"""Generated tokens back to bars: the tokenizer's decoder over history + forecast, per sample path.

The original decodes the last ``max_context`` tokens of every path from scratch (:func:`decode_tail`, which
also handles horizons longer than the window in chunks). :func:`decode_paths` gives the same numbers with
the history part decoded once per series and shared by its paths, the decoding twin of the shared prefix in
:mod:`kronos.inference.generation`. Model code only: tensors in, tensors out, no pandas.
"""

from __future__ import annotations

import torch

from kronos.model.cache import KVCache
from kronos.model.tokenizer import KronosTokenizer

__all__ = ["decode_paths", "decode_tail", "last_bar_error"]


def decode_paths(
    tokenizer: KronosTokenizer,
    hist1: torch.Tensor,
    hist2: torch.Tensor,
    new1: torch.Tensor,
    new2: torch.Tensor,
    sample_count: int,
    window: int,
    *,
    share: bool = True,
) -> torch.Tensor:
    """:func:`decode_tail` of history + generated tokens per path, the history part decoded once per series.

    ``hist1/2`` ``(series, hist)``, ``new1/2`` ``(series * sample_count, n)`` series-major. The
    tokenizer's decoder is causal, so the keys and values of the history part of the decode window
    are the same for every path of a series: they are computed once, cached, shared by the paths
    (cascade attention; ``share=False`` copies them per path), and only the ``n`` generated bars run
    per path (the same numbers as decoding the whole window, up to floating-point rounding).
    """
    series, hist = hist1.shape
    n = new1.shape[1]
    lo = max(0, hist + n - window)
    if n > window or lo >= hist:  # chunked long horizons, or no history left in the window
        full1 = torch.cat([hist1.repeat_interleave(sample_count, 0), new1], dim=1)
        full2 = torch.cat([hist2.repeat_interleave(sample_count, 0), new2], dim=1)
        return decode_tail(tokenizer, full1, full2, n, window)
    layers = tokenizer.decoder
    if len(layers) == 0:
        return tokenizer.decode([new1, new2], half=True)
    attn = layers[0].self_attn
    weight = tokenizer.post_quant_embed.weight
    prefix = hist - lo
    cache = KVCache(
        n_layers=len(layers),
        batch_size=series,
        n_heads=attn.n_heads,
        head_dim=attn.head_dim,
        dep_heads=1,
        dep_head_dim=1,
        max_len=prefix + n,
        device=weight.device,
        dtype=weight.dtype,
    )

    def run(s1: torch.Tensor, s2: torch.Tensor, cache: KVCache) -> torch.Tensor:
        z = tokenizer.post_quant_embed(tokenizer.indices_to_bits([s1, s2], half=True).to(weight.dtype))
        positions = torch.arange(cache.length, cache.length + s1.shape[1], device=z.device)
        for i, layer in enumerate(layers):
            z = layer(z, positions=positions, cache=cache.layer(i))
        cache.advance(s1.shape[1])
        return z

    run(hist1[:, lo:], hist2[:, lo:], cache)
    if sample_count > 1:
        cache = cache.expand(sample_count, share=share)
    return tokenizer.head(run(new1, new2, cache))


def decode_tail(tokenizer: KronosTokenizer, s1: torch.Tensor, s2: torch.Tensor, n: int, window: int) -> torch.Tensor:
    """Decode the last ``n`` bars of token sequences ``(B, T)`` with at most ``window`` tokens of context.

    For ``n <= window`` this is the original: decode the last ``window`` tokens, keep the last ``n``.
    Longer horizons (which the original cannot return) are decoded in chunks of ``window // 2`` bars,
    each from the ``window`` tokens ending with it, so every bar has at least half a window of context.
    """
    total = s1.shape[1]
    if n <= window:
        lo = max(0, total - window)
        return tokenizer.decode([s1[:, lo:], s2[:, lo:]], half=True)[:, -n:]
    stride = max(1, window // 2)
    parts = []
    end = total
    while end > total - n:
        take = min(stride, end - (total - n))
        lo = max(0, end - window)
        parts.append(tokenizer.decode([s1[:, lo:end], s2[:, lo:end]], half=True)[:, -take:])
        end -= take
    return torch.cat(parts[::-1], dim=1)


def last_bar_error(tokenizer: KronosTokenizer, x: torch.Tensor, window: int) -> torch.Tensor:
    """``x[:, -1]`` minus the tokenizer's reconstruction of it, ``(B, features)``: where the last bar of each history
    ``x`` ``(B, T, features)`` (normalised, one length) lies from the decoded bar its tokens stand for.

    Why: generated bars are decoded reconstructions, so a sample path continues from the reconstruction of the last
    bar, not from the bar itself; adding this error to every generated bar makes the paths start from the bar as
    given (``SamplingOptions.anchor``). Decoded as the paths are: the last ``window`` tokens.
    """
    s1, s2 = tokenizer.encode(x, half=True)
    decoded = tokenizer.decode([s1[:, -window:], s2[:, -window:]], half=True)
    return x[:, -1] - decoded[:, -1].to(x.dtype)
