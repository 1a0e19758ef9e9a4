"""The forecast pipeline: DataFrames of bars in, DataFrames (or :class:`Forecast` paths) of future bars out.

Per series: fill volume/amount, validate, normalise with the history's own mean and std, clip,
compute calendar features, generate token paths, decode, undo the normalisation. The predictor does
no attention math; it turns pandas into tensors and back and calls :mod:`kronos.inference.generation`.

:class:`KronosPredictor` is one class assembled from one idea per module: the prepared series
(:mod:`~kronos.forecasting.prepared`), batched path generation (:mod:`~kronos.forecasting.sampler`),
the original's mean-forecast API (:mod:`~kronos.forecasting.original`) and the probabilistic API
(:mod:`~kronos.forecasting.probabilistic`). This module adds loading and saving, where a model name is
resolved by :func:`kronos.model.registry.resolve_source`, and the other tasks' delegations.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from kronos.forecasting.calibration import CalibrationOptions
from kronos.forecasting.cost import check_config_size
from kronos.forecasting.original import OriginalApi
from kronos.forecasting.prepared import series_uniforms
from kronos.forecasting.probabilistic import ProbabilisticApi
from kronos.inference.options import SamplingOptions
from kronos.model.kronos import Kronos
from kronos.model.registry import read_predictor_settings as read_predictor_settings  # its old home: still importable
from kronos.model.registry import resolve_source, write_predictor_settings
from kronos.model.tokenizer import KronosTokenizer

__all__ = ["CalibrationOptions", "KronosPredictor", "SamplingOptions", "series_uniforms"]


class KronosPredictor(OriginalApi, ProbabilisticApi):
    """Forecast future K-line bars with a Kronos model and its tokenizer.

    Drop-in for the original ``KronosPredictor``: same constructor, ``predict`` and ``predict_batch``
    (with the original's defaults). Additions: ``forecast``/``forecast_batch``/``forecast_df`` return
    every sample path, with one set of sampling defaults (:class:`~kronos.inference.options.SamplingOptions`,
    given as ``options=`` or keywords); generation uses a key/value cache by default
    (``use_cache=False`` runs the original algorithm); ``precision`` enables bf16/fp16 autocast on CUDA.
    The other tasks (anomaly scores, embeddings, synthesis) take :attr:`components`; the methods here
    only delegate to them.
    """

    # -- loading and saving ----------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        tokenizer: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        max_context: int | None = None,
        clip: float | None = None,
        precision: str = "fp32",
        **hub_kwargs: Any,
    ) -> KronosPredictor:
        """A ready predictor from a published name, a hub id, or a local directory.

        ``NeoQuasar/Kronos-small`` (or ``kronos-small``) pairs the model with its published tokenizer
        and context length. A local directory holding ``model/`` and ``tokenizer/`` (and optionally
        ``predictor.json`` with ``max_context`` and ``clip``) loads offline. ``tokenizer`` overrides
        the pairing. What a name means is :func:`kronos.model.registry.resolve_source`'s to say.
        """
        source = resolve_source(name_or_path, **hub_kwargs)
        tok_src = tokenizer if tokenizer is not None else source.tokenizer
        for local in (source.model, tok_src):
            if local is not None:
                check_config_size(local)  # a config asking for more memory than allowed: one error naming it
        if tok_src is None:
            raise FileNotFoundError(
                f"no tokenizer found for {name_or_path}: pass tokenizer=... or use a directory with model/ and "
                "tokenizer/"
            )
        model = Kronos.from_pretrained(source.model, **hub_kwargs)
        tok = KronosTokenizer.from_pretrained(tok_src, **hub_kwargs)
        return cls(
            model,
            tok,
            device=device,
            max_context=max_context if max_context is not None else source.max_context,
            clip=clip if clip is not None else source.clip,
            precision=precision,
        )

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write ``model/``, ``tokenizer/`` and ``predictor.json`` (max_context, clip): loadable offline."""
        out = Path(save_directory)
        self.model.save_pretrained(out / "model")
        self.tokenizer.save_pretrained(out / "tokenizer")
        write_predictor_settings(out, max_context=self.max_context, clip=self.clip)
        return out

    # -- other tasks: one-line delegations to kronos.forecasting.tasks and kronos.forecasting.synthesis ------
    def anomaly_scores(self, df: pd.DataFrame, x_timestamp: Any, **options: Any) -> pd.DataFrame:
        """Per-bar surprise (``nll_s1``, ``nll_s2``, ``score``): :func:`kronos.forecasting.tasks.anomaly_scores`."""
        from kronos.forecasting.tasks import anomaly_scores

        return anomaly_scores(self.components, df, x_timestamp, **options)

    def embed(self, df: pd.DataFrame | Sequence[pd.DataFrame], x_timestamp: Any, **options: Any) -> np.ndarray:
        """Pooled final hidden states: :func:`kronos.forecasting.tasks.embed` of :attr:`components`."""
        from kronos.forecasting.tasks import embed

        return embed(self.components, df, x_timestamp, **options)

    def embed_windows(self, df: pd.DataFrame, x_timestamp: Any, window: int, **options: Any) -> pd.DataFrame:
        """Embeddings of rolling windows: :func:`kronos.forecasting.tasks.embed_rolling` of :attr:`components`."""
        from kronos.forecasting.tasks import embed_rolling

        return embed_rolling(self.components, df, x_timestamp, window, **options)

    def generate_synthetic(self, n_bars: int, **options: Any) -> list[pd.DataFrame]:
        """Synthetic OHLCV series: :func:`kronos.forecasting.synthesis.synthesize` of :attr:`components`."""
        from kronos.forecasting.synthesis import synthesize

        return synthesize(self.components, n_bars, **options)
