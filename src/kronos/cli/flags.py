"""Options shared by several commands: one name, one default and one help text each.

A flag that means the same thing in two commands is declared here once, so ``kronos forecast``,
``forecast-dist``, ``demo``, ``evaluate`` and ``backtest`` cannot drift apart. The defaults are the
library's: :data:`kronos.model.registry.DEFAULT_MODEL`, :data:`kronos.model.registry.DEFAULT_LOOKBACK` and the
sampling defaults of :meth:`kronos.forecasting.predictor.KronosPredictor.forecast`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import typer

from kronos.bars.calendars import DEFAULT_CALENDAR
from kronos.core.errors import InputError
from kronos.forecasting import prepared
from kronos.forecasting.calibration import CalibrationOptions
from kronos.forecasting.prepared import AUTO, ENSEMBLE
from kronos.inference.options import SamplingOptions
from kronos.model.registry import DEFAULT_LOOKBACK, DEFAULT_MODEL

__all__ = [
    "DEFAULT_PRED_LEN",
    "DEFAULT_SAMPLES",
    "DEFAULT_SEED",
    "DEFAULT_TEMPERATURE",
    "DEFAULT_TOP_K",
    "DEFAULT_TOP_P",
    "RANDOM_TINY_HELP",
    "calendar_option",
    "device_option",
    "full_history_option",
    "jobs_option",
    "anchor_option",
    "evaluation_splits_option",
    "lookback_option",
    "splits_option",
    "parse_lookback",
    "parse_window",
    "window_option",
    "evaluation_window",
    "max_context_option",
    "max_series_option",
    "model_option",
    "pred_len_option",
    "progress_option",
    "random_tiny_option",
    "samples_option",
    "seed_option",
    "symbols_option",
    "temperature_option",
    "top_k_option",
    "top_p_option",
]

DEFAULT_PRED_LEN = 20  # bars forecast by forecast, forecast-dist and demo
_SAMPLING = SamplingOptions()  # the library's one set of sampling defaults (plain sampling, 100 paths)
DEFAULT_SAMPLES = _SAMPLING.sample_count
DEFAULT_SEED = 0
DEFAULT_TEMPERATURE = _SAMPLING.temperature
DEFAULT_TOP_K = _SAMPLING.top_k
DEFAULT_TOP_P = _SAMPLING.top_p

RANDOM_TINY_HELP = "Use a randomly initialised tiny model instead of --model (for tests: its numbers mean nothing)."


def model_option() -> Any:
    return typer.Option(
        DEFAULT_MODEL,
        "--model",
        help="Checkpoint directory (with model/ and tokenizer/), hub id, or registry name "
        f"(default: the shipped {DEFAULT_MODEL}).",
    )


def random_tiny_option() -> Any:
    return typer.Option(False, "--random-tiny", help=RANDOM_TINY_HELP, hidden=True)


def parse_window(value: str) -> int | str:
    """evaluate/backtest's ``--lookback``: ``auto`` or a positive number of bars (one window of
    :func:`kronos.forecasting.prepared.parse_lookback`'s grammar, no ensemble)."""
    try:
        window = prepared.parse_lookback(value)
    except InputError:
        window = None
    if window is None or window == ENSEMBLE or isinstance(window, list):
        raise typer.BadParameter(f"must be 'auto' or a positive number of bars, got {value!r}")
    return window


def parse_lookback(value: str) -> int | str | list[int | str]:
    """``--lookback``: ``ensemble``, ``auto``, a positive number of bars, or a comma-separated list (an ensemble);
    the grammar of :func:`kronos.forecasting.prepared.parse_lookback`."""
    try:
        return prepared.parse_lookback(value)
    except InputError as e:
        raise typer.BadParameter(str(e)) from None


def lookback_option() -> Any:
    """The forecast commands' ``--lookback``: ``ensemble`` (default) pools windows of auto, 128 and 64 bars."""
    return typer.Option(
        ENSEMBLE,
        "--lookback",
        parser=parse_lookback,
        metavar="ensemble|auto|BARS|LIST",
        help="History bars each forecast conditions on, the last ones; the normaliser is fitted on exactly "
        "these. ensemble (default): the paths are shared among windows of auto, 128 and 64 bars and pooled; auto: "
        "max_context - pred-len, so the forecast fits the model's context; BARS: that many; LIST (e.g. 64,auto): "
        "an ensemble of those windows.",
    )


def anchor_option() -> Any:
    """The forecast commands' ``--anchor/--no-anchor``."""
    return typer.Option(
        True,
        "--anchor/--no-anchor",
        help="Start the sample paths from the last bar as given (default); --no-anchor continues them from the "
        "tokenizer's reconstruction of it, as the original Kronos does (a jump at the first bar).",
    )


def calibrate_option(default: bool) -> Any:
    """The forecast commands' ``--calibrate/--no-calibrate`` (forecast-dist: on; forecast, which runs panels: off)."""
    return typer.Option(
        default,
        "--calibrate/--no-calibrate",
        help="Calibrate each series' quantiles and P(up) on rolling origins of its own history before the last "
        "--lookback bars (split-conformal; costs --origins more forecasts per series).",
    )


