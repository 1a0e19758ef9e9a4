"""The forecast pipeline: DataFrames of bars in, DataFrames (or :class:`Forecast` paths) of future bars out.

Per series: fill volume/amount, validate, normalise with the history's own mean and std, clip,
compute calendar features, generate token paths, decode, undo the normalisation. The predictor does
no attention math; it turns pandas into tensors and back and calls :mod:`kronos.inference.generation`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from kronos.bars.preprocessing import (
    FEATURE_COLS,
    Normalizer,
    calendar_features,
    check_same_zone,
    prepare_features,
    validate_timestamps,
)
from kronos.core.device import autocast, resolve_device
from kronos.core.errors import InputError
from kronos.core.files import atomic_write_text
from kronos.core.progress import progress_bar
from kronos.core.validation import number, positive_int
from kronos.forecasting.calibration import CalibrationOptions, ForecastFn, calibrate_forecasts
from kronos.forecasting.components import Components
from kronos.forecasting.forecast import Forecast
from kronos.inference.generation import sample_paths
from kronos.inference.options import SamplingOptions
from kronos.model.config import DEFAULT_CLIP, DEFAULT_MAX_CONTEXT, ConfigError
from kronos.model.hub import CONFIG_NAME, resolve_file
from kronos.model.kronos import Kronos
from kronos.model.registry import resolve_model
from kronos.model.tokenizer import KronosTokenizer

__all__ = ["CalibrationOptions", "KronosPredictor", "SamplingOptions", "series_uniforms"]

PREDICTOR_CONFIG = "predictor.json"


def read_predictor_settings(path: Path) -> dict[str, Any]:
    """``max_context`` and ``clip`` from a ``predictor.json``; a malformed file is an error naming it."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object with max_context and clip, got {type(raw).__name__}")
    unknown = sorted(set(raw) - {"max_context", "clip"})
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; allowed are max_context and clip")
    positive_int(f"{path}: max_context", raw.get("max_context", DEFAULT_MAX_CONTEXT), error=ConfigError)
    number(f"{path}: clip", raw.get("clip", 5), low=0.0, error=ConfigError)
    return raw


@dataclass
class _Prepared:
    """One series ready for the model."""

    x: np.ndarray  # (hist, 6) normalised and clipped, float32
    x_stamp: np.ndarray  # (hist, 5)
    y_stamp: np.ndarray  # (pred_len, 5)
    norm: Normalizer
    y_index: pd.DatetimeIndex
    history: pd.DataFrame
    last_close: float


def series_uniforms(seed: int, sample_count: int, pred_len: int) -> torch.Tensor:
    """The draws ``(sample_count, pred_len, 2)`` in [0, 1) of one series' coarse and fine tokens, from its own seed.

    A CPU generator, so the same seed gives the same draws on every device and rank.
    """
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed) % (2**63))
    return torch.rand(sample_count, pred_len, 2, generator=gen)


def _mean_frames(prepared: Sequence[_Prepared], paths: Sequence[np.ndarray]) -> list[pd.DataFrame]:
    """The original's output: the mean path of each series in price space, indexed by its future times."""
    frames = []
    for p, z in zip(prepared, paths):
        mean = z.mean(axis=0)  # float32, as the original averages before de-normalising
        values = p.norm.inverse(mean)
        if not np.isfinite(values).all():  # levels near the float32 limit: de-normalise in float64 instead
            values = p.norm.inverse(mean.astype(np.float64))
        frames.append(pd.DataFrame(values, columns=FEATURE_COLS, index=p.y_index))
    return frames


def _left_padded(arrays: list[np.ndarray]) -> np.ndarray:
    """Rows ``(n, t_i, d)`` stacked into ``(n, max t_i, d)`` float32, zero-padded on the left (masked later)."""
    width = max(len(a) for a in arrays)
    batch = np.zeros((len(arrays), width, arrays[0].shape[1]), dtype=np.float32)
    for row, a in enumerate(arrays):
        batch[row, width - len(a) :] = a
    return batch


