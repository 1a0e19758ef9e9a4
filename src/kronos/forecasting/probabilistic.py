"""The probabilistic API: every sample path as a :class:`~kronos.forecasting.forecast.Forecast`.

``forecast``, ``forecast_batch`` and ``forecast_df`` return distributions, not means, with one set of
sampling defaults (:class:`~kronos.inference.options.SamplingOptions`) and optional conformal calibration
on the series' own history (:mod:`kronos.forecasting.calibration`). ``forecast_fn`` is the uncalibrated
forecast function calibration drives. Panels are handed down to :func:`kronos.forecasting.panel.forecast_df`,
which calls back only ``forecast_batch``: the panel module never imports the predictor.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch

from kronos.bars.calendars import DEFAULT_CALENDAR
from kronos.bars.closeonly import from_closes
from kronos.bars.preprocessing import validate_timestamps
from kronos.bars.stocksplits import undo_frame_splits
from kronos.core.errors import InputError
from kronos.core.validation import integer, positive_int
from kronos.forecasting import panel
from kronos.forecasting.calibration import CalibrationOptions, ForecastFn, calibrate_forecasts
from kronos.forecasting.ensemble import ensemble_forecasts
from kronos.forecasting.forecast import Forecast
from kronos.forecasting.frames import series_times
from kronos.forecasting.notices import CollapsedPathsNotice, announce_floored_paths, announce_short_histories
from kronos.forecasting.prepared import (
    ENSEMBLE,
    Lookback,
    check_seed,
    check_series_lists,
    ensemble_members,
    path_info,
    prepare_many,
    prices,
    resolve_lookback,
    series_labels,
)
from kronos.forecasting.sampler import Draw, SeriesSampler
from kronos.inference.options import SamplingOptions

__all__ = ["ProbabilisticApi"]


class ProbabilisticApi(SeriesSampler):
    """Forecast distributions (and their calibration) on top of :class:`SeriesSampler`."""

    def forecast(
        self,
        df: pd.DataFrame,
        x_timestamp: Any = None,
        y_timestamp: Any = None,
        pred_len: int | None = None,
        options: SamplingOptions | None = None,
        *,
        calendar: str | Any | None = DEFAULT_CALENDAR,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        calibrate: bool | CalibrationOptions = False,
        lookback: Lookback = ENSEMBLE,
        splits: bool = True,
        verbose: bool = False,
        first_path: int = 0,
        **sampling: Any,
    ) -> Forecast:
        """Every sample path in price space as a :class:`Forecast` (quantiles, intervals, ``prob_up`` ...).

        ``predictor.forecast(df, pred_len=10)`` is enough: ``x_timestamp`` None takes the frame's time column
        (``timestamps``, ``date``, ``ds`` ... in any case) or its time index, and ``y_timestamp`` None the market's
        next ``pred_len`` bars by ``calendar`` (``"auto"``: an exchange calendar when one explains the history, else its
        learnt schedule; ``info["calendar"]`` names it), as ``forecast_df`` and the command line make them; with
        ``y_timestamp`` given, ``pred_len`` defaults to its length.

        Sampling settings: ``options`` (a :class:`SamplingOptions`) and/or its fields as keywords
        (``T``/``temperature``, ``top_k``, ``top_p``, ``sample_count``, ``use_cache``, ``window``,
        ``block``, ``batch_size``); the defaults are :class:`SamplingOptions`' (``top_p=1.0``, 100
        paths). ``seed`` samples from a private per-series generator (see :meth:`forecast_batch`).

        ``lookback``: the history bars the forecast conditions on, each window's normaliser fitted on exactly those.
        ``"ensemble"`` (default) shares the ``sample_count`` paths among windows of 64, 128 and ``"auto"`` bars
        (:data:`~kronos.forecasting.prepared.ENSEMBLE_LOOKBACKS`; each window with its own seed derived from ``seed``)
        and pools them: on held-out series it scores better than any one window and moves a quarter as much when the
        windows do. ``"auto"`` is the one window ``max_context - pred_len`` (at least
        :data:`~kronos.forecasting.prepared.MIN_AUTO_LOOKBACK`), so the forecast never slides the model's window; an
        int takes that many bars; ``None`` every bar given; a list (``[64, 128, "auto"]``) is an ensemble of those
        windows. Longer histories are trimmed before normalising; ``info["bars_used"]`` says how many bars the
        longest window used and ``info["lookbacks"]`` (ensembles) the bars of each.

        ``splits=True`` (default) undoes a share split left unadjusted in the bars the forecast reads (whole-ratio
        splits, found by price gap and volume: :mod:`kronos.bars.stocksplits`), so the window is one price scale;
        ``info["splits"]`` lists what was undone and a :class:`~kronos.bars.stocksplits.SplitsUndoneNotice` says so.
        ``splits=False`` reads the bars as given.

        ``calibrate=True`` (or a :class:`CalibrationOptions`) recalibrates the paths by split-conformal
        prediction on close returns, per horizon step, from rolling origins inside ``df`` only; it
        costs about ``origins`` extra forecasts. The forecast is then made from the last ``lookback``
        bars, the same window as every origin, so the calibration measures the forecaster it corrects.
        An ensemble is calibrated as a whole: every origin is forecast by the same ensemble.
        The result's ``coverage_report()`` gives the coverage before and after; see
        :mod:`kronos.forecasting.calibration`.

        ``first_path`` (with ``seed``, uncalibrated): the paths ``first_path .. first_path + sample_count - 1``
        of the seed's stream, so a large forecast computed in slices of paths (as the server does, to stay
        fair to other requests) gets exactly the paths of one call.
        """
        x_timestamp, y_timestamp, pred_len, used = series_times(df, x_timestamp, y_timestamp, pred_len, calendar)
        seeds = None if seed is None else [check_seed(seed)]
        opts = SamplingOptions.resolve(options, **sampling)
        first_path = integer("first_path", first_path, minimum=0)
        if first_path and (seed is None or calibrate):
            raise InputError("first_path needs a seed and calibrate=False")
        draw = Draw(opts, seeds, generator, verbose, first_path)
        fc = self._forecasts(
            [df],
            [x_timestamp],
            [y_timestamp],
            pred_len,
            draw,
            calibrate,
            labels=[None],
            lookback=lookback,
            splits=splits,
        )[0]
        if used is not None:
            fc.info["calendar"] = used
        return fc

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
        lookback: Lookback = ENSEMBLE,
        splits: bool = True,
        labels: Sequence[Any] | None = None,
        verbose: bool = False,
        **sampling: Any,
    ) -> list[Forecast]:
        """:meth:`forecast` for several series (histories may differ in length); each calibrated on its own history.

        ``seeds`` (one int per series) gives every series its own random stream, calibration
        included, so a series' forecast is the same alone, in any batch and in any order; without
        them the draws come from ``generator`` (default torch's global one) in one stream. ``lookback``
        and ``splits`` as in :meth:`forecast`, per series. ``labels``: what errors and notices call each series
        (a panel's ids, say ``"series 'AAPL'"``); default ``series i``, its place in ``df_list``.
        """
        opts = SamplingOptions.resolve(options, **sampling)
        if seeds is not None:
            seeds = [check_seed(s, f"seeds[{i}]") for i, s in enumerate(seeds)]
        draw = Draw(opts, seeds, generator, verbose)
        return self._forecasts(
            df_list,
            x_timestamp_list,
            y_timestamp_list,
            pred_len,
            draw,
            calibrate,
            labels=labels,
            lookback=lookback,
            splits=splits,
        )

    def forecast_fn(
        self,
        options: SamplingOptions | None = None,
        *,
        generator: torch.Generator | None = None,
        lookback: Sequence[int | None] | None = None,
        splits: bool = True,
        announce: bool = True,
        **sampling: Any,
    ) -> ForecastFn:
        """A :data:`~kronos.forecasting.calibration.ForecastFn` ``(frames, x_timestamps, y_timestamps, seeds)``
        of uncalibrated forecasts with these settings: what
        :func:`kronos.forecasting.calibration.calibrate_forecasts` drives. Every bar of each frame is used
        (calibration cuts each origin's window itself), or, with ``lookback`` (a list), the windows of an ensemble;
        ``splits`` as in :meth:`forecast`; ``announce=False``: no notice of collapsed paths (``info["floored_paths"]``
        still says), for a caller that tells them itself."""
        opts = SamplingOptions.resolve(options, **sampling)

        def run(frames: Sequence[pd.DataFrame], xs: Sequence[Any], ys: Sequence[Any], seeds: Any) -> list[Forecast]:
            draw = Draw(opts, seeds, generator)
            return self._forecasts(
                list(frames),
                xs,
                ys,
                len(ys[0]),
                draw,
                False,
                lookback=lookback,
                splits=splits,
                announce=announce,
            )

        return run

    def _forecasts(
        self,
        df_list: Sequence[pd.DataFrame],
        xs: Sequence[Any],
        ys: Sequence[Any],
        pred_len: Any,
        draw: Draw,
        calibrate: bool | CalibrationOptions,
        *,
        labels: Sequence[Any] | None = None,
        lookback: Lookback = ENSEMBLE,
        splits: bool = True,
        announce: bool = True,
    ) -> list[Forecast]:
        """Prepare, generate, de-normalise; then, if asked, calibrate with a forecast function of the same settings.
        A close-only frame (``close`` or ``y``, no open/high/low) is forecast from bars built from its closes;
        ``splits``: undo the splits in the bars read (the forecast's window, or the whole history when calibrated);
        ``announce``: a notice for each forecast with collapsed paths; errors and notices name a series by its
        label (:func:`~kronos.forecasting.prepared.series_labels`: ``series i`` unless ``labels`` says)."""
        pred_len = positive_int("pred_len", pred_len)
        opts = draw.opts
        members = ensemble_members(lookback, self.max_context, pred_len)
        if isinstance(lookback, (list, tuple)) and not draw.first_path and opts.sample_count < len(lookback):
            raise InputError(
                f"sample_count={opts.sample_count} is fewer than the {len(lookback)} lookbacks of the ensemble: "
                "at least one path each"
            )
        check_series_lists(df_list, xs, ys)
        names = series_labels(len(df_list), labels)
        df_list = [from_closes(df, id_col=None) if isinstance(df, pd.DataFrame) else df for df in df_list]
        window = resolve_lookback(lookback, self.max_context, pred_len)  # an ensemble's longest window
        cal = CalibrationOptions() if calibrate is True else calibrate or None
        if not isinstance(splits, bool):
            raise InputError(f"splits must be True or False, got {splits!r}")
        undone: list[list[dict[str, Any]]] = []
        if splits:
            adjusted = []
            for df, x, label in zip(df_list, xs, names):
                frame, found = undo_frame_splits(df, x, reach=None if cal is not None else window, label=label)
                adjusted.append(frame)
                undone.append(found)
            df_list = adjusted
        windows: int | None | list[int] = window
        if cal is not None:
            if not isinstance(cal, CalibrationOptions):
                raise InputError(f"calibrate must be True, False or a CalibrationOptions, got {calibrate!r}")
            windows, short = [], []
            for df, label in zip(df_list, names):  # check the history is long enough before spending time on sampling
                try:
                    # the forecast conditions on the same number of bars as every calibration origin
                    windows.append(cal.layout(len(df), pred_len, self.max_context, window)[1])
                except InputError as exc:
                    short.append((label, len(df), exc))
            if short:  # every series that cannot be calibrated, so a panel is mended in one go
                label, _, exc = short[0]
                first = f"{label}: {exc}" if label else str(exc)
                if len(short) == 1:
                    raise InputError(first)
                others = ", ".join(f"{lab} ({bars} bars)" for lab, bars, _ in short[1:6])
                more = f" and {len(short) - 6} more" if len(short) > 6 else ""
                raise InputError(f"{first}. Too short as well: {others}{more}")
        if members is not None:
            frames, stamps = df_list, xs
            # calibrated: the ensemble and every origin see the same window (each history cut to it first)
            if cal is not None:
                frames, stamps = [], []
                for df, x, w, label in zip(df_list, xs, windows, names):
                    x_idx = validate_timestamps(x, name="x_timestamp", expected_len=len(df), label=label)
                    frames.append(df.iloc[len(df) - w :])
                    stamps.append(pd.Series(x_idx[len(df) - w :]))
            bars_given = [len(df) for df in df_list]
            forecasts = ensemble_forecasts(self, frames, stamps, ys, pred_len, draw, names, members, bars_given)
        else:
            prepared = prepare_many(self.components, df_list, xs, ys, pred_len, names, windows)
            paths_z = self._paths(prepared, pred_len, draw)
            info = {**opts.info(), "max_context": self.max_context}
            forecasts = []
            for p, z, given in zip(prepared, paths_z, [len(df) for df in df_list]):
                paths, repaired = prices(p, z)
                forecasts.append(
                    Forecast(
                        paths=paths,
                        timestamps=p.y_index,
                        last_close=p.last_close,
                        history=p.history,
                        info={
                            **info,
                            "bars_given": given,
                            "bars_used": len(p.x),
                            **path_info(paths, p.last_close, repaired),
                        },
                    )
                )
        if announce:
            announce_floored_paths(forecasts, names)
            announce_short_histories(forecasts, names)
        if cal is not None:
            forecasts = self._calibrated(forecasts, df_list, xs, pred_len, draw, cal, window, members, names)
        for i, fc in enumerate(forecasts):
            fc.info["splits"] = undone[i] if undone else []
        return forecasts

    def _calibrated(
        self,
        forecasts: list[Forecast],
        df_list: Sequence[pd.DataFrame],
        xs: Sequence[Any],
        pred_len: int,
        draw: Draw,
        cal: CalibrationOptions,
        window: int | None,
        members: list[int | None] | None,
        labels: Sequence[str | None],
    ) -> list[Forecast]:
        """``forecasts`` calibrated on rolling origins inside each history, each origin forecast the same way
        (``members``: the windows of a lookback ensemble; errors name each series by its label)."""
        opts = draw.opts
        cal_opts = opts if cal.sample_count is None else dataclasses.replace(opts, sample_count=cal.sample_count)
        if members is not None:  # each origin is the same ensemble; with fewer paths than windows, the first ones
            members = members[: cal_opts.sample_count]
        origins = self.forecast_fn(cal_opts, generator=draw.generator, lookback=members, splits=False, announce=False)
        collapsed = 0

        def counted(frames: Sequence[pd.DataFrame], xs: Sequence[Any], ys: Sequence[Any], seeds: Any) -> list[Forecast]:
            nonlocal collapsed
            out = origins(frames, xs, ys, seeds)
            collapsed += sum(fc.info["floored_paths"] > 0 for fc in out)
            return out

        calibrations = calibrate_forecasts(
            counted,
            list(df_list),
            list(xs),
            pred_len,
            cal,
            max_context=self.max_context,
            sample_count=cal_opts.sample_count,
            seeds=draw.seeds,
            settings={k: v for k, v in opts.info().items() if k != "sample_count"},
            window=window,
            progress=draw.verbose,
            futures=[fc.timestamps for fc in forecasts],
            labels=labels,
        )
        if collapsed:  # an origin's forecast is not the user's: its collapsed paths are told as the calibration's
            warnings.warn(
                f"{collapsed} of the calibration origins' forecasts had paths that fell to the price floor (1e-6 of "
                "the last close): a history that holds a fall so large is a poor guide to the spread; the calibration "
                "used them as they are",
                CollapsedPathsNotice,
                stacklevel=3,
            )
        return [c.apply(fc) for c, fc in zip(calibrations, forecasts)]

    def forecast_df(
        self, df: pd.DataFrame, h: int, options: SamplingOptions | None = None, **kwargs: Any
    ) -> pd.DataFrame:
        """Forecast every series of a long-format panel: see :func:`kronos.forecasting.panel.forecast_df`
        (this only delegates, passing this predictor as the panel's batch forecaster)."""
        return panel.forecast_df(self, df, h, options, **kwargs)
