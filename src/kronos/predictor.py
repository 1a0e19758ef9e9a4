"""The forecast pipeline: DataFrames of bars in, DataFrames (or :class:`Forecast` paths) of future bars out.

Per series: fill volume/amount, validate, normalise with the history's own mean and std, clip,
compute calendar features, generate token paths, decode, undo the normalisation. The predictor does
no attention math; it turns pandas into tensors and back and calls :mod:`kronos.generation`.
"""

from __future__ import annotations

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
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from kronos.config import ConfigError
from kronos.device import autocast, resolve_device
from kronos.fileio import atomic_write_text
from kronos.forecast import Forecast
from kronos.generation import WINDOW_MODES, sample_paths
from kronos.hub import CONFIG_NAME, resolve_file
from kronos.model import Kronos
from kronos.preprocessing import (
    FEATURE_COLS,
    InputError,
    Normalizer,
    calendar_features,
    check_same_zone,
    prepare_features,
    validate_timestamps,
)
from kronos.registry import resolve_published
from kronos.sampling import validate_sampling
from kronos.tokenizer import KronosTokenizer

__all__ = ["KronosPredictor", "series_uniforms"]

PREDICTOR_CONFIG = "predictor.json"
DEFAULT_MAX_CONTEXT = 512  # the original's default, used when neither the caller nor predictor.json gives one


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
    mc = raw.get("max_context", DEFAULT_MAX_CONTEXT)
    if isinstance(mc, bool) or not isinstance(mc, int) or mc < 1:
        raise ConfigError(f"{path}: max_context must be an integer >= 1, got {mc!r}")
    clip = raw.get("clip", 5)
    if isinstance(clip, bool) or not isinstance(clip, (int, float)) or not np.isfinite(clip) or clip <= 0:
        raise ConfigError(f"{path}: clip must be a number > 0, got {clip!r}")
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


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


