"""The original ``KronosPredictor`` API: mean forecasts with the original's signatures and defaults.

``predict``, ``predict_batch`` and ``generate`` keep the research code's argument names and defaults
(``T=1.0``, ``top_k=0``, ``top_p=0.9``, one sample path, a progress bar) and its random stream (tokens drawn
with ``torch.multinomial``, so ``torch.manual_seed`` gives the original's numbers) so existing scripts run
unchanged; they return the mean path. They share preparation and batched generation with the
probabilistic API (:mod:`kronos.forecasting.probabilistic`) through :class:`SeriesSampler`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from kronos.core.device import autocast
from kronos.core.validation import positive_int
from kronos.forecasting.prepared import (
    Prepared,
    check_seed,
    check_series_lists,
    mean_frames,
    prepare_many,
    series_labels,
)
from kronos.forecasting.sampler import Draw, SeriesSampler
from kronos.inference.generation import sample_paths
from kronos.inference.options import SamplingOptions

__all__ = ["OriginalApi"]


class OriginalApi(SeriesSampler):
    """The original's mean-forecast methods, on top of :class:`SeriesSampler`."""

    def generate(
        self,
        x: np.ndarray,
        x_stamp: np.ndarray,
        y_stamp: np.ndarray,
        pred_len: int,
        T: float,
        top_k: int,
        top_p: float,
        sample_count: int,
        verbose: bool,
        *,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> np.ndarray:
        """The original's lower-level call: normalised arrays in, mean normalised forecast ``(B, pred_len, 6)`` out.

        ``options``: further :class:`SamplingOptions` fields (``use_cache``, ``window``, ``block``).
        """
        options.setdefault("draws", "multinomial")  # the original's random stream under torch.manual_seed
        opts = SamplingOptions(temperature=T, top_k=top_k, top_p=top_p, sample_count=sample_count, **options)
        x_t = torch.clip(self.components.tensor(np.asarray(x)), -self.clip, self.clip)
        xs_t, ys_t = self.components.tensor(np.asarray(x_stamp)), self.components.tensor(np.asarray(y_stamp))
        pred_len = positive_int("pred_len", pred_len)
        with autocast(self.device, self.precision):
            paths = sample_paths(
                self.tokenizer, self.model, x_t, xs_t, ys_t, pred_len, self.max_context, opts, generator=generator
            )
        return paths.float().cpu().numpy().mean(axis=1)

    # -- mean forecasts ---------------------------------------------------------------------------------
    def predict(
        self,
        df: pd.DataFrame,
        x_timestamp: Any,
        y_timestamp: Any,
        pred_len: int,
        T: float = 1.0,
        top_k: int = 0,
        top_p: float = 0.9,
        sample_count: int = 1,
        verbose: bool = True,
        *,
        use_cache: bool = True,
        window: str = "exact",
        block: int | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ) -> pd.DataFrame:
        """Mean forecast over ``sample_count`` paths, indexed by ``y_timestamp`` (the original's output and defaults).

        ``seed`` samples from a private per-series generator (see :meth:`predict_batch`'s ``seeds``).
        """
        opts = SamplingOptions(
            temperature=T,
            top_k=top_k,
            top_p=top_p,
            sample_count=sample_count,
            use_cache=use_cache,
            window=window,
            block=block,
            draws="multinomial",  # the original's random stream under torch.manual_seed
            anchor=False,  # the original's paths continue from the reconstruction of the last bar
        )
        seeds = None if seed is None else [check_seed(seed)]
        draw = Draw(opts, seeds, generator, verbose)
        return self._means([df], [x_timestamp], [y_timestamp], pred_len, draw, [None])[0]

    def predict_batch(
        self,
        df_list: Sequence[pd.DataFrame],
        x_timestamp_list: Sequence[Any],
        y_timestamp_list: Sequence[Any],
        pred_len: int,
        T: float = 1.0,
        top_k: int = 0,
        top_p: float = 0.9,
        sample_count: int = 1,
        verbose: bool = True,
        *,
        use_cache: bool = True,
        window: str = "exact",
        block: int | None = None,
        generator: torch.Generator | None = None,
        seeds: Sequence[int] | None = None,
        batch_size: int | None = None,
    ) -> list[pd.DataFrame]:
        """Mean forecasts for several series; unlike the original, histories may differ in length.

        Different lengths share a left-padded batch with the padding masked, so each series gets
        what it gets alone. ``seeds`` (one int per series) gives every series its own random
        stream: its paths are then the same alone, in any batch, in any order and on any process;
        ``batch_size`` bounds the series run at once (default: a ~2 GiB key/value cache with seeds,
        all of them without).
        """
        opts = SamplingOptions(
            temperature=T,
            top_k=top_k,
            top_p=top_p,
            sample_count=sample_count,
            use_cache=use_cache,
            window=window,
            block=block,
            batch_size=batch_size,
            draws="multinomial",
            anchor=False,
        )
        if seeds is not None:
            seeds = [check_seed(s, f"seeds[{i}]") for i, s in enumerate(seeds)]
        draw = Draw(opts, seeds, generator, verbose)
        return self._means(df_list, x_timestamp_list, y_timestamp_list, pred_len, draw, None)

    def _means(
        self,
        df_list: Sequence[pd.DataFrame],
        xs: Sequence[Any],
        ys: Sequence[Any],
        pred_len: int,
        draw: Draw,
        labels: Sequence[str | None] | None,
    ) -> list[pd.DataFrame]:
        """Prepare (errors name each series by its label, :func:`series_labels`), generate, and average the paths per
        series."""
        n = positive_int("pred_len", pred_len)
        check_series_lists(df_list, xs, ys)
        prepared = prepare_many(self.components, df_list, xs, ys, n, series_labels(len(df_list), labels))
        self._warn_long_history(prepared)
        return mean_frames(prepared, self._paths(prepared, n, draw))

    def _warn_long_history(self, prepared: Sequence[Prepared]) -> None:
        """Warn (once per calling line) that a history longer than the context is normalised as a whole.

        ``predict`` keeps the original's numbers, and the original normalises every bar it is given but
        the model attends only to the last ``max_context``: on long histories that gives forecasts far
        from the last price. ``forecast`` (``lookback="auto"``) fits the normaliser on the window it uses.
        """
        longest = max(len(p.x) for p in prepared)
        if longest > self.max_context:
            warnings.warn(
                f"predict normalises all {longest} history bars, but the model attends only to the last "
                f"{self.max_context}: pass the last max_context - pred_len bars, or use forecast(), whose "
                "lookback='auto' does so",
                UserWarning,
                stacklevel=4,  # the caller of predict / predict_batch
            )
