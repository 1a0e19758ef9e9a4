"""Key/value cache for generation: preallocated buffers passed into the model, never hidden state.

One buffer pair per transformer block holds rotated keys and values of the window so far; one more
pair holds the dependency layer's keys and values of the context (the final hidden states), which the
fine-token step attends to. ``length`` is the number of filled positions; the model writes new
positions through :meth:`KVCache.layer` and the caller advances ``length`` after a step. Rows of
different history lengths share one cache left-padded: ``offset`` holds each row's padding, which is
masked out of every attention and shifts the row's rotary positions so that it computes what it would
compute alone.

Sample paths of one series share their history: :meth:`KVCache.expand` turns the filled part into a
:class:`SharedPrefix` (one copy per series, never repeated) and gives every path fresh buffers for the
positions that follow. Attention then reads the prefix once per series with the series' paths as one
block of queries and merges it with each path's own suffix (cascade attention, see
:func:`kronos.model.blocks.shared_prefix_attention`), so memory traffic per step does not grow with
copies of the history.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["KVCache", "LayerCache", "SharedPrefix"]


@dataclass(frozen=True)
class SharedPrefix:
    """Keys and values of positions shared by ``group`` consecutive rows (the sample paths of one series).

    ``k``/``v`` ``(n_layers, series, H, P, hd)``, ``dep_k``/``dep_v`` ``(series, H_dep, P, hd_dep)``,
    ``valid`` ``(series, P)`` True where a position holds a real token (None when nothing is padded).
    """

    k: torch.Tensor
    v: torch.Tensor
    dep_k: torch.Tensor
    dep_v: torch.Tensor
    valid: torch.Tensor | None
    group: int

    @property
    def length(self) -> int:
        return self.k.shape[-2]


class LayerCache:
    """The view of one block on a :class:`KVCache`."""

    def __init__(self, cache: KVCache, index: int) -> None:
        self.cache, self.index = cache, index

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store new keys/values ``(B, H, t, hd)`` after the filled part; return all of the row's own ones
        (with a :attr:`prefix`, only those after it)."""
        return self.cache._write(self.cache.k[self.index], self.cache.v[self.index], k, v)

    @property
    def prefix(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, int] | None:
        """This block's shared ``(k, v, valid, group)``, or None when every row holds its own positions."""
        p = self.cache.prefix
        return None if p is None else (p.k[self.index], p.v[self.index], p.valid, p.group)


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
        # Positions [0, start) live in `prefix` (shared by groups of rows); the buffers hold [start, max_len).
        self.prefix: SharedPrefix | None = None
        # Left padding per row ``(B,)`` (positions before it are padding: masked, and the row's rotary
        # positions start after it), or None when no row is padded.
        self.offset: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    @property
    def start(self) -> int:
        """The first position the row buffers hold: the shared prefix's length (0 without one)."""
        return 0 if self.prefix is None else self.prefix.length

    def layer(self, index: int) -> LayerCache:
        return LayerCache(self, index)

    def _write(
        self, kbuf: torch.Tensor, vbuf: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = self.length - self.start, self.length - self.start + k.shape[-2]
        if end + self.start > self.max_len:
            raise RuntimeError(f"KV cache overflow: {end + self.start} positions for a cache of {self.max_len}")
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
        self.prefix = None

    def expand(self, repeats: int, *, share: bool = True) -> KVCache:
        """A cache of ``repeats`` rows per row (copies adjacent: shared prefix → sample paths).

        With ``share`` nothing is copied: the filled positions become a :class:`SharedPrefix` read by
        all ``repeats`` rows, and each new row gets empty buffers for the positions after it. Without,
        every row gets its own copy of the filled positions.
        """
        if not share:
            return self._repeated(repeats)
        if self.prefix is not None:
            raise RuntimeError("a cache that already has a shared prefix cannot be expanded again")
        n, b, h, _, hd = self.k.shape
        filled = self.length
        valid = self.key_valid(filled)
        new = KVCache.__new__(KVCache)
        new.max_len, new.length = self.max_len, filled
        new.prefix = SharedPrefix(
            self.k[:, :, :, :filled],
            self.v[:, :, :, :filled],
            self.dep_k[:, :, :filled],
            self.dep_v[:, :, :filled],
            valid,
            repeats,
        )
        rest = self.max_len - filled
        new.k = self.k.new_empty(n, b * repeats, h, rest, hd)
        new.v = torch.empty_like(new.k)
        new.dep_k = self.dep_k.new_empty(b * repeats, self.dep_k.shape[1], rest, self.dep_k.shape[-1])
        new.dep_v = torch.empty_like(new.dep_k)
        new.offset = None if self.offset is None else self.offset.repeat_interleave(repeats, dim=0)
        return new

    def _repeated(self, repeats: int) -> KVCache:
        if self.prefix is not None:
            raise RuntimeError("a cache with a shared prefix cannot be repeated")
        new = KVCache.__new__(KVCache)
        new.max_len, new.length, new.prefix = self.max_len, self.length, None
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

    def dep_keys(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The dependency layer's keys/values of each row's own filled positions (after any prefix)."""
        return self.dep_k[:, :, : self.length - self.start], self.dep_v[:, :, : self.length - self.start]