class KronosPredictor:
    """Forecast future K-line bars with a Kronos model and its tokenizer.

    Drop-in for the original ``KronosPredictor``: same constructor, ``predict`` and ``predict_batch``.
    Additions: ``forecast`` returns every sample path as a :class:`Forecast`; generation uses a
    key/value cache by default (``use_cache=False`` runs the original algorithm); ``window="block"``
    is a faster approximation once the window slides; ``precision`` enables bf16/fp16 autocast on CUDA.
    """

    def __init__(
        self,
        model: Kronos,
        tokenizer: KronosTokenizer,
        device: str | torch.device | None = None,
        max_context: int = 512,
        clip: float = 5,
        *,
        precision: str = "fp32",
    ) -> None:
        tokenizer.check_compatible(model.config)
        self.max_context = _check_positive_int("max_context", max_context)
        if not clip > 0:
            raise InputError(f"clip must be > 0, got {clip!r}")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer.to(self.device).eval()
        self.clip = clip
        self.precision = precision
        autocast(self.device, precision)  # validates the name
        self.price_cols = FEATURE_COLS[:4]
        self.vol_col, self.amt_vol = FEATURE_COLS[4], FEATURE_COLS[5]

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
            entry = resolve_published(str(name_or_path))
            if entry is not None:
                model_src, tok_src = entry.model, entry.tokenizer
                settings = {"max_context": entry.max_context}
            else:
                model_src, tok_src = name_or_path, None
                resolve_file(
                    name_or_path, CONFIG_NAME, **hub_kwargs
                )  # a missing path or unreachable hub fails here, once
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
        norm = Normalizer.fit(x.astype(np.float32), clip=self.clip)
        return _Prepared(
            x=norm.transform(x),
            x_stamp=calendar_features(x_idx),
            y_stamp=calendar_features(y_idx),
            norm=norm,
            y_index=y_idx,
            history=pd.DataFrame(x, columns=FEATURE_COLS, index=x_idx),
            last_close=float(x[-1, 3]),
        )

    def _check_args(
        self, pred_len: Any, T: float, top_k: int, top_p: float, sample_count: Any, window: str
    ) -> tuple[int, int]:
        pred_len = _check_positive_int("pred_len", pred_len)
        sample_count = _check_positive_int("sample_count", sample_count)
        try:
            validate_sampling(T, top_k, top_p)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if window not in WINDOW_MODES:
            raise InputError(f"window must be one of {WINDOW_MODES}, got {window!r}")
        return pred_len, sample_count

    # -- generation ------------------------------------------------------------------------------
    def _paths(
        self,
        prepared: Sequence[_Prepared],
        pred_len: int,
        *,
        T: float,
        top_k: int,
        top_p: float,
        sample_count: int,
        verbose: bool,
        use_cache: bool,
        window: str,
        block: int | None,
        generator: torch.Generator | None,
        seeds: Sequence[int] | None = None,
        batch_size: int | None = None,
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
        batches = self._batches(prepared, pred_len, sample_count, use_cache and window == "exact", seeds, batch_size)
        out: list[np.ndarray | None] = [None] * len(prepared)
        columns = [
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ]
        with Progress(*columns, transient=True, disable=not verbose) as progress:
            task = progress.add_task("Generating bars", total=pred_len * len(batches))
            for members in batches:
                longest = max(len(prepared[i].x) for i in members)

                def padded(arrays: list[np.ndarray], width: int = longest) -> torch.Tensor:
                    batch = np.zeros((len(arrays), width, arrays[0].shape[1]), dtype=np.float32)
                    for row, a in enumerate(arrays):
                        batch[row, width - len(a) :] = a
                    return torch.from_numpy(batch).to(self.device)

                x = padded([prepared[i].x for i in members])
                xs = padded([prepared[i].x_stamp for i in members])
                ys = torch.from_numpy(np.stack([prepared[i].y_stamp for i in members])).to(self.device)
                lengths = torch.tensor([len(prepared[i].x) for i in members], device=self.device)
                uniforms = None
                if seeds is not None:
                    uniforms = torch.cat([series_uniforms(seeds[i], sample_count, pred_len) for i in members]).to(
                        self.device
                    )
                with autocast(self.device, self.precision):
                    paths = sample_paths(
                        self.tokenizer,
                        self.model,
                        x,
                        xs,
                        ys,
                        pred_len,
                        self.max_context,
                        temperature=T,
                        top_k=top_k,
                        top_p=top_p,
                        sample_count=sample_count,
                        use_cache=use_cache,
                        window=window,  # type: ignore[arg-type]
                        block=block,
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
        self,
        prepared: Sequence[_Prepared],
        pred_len: int,
        sample_count: int,
        pad: bool,
        seeds: Sequence[int] | None,
        batch_size: int | None,
    ) -> list[list[int]]:
        """Which series run together: padded batches (``pad``) or one group per length, at most ``batch_size`` each."""
        order = list(range(len(prepared)))
        if seeds is not None:
            if len(seeds) != len(prepared):
                raise InputError(f"seeds has {len(seeds)} entries for {len(prepared)} series")
            order.sort(key=lambda i: -len(prepared[i].x))  # similar lengths together: little padding
            if batch_size is None:
                batch_size = self._auto_batch_size(max(len(p.x) for p in prepared), pred_len, sample_count)
        if batch_size is not None:
            batch_size = _check_positive_int("batch_size", batch_size)
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
        **kwargs: Any,
    ) -> np.ndarray:
        """The original's lower-level call: normalised arrays in, mean normalised forecast ``(B, pred_len, 6)`` out."""
        x_t = torch.as_tensor(np.asarray(x, dtype=np.float32), device=self.device)
        xs_t = torch.as_tensor(np.asarray(x_stamp, dtype=np.float32), device=self.device)
        ys_t = torch.as_tensor(np.asarray(y_stamp, dtype=np.float32), device=self.device)
        x_t = torch.clip(x_t, -self.clip, self.clip)
        with autocast(self.device, self.precision):
            paths = sample_paths(
                self.tokenizer,
                self.model,
                x_t,
                xs_t,
                ys_t,
                pred_len,
                self.max_context,
                temperature=T,
                top_k=top_k,
                top_p=top_p,
                sample_count=sample_count,
                **kwargs,
            )
        return paths.float().cpu().numpy().mean(axis=1)

    # -- public API --------------------------------------------------------------------------------
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
        """Mean forecast over ``sample_count`` paths, indexed by ``y_timestamp`` (the original's output).

        ``seed`` samples from a private per-series generator (see :meth:`predict_batch`'s ``seeds``).
        """
        return self.predict_batch(
            [df],
            [x_timestamp],
            [y_timestamp],
            pred_len,
            T=T,
            top_k=top_k,
            top_p=top_p,
            sample_count=sample_count,
            verbose=verbose,
            use_cache=use_cache,
            window=window,
            block=block,
            generator=generator,
            _single=True,
            seeds=None if seed is None else [seed],
        )[0]

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
        _single: bool = False,
    ) -> list[pd.DataFrame]:
        """Mean forecasts for several series; unlike the original, histories may differ in length.

        Different lengths share a left-padded batch with the padding masked, so each series gets
        what it gets alone. ``seeds`` (one int per series) gives every series its own random
        stream: its paths are then the same alone, in any batch, in any order and on any process;
        ``batch_size`` bounds the series run at once (default: a ~2 GiB key/value cache with seeds,
        all of them without).
        """
        prepared = self._prepare_many(df_list, x_timestamp_list, y_timestamp_list, pred_len, _single)
        pred_len, sample_count = self._check_args(pred_len, T, top_k, top_p, sample_count, window)
        paths = self._paths(
            prepared,
            pred_len,
            T=T,
            top_k=top_k,
            top_p=top_p,
            sample_count=sample_count,
            verbose=verbose,
            use_cache=use_cache,
            window=window,
            block=block,
            generator=generator,
            seeds=seeds,
            batch_size=batch_size,
        )
        frames = []
        for p, z in zip(prepared, paths):
            mean = z.mean(axis=0)  # float32, as the original averages before de-normalising
            values = p.norm.inverse(mean)
            if not np.isfinite(values).all():  # levels near the float32 limit: de-normalise in float64 instead
                values = p.norm.inverse(mean.astype(np.float64))
            frames.append(pd.DataFrame(values, columns=FEATURE_COLS, index=p.y_index))
        return frames

    def forecast(
        self,
        df: pd.DataFrame,
        x_timestamp: Any,
        y_timestamp: Any,
        pred_len: int,
        T: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        sample_count: int = 100,
        verbose: bool = False,
        *,
        use_cache: bool = True,
        window: str = "exact",
        block: int | None = None,
        generator: torch.Generator | None = None,
        calibrate: bool = False,
        calibration_origins: int = 20,
        calibration_stride: int | None = None,
        calibration_lookback: int | None = None,
        calibration_samples: int | None = None,
        seed: int | None = None,
    ) -> Forecast:
        """Every sample path in price space as a :class:`Forecast` (quantiles, intervals, ``prob_up`` ...).

        ``calibrate=True`` recalibrates the paths by split-conformal prediction on close returns, per
        horizon step, from ``calibration_origins`` rolling origins inside ``df`` only (``stride`` bars
        apart, default ``pred_len``; each forecast from ``calibration_lookback`` bars, default as many
        as fit, at most ``max_context``; ``calibration_samples`` paths each, default ``sample_count``).
        It costs about ``calibration_origins`` extra forecasts. The result's ``coverage_report()``
        gives the coverage measured before and after; see :mod:`kronos.calibration`. ``seed`` samples
        from a private per-series generator (see :meth:`forecast_batch`).
        """
        return self.forecast_batch(
            [df],
            [x_timestamp],
            [y_timestamp],
            pred_len,
            T=T,
            top_k=top_k,
            top_p=top_p,
            sample_count=sample_count,
            verbose=verbose,
            use_cache=use_cache,
            window=window,
            block=block,
            generator=generator,
            _single=True,
            calibrate=calibrate,
            calibration_origins=calibration_origins,
            calibration_stride=calibration_stride,
            calibration_lookback=calibration_lookback,
            calibration_samples=calibration_samples,
            seeds=None if seed is None else [seed],
        )[0]

    def forecast_batch(
        self,
        df_list: Sequence[pd.DataFrame],
        x_timestamp_list: Sequence[Any],
        y_timestamp_list: Sequence[Any],
        pred_len: int,
        T: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        sample_count: int = 100,
        verbose: bool = False,
        *,
        use_cache: bool = True,
        window: str = "exact",
        block: int | None = None,
        generator: torch.Generator | None = None,
        calibrate: bool = False,
        calibration_origins: int = 20,
        calibration_stride: int | None = None,
        calibration_lookback: int | None = None,
        calibration_samples: int | None = None,
        seeds: Sequence[int] | None = None,
        batch_size: int | None = None,
        _single: bool = False,
    ) -> list[Forecast]:
        """:meth:`forecast` for several series (histories may differ in length); each is calibrated on its own history.

        With ``calibrate=True`` each forecast is made from the last ``lookback`` bars of its history, the
        same window length as every calibration origin, so the calibration measures the very forecaster
        it corrects (``info["calibration"]["lookback"]`` says how many). ``seeds`` and ``batch_size``
        as in :meth:`predict_batch` (the calibration forecasts still draw from ``generator``).
        """
        prepared = self._prepare_many(df_list, x_timestamp_list, y_timestamp_list, pred_len, _single)
        pred_len, sample_count = self._check_args(pred_len, T, top_k, top_p, sample_count, window)
        if calibrate:
            from kronos.calibration import origin_layout

            cal_samples = (
                sample_count
                if calibration_samples is None
                else _check_positive_int("calibration_samples", calibration_samples)
            )
            lookbacks = []
            for i, df in enumerate(df_list):  # check the history is long enough before spending time on sampling
                try:
                    _, lb, _ = origin_layout(
                        len(df),
                        pred_len,
                        calibration_origins,
                        calibration_stride,
                        calibration_lookback,
                        self.max_context,
                    )
                except InputError as exc:
                    raise InputError(str(exc) if _single else f"series {i}: {exc}") from None
                lookbacks.append(lb)
            prepared = self._prepare_many(
                [df.iloc[len(df) - lb :] for df, lb in zip(df_list, lookbacks)],
                [pd.Series(p.history.index[len(p.history) - lb :]) for p, lb in zip(prepared, lookbacks)],
                [pd.Series(p.y_index) for p in prepared],
                pred_len,
                _single,
            )
        paths = self._paths(
            prepared,
            pred_len,
            T=T,
            top_k=top_k,
            top_p=top_p,
            sample_count=sample_count,
            verbose=verbose,
            use_cache=use_cache,
            window=window,
            block=block,
            generator=generator,
            seeds=seeds,
            batch_size=batch_size,
        )
        info = {"T": T, "top_k": top_k, "top_p": top_p, "sample_count": sample_count, "max_context": self.max_context}
        forecasts = [
            Forecast(
                paths=p.norm.inverse(z.astype(np.float64)),
                timestamps=p.y_index,
                last_close=p.last_close,
                history=p.history,
                info=dict(info),
            )
            for p, z in zip(prepared, paths)
        ]
        if not calibrate:
            return forecasts
        from kronos.calibration import calibrate_forecasts

        calibrations = calibrate_forecasts(
            self,
            list(df_list),
            list(x_timestamp_list),
            pred_len,
            n_origins=calibration_origins,
            stride=calibration_stride,
            lookback=calibration_lookback,
            sample_count=cal_samples,
            T=T,
            top_k=top_k,
            top_p=top_p,
            use_cache=use_cache,
            window=window,
            block=block,
            generator=generator,
        )
        return [cal.apply(fc) for cal, fc in zip(calibrations, forecasts)]

    def _prepare_many(
        self, df_list: Sequence[pd.DataFrame], xs: Sequence[Any], ys: Sequence[Any], pred_len: Any, single: bool
    ) -> list[_Prepared]:
        if isinstance(df_list, pd.DataFrame) or not isinstance(df_list, (list, tuple)):
            raise InputError("df_list must be a list of DataFrames")
        if not (len(df_list) == len(xs) == len(ys)):
            raise InputError(
                "df_list, x_timestamp_list and y_timestamp_list must have the same length, got "
                f"{len(df_list)}, {len(xs)}, {len(ys)}"
            )
        if len(df_list) == 0:
            raise InputError("df_list is empty")
        pred_len = _check_positive_int("pred_len", pred_len)
        return [
            self._prepare(df, x, y, pred_len, label=None if single else f"series {i}")
            for i, (df, x, y) in enumerate(zip(df_list, xs, ys))
        ]

    def forecast_df(
        self,
        df: pd.DataFrame,
        h: int,
        *,
        id_col: str | None = "symbol",
        time_col: str = "timestamps",
        quantiles: Sequence[float] = (0.1, 0.5, 0.9),
        sample_count: int = 20,
        seed: int = 0,
        **kwargs: Any,
    ) -> pd.DataFrame:
        """Forecast every series of a long-format panel: ``id_col, time_col``, the six means and ``{column}_q{level}``.

        One row per series and future bar. Future times follow each series' own trading schedule
        (``calendar="XSHG"`` for an exchange's sessions and holidays) unless ``future_timestamps``
        gives them; each series samples from its own seed. Options (``lookback``, ``calendar``,
        ``future_timestamps``, ``T``, ``top_k``, ``top_p``, ``batch_size``, ``verbose``): see
        :func:`kronos.panel.forecast_df`.
        """
        from kronos.panel import forecast_df

        return forecast_df(
            self,
            df,
            h,
            id_col=id_col,
            time_col=time_col,
            quantiles=quantiles,
            sample_count=sample_count,
            seed=seed,
            **kwargs,
        )

    # -- other tasks: thin front-ends of kronos.tasks and kronos.synthesis ------------------------
    def anomaly_scores(
        self,
        df: pd.DataFrame,
        x_timestamp: Any,
        *,
        causal: bool = True,
        min_context: int = 8,
        stride: int | None = None,
    ) -> pd.DataFrame:
        """Per-bar negative log-likelihood of the observed tokens given the bars before.

        Columns ``nll_s1``, ``nll_s2`` and ``score``.

        See :func:`kronos.tasks.anomaly_scores`; higher means more surprising to the model.
        """
        from kronos.tasks import anomaly_scores

        return anomaly_scores(self, df, x_timestamp, causal=causal, min_context=min_context, stride=stride)

    def embed(self, df: pd.DataFrame | Sequence[pd.DataFrame], x_timestamp: Any, *, pool: str = "mean") -> np.ndarray:
        """Pooled final hidden states: ``(d_model,)`` for one frame, ``(n, d_model)`` for a list of frames."""
        from kronos.tasks import embed_frames

        if isinstance(df, pd.DataFrame):
            return embed_frames(self, [df], [x_timestamp], pool=pool)[0]
        return embed_frames(self, df, x_timestamp, pool=pool)

    def embed_windows(
        self, df: pd.DataFrame, x_timestamp: Any, window: int, *, stride: int = 1, pool: str = "mean"
    ) -> pd.DataFrame:
        """Embeddings of rolling windows, indexed by each window's last bar (see :func:`kronos.tasks.embed_rolling`)."""
        from kronos.tasks import embed_rolling

        return embed_rolling(self, df, x_timestamp, window, stride=stride, pool=pool)

    def generate_synthetic(
        self,
        n_bars: int,
        *,
        history: pd.DataFrame | None = None,
        x_timestamp: Any = None,
        n_paths: int = 1,
        **kwargs: Any,
    ) -> list[pd.DataFrame]:
        """``n_paths`` synthetic series of ``n_bars`` valid OHLCV bars, unconditional or continuing ``history``.

        See :func:`kronos.synthesis.synthesize` for the options (timestamps, scale, sampling, burn-in).
        """
        from kronos.synthesis import synthesize

        return synthesize(self, n_bars, history=history, x_timestamp=x_timestamp, n_paths=n_paths, **kwargs)