class KronosPredictor:
    """Forecast future K-line bars with a Kronos model and its tokenizer.

    Drop-in for the original ``KronosPredictor``: same constructor, ``predict`` and ``predict_batch``
    (with the original's defaults). Additions: ``forecast``/``forecast_batch``/``forecast_df`` return
    every sample path, with one set of sampling defaults (:class:`~kronos.inference.options.SamplingOptions`,
    given as ``options=`` or keywords); generation uses a key/value cache by default
    (``use_cache=False`` runs the original algorithm); ``precision`` enables bf16/fp16 autocast on CUDA.
    The other tasks (anomaly scores, embeddings, synthesis) take :attr:`components`; the methods here
    only delegate to them.
    """

    def __init__(
        self,
        model: Kronos,
        tokenizer: KronosTokenizer,
        device: str | torch.device | None = None,
        max_context: int = DEFAULT_MAX_CONTEXT,
        clip: float = DEFAULT_CLIP,
        *,
        precision: str = "fp32",
    ) -> None:
        tokenizer.check_compatible(model.config)
        self.max_context = positive_int("max_context", max_context)
        number("clip", clip, low=0.0)
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer.to(self.device).eval()
        self.clip = clip
        self.precision = precision
        autocast(self.device, precision)  # validates the name
        self.price_cols = FEATURE_COLS[:4]
        self.vol_col, self.amt_vol = FEATURE_COLS[4], FEATURE_COLS[5]

    @property
    def components(self) -> Components:
        """The model, tokenizer, device, ``max_context`` and ``clip``: what :mod:`kronos.forecasting.tasks`
        and synthesis take."""
        return Components(self.model, self.tokenizer, self.device, self.max_context, self.clip)

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
        the pairing.
        """
        settings: dict[str, Any] = {}
        local = Path(name_or_path)
        if local.is_dir() and (local / "model").is_dir():
            model_src: str | os.PathLike = local / "model"
            tok_src: str | os.PathLike | None = local / "tokenizer" if (local / "tokenizer").is_dir() else None
            if (local / PREDICTOR_CONFIG).is_file():
                settings = read_predictor_settings(local / PREDICTOR_CONFIG)
        else:
            entry = resolve_model(str(name_or_path))
            if entry is not None:
                model_src, tok_src = entry.model, entry.tokenizer
                settings = {"max_context": entry.max_context}
            else:
                model_src, tok_src = name_or_path, None
                # a missing path or an unreachable hub fails here, once
                resolve_file(name_or_path, CONFIG_NAME, **hub_kwargs)
                try:
                    settings_path = resolve_file(name_or_path, PREDICTOR_CONFIG, **hub_kwargs)
                except FileNotFoundError:  # optional: a bare model has none
                    settings = {}
                else:
                    settings = read_predictor_settings(settings_path)
        tok_src = tokenizer if tokenizer is not None else tok_src
        if tok_src is None:
            raise FileNotFoundError(
                f"no tokenizer found for {name_or_path}: pass tokenizer=... or use a directory with model/ and "
                "tokenizer/"
            )
        model = Kronos.from_pretrained(model_src, **hub_kwargs)
        tok = KronosTokenizer.from_pretrained(tok_src, **hub_kwargs)
        return cls(
            model,
            tok,
            device=device,
            max_context=max_context if max_context is not None else settings.get("max_context", DEFAULT_MAX_CONTEXT),
            clip=clip if clip is not None else settings.get("clip", 5),
            precision=precision,
        )

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write ``model/``, ``tokenizer/`` and ``predictor.json`` (max_context, clip): loadable offline."""
        out = Path(save_directory)
        self.model.save_pretrained(out / "model")
        self.tokenizer.save_pretrained(out / "tokenizer")
        atomic_write_text(
            out / PREDICTOR_CONFIG, json.dumps({"max_context": self.max_context, "clip": self.clip}, indent=2) + "\n"
        )
        return out

    # -- preparation -----------------------------------------------------------------------------
    def _prepare(
        self, df: pd.DataFrame, x_timestamp: Any, y_timestamp: Any, pred_len: int, label: str | None
    ) -> _Prepared:
        x = prepare_features(df, label=label)
        x_idx = validate_timestamps(x_timestamp, name="x_timestamp", expected_len=len(df), label=label)
        y_idx = validate_timestamps(y_timestamp, name="y_timestamp", expected_len=pred_len, label=label)
        where = f"{label}: " if label else ""
        check_same_zone(x_idx, y_idx, label=label)
        if y_idx[0] <= x_idx[-1]:
            raise InputError(
                f"{where}y_timestamp starts at {y_idx[0]}, not after the last history timestamp {x_idx[-1]}"
            )
        if isinstance(y_timestamp, pd.Series) and y_timestamp.name is not None:
            y_idx = y_idx.rename(y_timestamp.name)
        norm = self.components.normalizer(x)
        return _Prepared(
            x=norm.transform(x),
            x_stamp=calendar_features(x_idx),
            y_stamp=calendar_features(y_idx),
            norm=norm,
            y_index=y_idx,
            history=pd.DataFrame(x, columns=FEATURE_COLS, index=x_idx),
            last_close=float(x[-1, 3]),
        )

    def _prepare_many(
        self, df_list: Sequence[pd.DataFrame], xs: Sequence[Any], ys: Sequence[Any], pred_len: int, labelled: bool
    ) -> list[_Prepared]:
        """Every series prepared; errors start ``series i:`` when ``labelled`` (the list API)."""
        if isinstance(df_list, pd.DataFrame) or not isinstance(df_list, (list, tuple)):
            raise InputError("df_list must be a list of DataFrames")
        if not (len(df_list) == len(xs) == len(ys)):
            raise InputError(
                "df_list, x_timestamp_list and y_timestamp_list must have the same length, got "
                f"{len(df_list)}, {len(xs)}, {len(ys)}"
            )
        if len(df_list) == 0:
            raise InputError("df_list is empty")
        return [
            self._prepare(df, x, y, pred_len, label=f"series {i}" if labelled else None)
            for i, (df, x, y) in enumerate(zip(df_list, xs, ys))
        ]

    # -- generation ------------------------------------------------------------------------------
    def _paths(
        self,
        prepared: Sequence[_Prepared],
        pred_len: int,
        opts: SamplingOptions,
        seeds: Sequence[int] | None,
        generator: torch.Generator | None,
        verbose: bool,
    ) -> list[np.ndarray]:
        """Normalised paths ``(sample_count, pred_len, 6)`` per series, float32.

        Cached exact generation runs histories of different lengths in one left-padded batch with
        the padding masked; the original algorithm (``use_cache=False``) and ``window="block"`` run
        one batch per length. Either way each series computes what it would compute alone. With
        ``seeds`` every series samples from its own generator (inverse CDF of its own uniforms), so
        its paths do not depend on the batch, its order or ``batch_size``: series are then sorted by
        length and run ``batch_size`` at a time (default: as many as fit a ~2 GiB key/value cache).
        Without seeds the draws come from ``generator`` in one stream over the whole batch, as in
        the original, and ``batch_size`` defaults to all series at once.
        """
        batches = self._batches(prepared, pred_len, opts, seeds)
        out: list[np.ndarray | None] = [None] * len(prepared)
        with progress_bar(enabled=verbose, transient=True) as progress:
            task = progress.add_task("Generating bars", total=pred_len * len(batches))
            for members in batches:
                x = self.components.tensor(_left_padded([prepared[i].x for i in members]))
                xs = self.components.tensor(_left_padded([prepared[i].x_stamp for i in members]))
                ys = torch.from_numpy(np.stack([prepared[i].y_stamp for i in members])).to(self.device)
                lengths = torch.tensor([len(prepared[i].x) for i in members], device=self.device)
                uniforms = None
                if seeds is not None:
                    draws = [series_uniforms(seeds[i], opts.sample_count, pred_len) for i in members]
                    uniforms = torch.cat(draws).to(self.device)
                with autocast(self.device, self.precision):
                    paths = sample_paths(
                        self.tokenizer,
                        self.model,
                        x,
                        xs,
                        ys,
                        pred_len,
                        self.max_context,
                        opts,
                        generator=generator,
                        on_step=lambda: progress.advance(task),
                        uniforms=uniforms,
                        lengths=lengths,
                    )
                paths_np = paths.float().cpu().numpy()
                for row, i in enumerate(members):
                    out[i] = paths_np[row]
        return out  # type: ignore[return-value]

    def _batches(
        self, prepared: Sequence[_Prepared], pred_len: int, opts: SamplingOptions, seeds: Sequence[int] | None
    ) -> list[list[int]]:
        """Which series run together: one padded batch (cached exact) or one group per length, ``batch_size`` each."""
        pad = opts.use_cache and opts.window == "exact"
        batch_size = opts.batch_size
        order = list(range(len(prepared)))
        if seeds is not None:
            if len(seeds) != len(prepared):
                raise InputError(f"seeds has {len(seeds)} entries for {len(prepared)} series")
            order.sort(key=lambda i: -len(prepared[i].x))  # similar lengths together: little padding
            if batch_size is None:
                batch_size = self._auto_batch_size(max(len(p.x) for p in prepared), pred_len, opts.sample_count)
        groups: dict[int, list[int]] = defaultdict(list)
        for i in order:
            groups[0 if pad else len(prepared[i].x)].append(i)
        size = batch_size or len(prepared)
        return [members[k : k + size] for members in groups.values() for k in range(0, len(members), size)]

    def _auto_batch_size(self, hist: int, pred_len: int, sample_count: int, budget: int = 2 << 30) -> int:
        """Series per batch whose key/value cache (all paths) fits ``budget`` bytes."""
        cfg = self.model.config
        window = min(self.max_context, hist + pred_len)
        itemsize = next(self.model.parameters()).element_size()
        per_row = window * cfg.d_model * itemsize * 2 * (cfg.n_layers + 1)
        return max(1, budget // (per_row * sample_count))

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
        opts = SamplingOptions(temperature=T, top_k=top_k, top_p=top_p, sample_count=sample_count, **options)
        x_t = torch.clip(self.components.tensor(np.asarray(x)), -self.clip, self.clip)
        xs_t, ys_t = self.components.tensor(np.asarray(x_stamp)), self.components.tensor(np.asarray(y_stamp))
        pred_len = positive_int("pred_len", pred_len)
        with autocast(self.device, self.precision):
            paths = sample_paths(
                self.tokenizer, self.model, x_t, xs_t, ys_t, pred_len, self.max_context, opts, generator=generator
            )
        return paths.float().cpu().numpy().mean(axis=1)

    # -- the original API: mean forecasts ---------------------------------------------------------
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
        )
        n = positive_int("pred_len", pred_len)
        prepared = self._prepare_many([df], [x_timestamp], [y_timestamp], n, False)
        paths = self._paths(prepared, n, opts, None if seed is None else [seed], generator, verbose)
        return _mean_frames(prepared, paths)[0]

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
        )
        n = positive_int("pred_len", pred_len)
        prepared = self._prepare_many(df_list, x_timestamp_list, y_timestamp_list, n, True)
        return _mean_frames(prepared, self._paths(prepared, n, opts, seeds, generator, verbose))

    # -- distributions ---------------------------------------------------------------------------
    def forecast(
        self,
        df: pd.DataFrame,
        x_timestamp: Any,
        y_timestamp: Any,
        pred_len: int,
        options: SamplingOptions | None = None,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        calibrate: bool | CalibrationOptions = False,
        verbose: bool = False,
        **sampling: Any,
    ) -> Forecast:
        """Every sample path in price space as a :class:`Forecast` (quantiles, intervals, ``prob_up`` ...).

        Sampling settings: ``options`` (a :class:`SamplingOptions`) and/or its fields as keywords
        (``T``/``temperature``, ``top_k``, ``top_p``, ``sample_count``, ``use_cache``, ``window``,
        ``block``, ``batch_size``); the defaults are :class:`SamplingOptions`' (``top_p=1.0``, 100
        paths). ``seed`` samples from a private per-series generator (see :meth:`forecast_batch`).

        ``calibrate=True`` (or a :class:`CalibrationOptions`) recalibrates the paths by split-conformal
        prediction on close returns, per horizon step, from rolling origins inside ``df`` only; it
        costs about ``origins`` extra forecasts. The forecast is then made from the last ``lookback``
        bars, the same window as every origin, so the calibration measures the forecaster it corrects.
        The result's ``coverage_report()`` gives the coverage before and after; see
        :mod:`kronos.forecasting.calibration`.
        """
        seeds = None if seed is None else [seed]
        opts = SamplingOptions.resolve(options, **sampling)
        return self._forecasts(
            [df], [x_timestamp], [y_timestamp], pred_len, opts, seeds, generator, calibrate, verbose
        )[0]

    def forecast_batch(
        self,
        df_list: Sequence[pd.DataFrame],
        x_timestamp_list: Sequence[Any],
        y_timestamp_list: Sequence[Any],
        pred_len: int,
        options: SamplingOptions | None = None,
        *,
        seeds: Sequence[int] | None = None,
        generator: torch.Generator | None = None,
        calibrate: bool | CalibrationOptions = False,
        verbose: bool = False,
        **sampling: Any,
    ) -> list[Forecast]:
        """:meth:`forecast` for several series (histories may differ in length); each calibrated on its own history.

        ``seeds`` (one int per series) gives every series its own random stream, calibration
        included, so a series' forecast is the same alone, in any batch and in any order; without
        them the draws come from ``generator`` (default torch's global one) in one stream.
        """
        opts = SamplingOptions.resolve(options, **sampling)
        return self._forecasts(
            df_list, x_timestamp_list, y_timestamp_list, pred_len, opts, seeds, generator, calibrate, verbose, True
        )

    def forecast_fn(
        self, options: SamplingOptions | None = None, *, generator: torch.Generator | None = None, **sampling: Any
    ) -> ForecastFn:
        """A :data:`~kronos.forecasting.calibration.ForecastFn` ``(frames, x_timestamps, y_timestamps, seeds)``
        of uncalibrated forecasts with these settings: what
        :func:`kronos.forecasting.calibration.calibrate_forecasts` drives."""
        opts = SamplingOptions.resolve(options, **sampling)

        def run(frames: Sequence[pd.DataFrame], xs: Sequence[Any], ys: Sequence[Any], seeds: Any) -> list[Forecast]:
            return self._forecasts(list(frames), xs, ys, len(ys[0]), opts, seeds, generator, False, False, True)

        return run

    def _forecasts(
        self,
        df_list: Sequence[pd.DataFrame],
        xs: Sequence[Any],
        ys: Sequence[Any],
        pred_len: Any,
        opts: SamplingOptions,
        seeds: Sequence[int] | None,
        generator: torch.Generator | None,
        calibrate: bool | CalibrationOptions,
        verbose: bool,
        labelled: bool = False,
    ) -> list[Forecast]:
        """Prepare, generate, de-normalise; then, if asked, calibrate with a forecast function of the same settings."""
        pred_len = positive_int("pred_len", pred_len)
        prepared = self._prepare_many(df_list, xs, ys, pred_len, labelled)
        cal = CalibrationOptions() if calibrate is True else calibrate or None
        if cal is not None:
            if not isinstance(cal, CalibrationOptions):
                raise InputError(f"calibrate must be True, False or a CalibrationOptions, got {calibrate!r}")
            lookbacks = []
            for i, df in enumerate(df_list):  # check the history is long enough before spending time on sampling
                try:
                    lookbacks.append(cal.layout(len(df), pred_len, self.max_context)[1])
                except InputError as exc:
                    raise InputError(f"series {i}: {exc}" if labelled else str(exc)) from None
            prepared = self._prepare_many(
                [df.iloc[len(df) - lb :] for df, lb in zip(df_list, lookbacks)],
                [pd.Series(p.history.index[len(p.history) - lb :]) for p, lb in zip(prepared, lookbacks)],
                [pd.Series(p.y_index) for p in prepared],
                pred_len,
                labelled,
            )
        info = {**opts.info(), "max_context": self.max_context}
        forecasts = [
            Forecast(
                paths=p.norm.inverse(z.astype(np.float64)),
                timestamps=p.y_index,
                last_close=p.last_close,
                history=p.history,
                info=dict(info),
            )
            for p, z in zip(prepared, self._paths(prepared, pred_len, opts, seeds, generator, verbose))
        ]
        if cal is None:
            return forecasts
        cal_opts = opts if cal.sample_count is None else dataclasses.replace(opts, sample_count=cal.sample_count)
        calibrations = calibrate_forecasts(
            self.forecast_fn(cal_opts, generator=generator),
            list(df_list),
            list(xs),
            pred_len,
            cal,
            max_context=self.max_context,
            sample_count=cal_opts.sample_count,
            seeds=seeds,
            settings={k: v for k, v in opts.info().items() if k != "sample_count"},
        )
        return [c.apply(fc) for c, fc in zip(calibrations, forecasts)]

    def forecast_df(
        self, df: pd.DataFrame, h: int, options: SamplingOptions | None = None, **kwargs: Any
    ) -> pd.DataFrame:
        """Forecast every series of a long-format panel: see :func:`kronos.forecasting.panel.forecast_df`
        (this only delegates)."""
        from kronos.forecasting.panel import forecast_df

        return forecast_df(self, df, h, options, **kwargs)

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
