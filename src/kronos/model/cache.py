"""Key/value cache for generation: preallocated buffers passed into the model, never hidden state.

One buffer pair per transformer block holds rotated keys and values of the window so far; one more
pair holds the dependency layer's keys and values of the context (the final hidden states), which the
fine-token step attends to. ``length`` is the number of filled positions; the model writes new
positions through :meth:`KVCache.layer` and the caller advances ``length`` after a step. Rows of
different history lengths share one cache left-padded: ``offset`` holds each row's padding, which is
masked out of every attention and shifts the row's rotary positions so that it computes what it would
compute alone.
"""

from __future__ import annotations

import torch

__all__ = ["KVCache", "LayerCache"]


class LayerCache:
    """The view of one block on a :class:`KVCache`."""

    def __init__(self, cache: KVCache, index: int) -> None:
        self.cache, self.index = cache, index

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store new keys/values ``(B, H, t, hd)`` after the filled part; return all of them."""
        return self.cache._write(self.cache.k[self.index], self.cache.v[self.index], k, v)


class KVCache:
    """Buffers ``(n_layers, B, H, max_len, head_dim)`` plus the dependency layer's ``(B, H_dep, max_len, hd_dep)``."""

    def __init__(
        self,
        *,
        n_layers: int,
        batch_size: int,
        n_heads: int,
        head_dim: int,
        dep_heads: int,
        dep_head_dim: int,
        max_len: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.max_len = max_len
        # Uninitialised: only the filled part [:length] is ever read.
        self.k = torch.empty(n_layers, batch_size, n_heads, max_len, head_dim, device=device, dtype=dtype)
        self.v = torch.empty_like(self.k)
        self.dep_k = torch.empty(batch_size, dep_heads, max_len, dep_head_dim, device=device, dtype=dtype)
        self.dep_v = torch.empty_like(self.dep_k)
        self.length = 0
        # Left padding per row ``(B,)`` (positions before it are padding: masked, and the row's rotary
        # positions start after it), or None when no row is padded.
        self.offset: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    def layer(self, index: int) -> LayerCache:
        return LayerCache(self, index)

    def _write(
        self, kbuf: torch.Tensor, vbuf: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = self.length, self.length + k.shape[-2]
        if end > self.max_len:
            raise RuntimeError(f"KV cache overflow: {end} positions for a cache of {self.max_len}")
        kbuf[:, :, start:end] = k
        vbuf[:, :, start:end] = v
        return kbuf[:, :, :end], vbuf[:, :, :end]

    def update_dep(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the dependency layer's keys/values of new context positions; return all of them."""
        return self._write(self.dep_k, self.dep_v, k, v)

    def advance(self, steps: int) -> None:
        self.length += steps

    def reset(self) -> None:
        """Forget every position (the buffers are reused)."""
        self.length = 0

    def expand(self, repeats: int) -> KVCache:
        """A cache with each row repeated ``repeats`` times, copies adjacent (shared prefix → sample paths)."""
        new = KVCache.__new__(KVCache)
        new.max_len, new.length = self.max_len, self.length
        new.k = self.k.repeat_interleave(repeats, dim=1)
        new.v = self.v.repeat_interleave(repeats, dim=1)
        new.dep_k = self.dep_k.repeat_interleave(repeats, dim=0)
        new.dep_v = self.dep_v.repeat_interleave(repeats, dim=0)
        new.offset = None if self.offset is None else self.offset.repeat_interleave(repeats, dim=0)
        return new

    def key_valid(self, k_len: int) -> torch.Tensor | None:
        """``(B, k_len)`` True where a cached position holds a real token (None when nothing is padded)."""
        if self.offset is None:
            return None
        return torch.arange(k_len, device=self.offset.device).unsqueeze(0) >= self.offset.unsqueeze(1)
