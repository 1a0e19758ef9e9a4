"""Torch datasets and samplers over a :class:`~kronos.training.corpus.Corpus`.

* :class:`WindowDataset` turns a window index into model input: the ``lookback + horizon`` bars
  normalised with the mean and standard deviation of the **lookback part only** (the same
  :class:`~kronos.bars.preprocessing.Normalizer` the predictor uses at inference), clipped, plus the
  calendar stamps.
* :class:`RandomWindowSampler` draws a fresh random subset of windows each epoch. The draw depends
  only on ``(seed, epoch)``; each rank takes every ``world_size``-th draw from its rank on, so ranks
  never see the same window in an epoch and a resumed run can skip exactly the draws already used.
  With ``weights`` (:func:`group_weights`) it draws with replacement in proportion to them, e.g. an
  equal share of windows for each frequency group however many bars each group has.
* :class:`EvalWindowSampler` gives a fixed, evenly spread subset for validation, split across ranks
  in equal shares (every rank runs the same number of batches, as DDP and FSDP require); with
  ``groups`` an equal number from each group, so the validation loss weighs groups as training does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from kronos.bars.normalizer import Normalizer
from kronos.model.config import DEFAULT_CLIP
from kronos.training.corpus import Corpus
from kronos.training.splits import CorpusError

__all__ = ["EvalWindowSampler", "RandomWindowSampler", "WindowDataset", "group_weights", "normalize_window"]


def normalize_window(x: np.ndarray, lookback: int, clip: float = DEFAULT_CLIP) -> np.ndarray:
    """Z-score a ``(T, 6)`` window with statistics of its first ``lookback`` rows, clipped to ``±clip``."""
    return Normalizer.fit(x[:lookback], clip=clip).transform(x).astype(np.float32, copy=False)


def group_weights(groups: np.ndarray, shares: Sequence[float]) -> np.ndarray:
    """Per-window sampling weights giving group ``g`` a total share ``shares[g]`` of the draws.

    ``groups`` holds each window's group index; a group without windows gets nothing (its share is
    spread over the others by normalisation). Raises ``ValueError`` when no window has a positive share.
    """
    groups = np.asarray(groups, dtype=np.int64)
    counts = np.bincount(groups, minlength=len(shares)).astype(np.float64)
    per_window = np.divide(np.asarray(shares, dtype=np.float64), counts, out=np.zeros(len(shares)), where=counts > 0)
    weights = per_window[groups]
    total = weights.sum()
    if not total > 0:
        raise ValueError("no window belongs to a group with a positive share")
    return weights / total


class WindowDataset(Dataset):
    """Windows of one split of a corpus; item ``i`` is the ``i``-th entry of that split's window index.

    Items are dicts: ``x`` float32 ``(T, 6)`` normalised features, ``stamp`` int64 ``(T, 5)`` calendar
    features, ``row`` the window's first global row (for tracing a sample back to its instrument), ``fitted`` the
    number of leading bars the normaliser was fitted on: ``lookback``, or with ``min_lookback`` a number drawn
    per window from ``[min_lookback, lookback]`` (fixed for the window: it depends on ``seed`` and the window).
    """

    def __init__(
        self,
        corpus: Corpus,
        split: str,
        *,
        clip: float = DEFAULT_CLIP,
        min_lookback: int | None = None,
        seed: int = 0,
    ) -> None:
        self.corpus = corpus
        self.split = split
        self.clip = float(clip)
        self.lookback = corpus.lookback
        if min_lookback is not None and not 1 <= min_lookback <= self.lookback:
            raise ValueError(f"min_lookback must be in [1, lookback={self.lookback}], got {min_lookback}")
        self.min_lookback = min_lookback
        self.seed = int(seed)
        self.window = corpus.window
        self._n = int(corpus.meta["n_windows"][split]) if split in corpus.meta["n_windows"] else None
        if self._n is None:
            raise CorpusError(f"corpus {corpus.path} has no split {split!r}")

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self._n:
            raise IndexError(f"window {index} out of range for split {self.split!r} with {self._n} windows")
        start = int(self.corpus.windows(self.split)[index])
        raw = np.asarray(self.corpus.features[start : start + self.window])
        fitted = self.lookback
        if self.min_lookback is not None:
            fitted = int(np.random.default_rng([self.seed, start]).integers(self.min_lookback, self.lookback + 1))
        x = normalize_window(raw, fitted, self.clip)
        stamp = np.asarray(self.corpus.stamps[start : start + self.window], dtype=np.int64)
        return {"x": torch.from_numpy(x), "stamp": torch.from_numpy(stamp), "row": start, "fitted": fitted}


class RandomWindowSampler(Sampler[int]):
    """Random windows per epoch, disjoint across ranks, deterministic given ``(seed, epoch)``.

    ``samples_per_epoch`` is the global number of draws per epoch (all ranks together); it is cut
    to a multiple of ``world_size`` so every rank yields the same count. Without replacement while
    it fits in the split; beyond that, successive independent permutations are concatenated.
    ``set_position(k)`` skips the first ``k`` global draws of the epoch (used when resuming).
    """

    def __init__(
        self,
        n_windows: int,
        samples_per_epoch: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        weights: np.ndarray | None = None,
    ) -> None:
        if n_windows < 1:
            raise CorpusError("the split has no windows to sample")
        if weights is not None and len(weights) != n_windows:
            raise ValueError(f"{len(weights)} weights for {n_windows} windows")
        self.weights = None if weights is None else torch.as_tensor(np.asarray(weights, dtype=np.float64))
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.n_windows = int(n_windows)
        self.world_size = int(world_size)
        self.samples_per_epoch = (int(samples_per_epoch) // self.world_size) * self.world_size
        if self.samples_per_epoch < self.world_size:
            raise ValueError(f"samples_per_epoch ({samples_per_epoch}) must be at least the world size ({world_size})")
        self.seed = int(seed)
        self.rank = int(rank)
        self.epoch = 0
        self.position = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose draws to yield, starting from its beginning."""
        self.epoch = int(epoch)
        self.position = 0

    def set_position(self, consumed: int) -> None:
        """Skip the first ``consumed`` global draws (a multiple of ``world_size``) of the current epoch."""
        if consumed % self.world_size:
            raise ValueError(f"position {consumed} is not a multiple of the world size {self.world_size}")
        self.position = int(consumed)

    def global_order(self) -> np.ndarray:
        """All draws of the current epoch, for all ranks, in order."""
        g = torch.Generator()
        g.manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.weights is not None:
            return _weighted_draws(self.weights, self.samples_per_epoch, g)
        chunks, have = [], 0
        while have < self.samples_per_epoch:
            perm = torch.randperm(self.n_windows, generator=g)
            chunks.append(perm[: self.samples_per_epoch - have])
            have += chunks[-1].numel()
        return torch.cat(chunks).numpy()

    def __iter__(self) -> Iterator[int]:
        order = self.global_order()[self.position :]
        return iter(order[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return (self.samples_per_epoch - self.position) // self.world_size


def _weighted_draws(weights: torch.Tensor, count: int, generator: torch.Generator) -> np.ndarray:
    """``count`` window indices drawn with replacement in proportion to ``weights`` (inverse-CDF draws, so any
    number of windows works: ``torch.multinomial`` stops at 2^24 categories)."""
    cdf = torch.cumsum(weights, 0)
    u = torch.rand(count, generator=generator, dtype=torch.float64) * cdf[-1]
    return torch.searchsorted(cdf, u, right=True).clamp_(max=len(weights) - 1).numpy()


class EvalWindowSampler(Sampler[int]):
    """A fixed, evenly spread subset of ``n_samples`` windows, split into equal per-rank shares.

    With ``groups`` (each window's group index; negative: left out) the subset takes an equal number of
    windows from every group that has any (evenly spread within it), fewer only where a group has fewer.
    """

    def __init__(
        self, n_windows: int, n_samples: int, *, rank: int = 0, world_size: int = 1, groups: np.ndarray | None = None
    ) -> None:
        if n_windows < 1:
            raise CorpusError("the split has no windows to evaluate")
        count = min(int(n_samples), n_windows)
        count = max((count // world_size) * world_size, 0)
        if count == 0:
            raise CorpusError(f"only {n_windows} validation window(s) for {world_size} ranks")
        if groups is None:
            self.indices = np.unique(np.linspace(0, n_windows - 1, count).round().astype(np.int64))
        else:
            present = [np.flatnonzero(groups == g) for g in np.unique(groups) if g >= 0]
            each = max(count // len(present), 1)
            spread = [np.linspace(0, len(m) - 1, min(each, len(m))).round().astype(np.int64) for m in present]
            picks = [m[np.unique(at)] for m, at in zip(present, spread)]
            self.indices = np.sort(np.concatenate(picks))
        self.indices = self.indices[: (len(self.indices) // world_size) * world_size]
        self.rank, self.world_size = rank, world_size

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return len(self.indices) // self.world_size

    def per_group(self, groups: np.ndarray, wanted: Sequence[int]) -> list[list[int]]:
        """This rank's windows of the subset, one list per group index in ``wanted`` (``groups``: each window's
        group): each group's windows are split equally among the ranks (a remainder under ``world_size`` is left
        out), so every rank runs the same number of batches per group."""
        ws = self.world_size
        of_groups = [self.indices[groups[self.indices] == g] for g in wanted]
        return [part[: len(part) // ws * ws][self.rank :: ws].tolist() for part in of_groups]