def origins_option() -> Any:
    """The forecast commands' ``--origins``: calibration origins per series."""
    return typer.Option(20, "--origins", min=1, help="Calibration origins per series.")


def stride_option() -> Any:
    """The forecast commands' ``--stride``: bars between calibration origins."""
    return typer.Option(None, "--stride", min=1, help="Bars between calibration origins (default: pred-len).")


def splits_option() -> Any:
    """The forecast commands' ``--undo-splits/--keep-splits``."""
    return typer.Option(
        True,
        "--undo-splits/--keep-splits",
        help="Undo a share split left unadjusted in the bars (a whole-ratio gap that stays, volume moving against "
        "it; a note says which), so the forecast reads one price scale; --keep-splits reads the bars as given.",
    )


def evaluation_splits_option() -> Any:
    """evaluate/backtest's ``--undo-splits/--keep-splits``: the series, for every forecaster."""
    return typer.Option(
        True,
        "--undo-splits/--keep-splits",
        help="Undo share splits left unadjusted in each series (a whole-ratio gap that stays, volume moving against "
        "it; a note says which) before any forecaster reads it, so baselines are not scored on a split and returns "
        "do not book one; --keep-splits reads the bars as given (kronos still undoes them in the bars it reads).",
    )


def window_option() -> Any:
    """evaluate/backtest's ``--lookback``: the history window every forecaster gets at each origin."""
    return typer.Option(
        AUTO,
        "--lookback",
        parser=parse_window,
        metavar="auto|BARS",
        help=f"History bars every forecaster gets at each origin. auto (default): {DEFAULT_LOOKBACK} bars, of which "
        "Kronos conditions on the last max_context - pred-len (its own lookback auto); with kronos-cal "
        f"{DEFAULT_LOOKBACK} + calibration origins x horizon, so its calibration has its origins and its forecast its "
        "whole window.",
    )


def evaluation_window(
    lookback: int | str,
    forecasters: Sequence[str] = (),
    horizon: int = 1,
    calibration_origins: int | None = None,
    max_context: int | None = None,
) -> int:
    """The bars every forecaster gets at an origin for evaluate/backtest's ``--lookback``.

    ``auto``: the context (:data:`DEFAULT_LOOKBACK`, or ``max_context``), and when a forecaster calibrates
    (``kronos-cal``) that plus ``calibration_origins x horizon``: its origins lie before the forecast's own window, and
    with the context alone it forecast from a shorter window than the product does (horizon 5) or failed (horizon 20).
    """
    from kronos.evaluation.forecasters import calibrates  # here: the evaluation package costs every command 0.5 s

    if lookback != AUTO:
        return int(lookback)
    base = int(max_context or DEFAULT_LOOKBACK)
    if any(calibrates(spec) for spec in forecasters):
        return base + int(calibration_origins or CalibrationOptions().origins) * int(horizon)
    return base


def pred_len_option() -> Any:
    return typer.Option(DEFAULT_PRED_LEN, "--pred-len", min=1, help="Bars to forecast.")


def samples_option() -> Any:
    return typer.Option(DEFAULT_SAMPLES, "--samples", min=1, help="Sample paths per forecast.")


def seed_option() -> Any:
    return typer.Option(DEFAULT_SEED, "--seed", help="Random seed (each series and origin derives its own from it).")


def temperature_option() -> Any:
    return typer.Option(DEFAULT_TEMPERATURE, "--temperature", "-T", help="Kronos sampling temperature.")


def top_k_option() -> Any:
    return typer.Option(DEFAULT_TOP_K, "--top-k", min=0, help="Kronos top-k sampling (0 = off).")


def top_p_option() -> Any:
    return typer.Option(DEFAULT_TOP_P, "--top-p", min=0.0, max=1.0, help="Kronos nucleus sampling (1 = off).")


def max_context_option() -> Any:
    return typer.Option(
        None,
        "--max-context",
        min=1,
        help="Model context in bars (default: the checkpoint's predictor.json, the published context, else 512).",
    )


def device_option() -> Any:
    return typer.Option(None, "--device", help="cuda, mps or cpu (default: best available).")


def jobs_option() -> Any:
    return typer.Option(0, "--jobs", "-j", help="Worker processes (0 = every core).")


def symbols_option() -> Any:
    return typer.Option(None, "--symbols", help="Only these series (comma-separated or repeated).")


def max_series_option() -> Any:
    return typer.Option(None, "--max-series", help="Only the first N series in name order.")


def full_history_option() -> Any:
    return typer.Option(
        False, "--kronos-full-history", help="Give Kronos the whole lookback, not only its last max_context bars."
    )


def progress_option() -> Any:
    return typer.Option(True, "--progress/--no-progress", help="Show a progress bar.")


def calendar_option(default: str | None = DEFAULT_CALENDAR) -> Any:
    """``--calendar``: how future bar times are made (:func:`kronos.bars.calendars.market_times`)."""
    return typer.Option(
        default,
        "--calendar",
        help="Future bar times: auto (an exchange calendar when one explains 99% of the history's trading days, "
        "else the schedule learnt from the history), own (the learnt schedule) or an exchange_calendars name "
        "(XNYS, XSHG, XLON ...).",
    )
