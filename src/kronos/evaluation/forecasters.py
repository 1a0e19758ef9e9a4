"""The one interface every model is evaluated through, and how names turn into forecasters.

A forecaster takes the bars up to and including the forecast origin and the timestamps of the bars
to forecast, and returns a :class:`~kronos.forecasting.forecast.Forecast` of sample paths. Baselines and Kronos
checkpoints (pre-trained or fine-tuned) implement the same method, so the rolling-origin engine,
the metrics and the backtests never need to know which kind they are scoring.

Names understood by :func:`load_forecaster`:

* ``persistence``, ``drift``, ``drift-normal``, ``garch``, ``garch-t``, ``ets``, ``arima``: baselines
  (see :mod:`kronos.evaluation.baselines`);
* ``kronos``: the model shipped in the package (``kronos-open``), offline; ``kronos-cal``: the same model
  with split-conformal calibration on rolling origins inside each history (``calibrate=True``);
* a directory holding ``model/`` and ``tokenizer/`` (a Kronos checkpoint, fine-tuned or not), a
  published name (``kronos-small``) or a hub id (``NeoQuasar/Kronos-small``) when the hub is
  reachable or the files are cached;
* ``LABEL=SPEC`` for any of the above, to choose the name shown in reports (``tiny=/path/to/ckpt``);
  the label ``kronos-cal`` calibrates whatever it names (``kronos-cal=/path/to/ckpt``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from kronos.core.errors import InputError
from kronos.forecasting.calibration import CalibrationOptions
from kronos.forecasting.forecast import FEATURES, Forecast
from kronos.inference.options import SamplingOptions

__all__ = [
    "BASELINES",
    "calibrates",
    "Forecaster",
    "ForecasterSpec",
    "KronosForecaster",
    "SHIPPED_FORECASTERS",
    "load_forecaster",
    "parse_forecaster_spec",
]

_SAMPLING, _CALIBRATION = SamplingOptions(), CalibrationOptions()  # the library's defaults, not restated


@runtime_checkable
class Forecaster(Protocol):
    """Anything that turns a history into a forecast distribution.

    ``history`` has a ``timestamps`` column and ``open, high, low, close`` (``volume``/``amount``
    optional), the last row being the forecast origin; nothing after the origin is ever passed.
    ``future_timestamps`` are the times of the bars to forecast (their number is the horizon).
    ``num_samples`` is the number of sample paths wanted (a deterministic forecaster may return
    one). ``seed`` makes stochastic forecasters reproducible.
    """

    name: str

    def forecast(
        self,
        history: pd.DataFrame,
        future_timestamps: pd.DatetimeIndex,
        num_samples: int,
        *,
        seed: int | None = None,
    ) -> Forecast: ...


class KronosForecaster:
    """Adapter from a Kronos predictor (``KronosPredictor``) to the :class:`Forecaster` interface.

    Sampling settings are fixed at construction so every origin is forecast the same way; the seed
    of each call is the origin's own random stream (``seeds`` of ``KronosPredictor.forecast_batch``),
    so a run is reproducible, two runs that see the same history draw the same paths (the basis of
    the no-look-ahead test), and forecasts do not depend on the order in which origins are run nor on
    which origins share a batch: :meth:`forecast_many` (what the rolling engine calls) runs many
    origins in one padded batch and gives exactly what :meth:`forecast` gives for each.

    ``max_history`` (default: the predictor's ``max_context``) keeps only the last bars of a longer
    history. Kronos normalises a series with the statistics of everything it is given but attends to
    at most ``max_context`` tokens, so a lookback longer than the context shifts the inputs away from
    what the model was trained on (on real futures a 256-bar history tripled a 64-context model's
    error). Trimming lets every forecaster share one ``--lookback`` while Kronos uses what it can;
    ``max_history=0`` passes the whole lookback, as the original ``predict`` would.
    """

    def __init__(
        self,
        predictor: Any,
        name: str = "kronos",
        *,
        temperature: float = _SAMPLING.temperature,
        top_k: int = _SAMPLING.top_k,
        top_p: float = _SAMPLING.top_p,
        max_history: int | None = None,
        calibrate: bool = False,
        calibration_origins: int = _CALIBRATION.origins,
        calibration_samples: int | None = None,
    ) -> None:
        self.predictor = predictor
        self.name = name
        # validated here, once, before any worker starts; sample_count is set per call
        self.sampling = SamplingOptions(temperature=temperature, top_k=top_k, top_p=top_p)
        self.calibration = (
            CalibrationOptions(origins=calibration_origins, sample_count=calibration_samples) if calibrate else None
        )
        if max_history is None:
            # calibration needs the history before the forecast window for its rolling origins
            max_history = 0 if calibrate else int(getattr(predictor, "max_context", 0) or 0)
        self.max_history = int(max_history)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        name: str | None = None,
        device: str | None = None,
        max_context: int | None = None,
        temperature: float = _SAMPLING.temperature,
        top_k: int = _SAMPLING.top_k,
        top_p: float = _SAMPLING.top_p,
        max_history: int | None = None,
        calibrate: bool = False,
        calibration_origins: int = _CALIBRATION.origins,
        calibration_samples: int | None = None,
    ) -> KronosForecaster:
        """Load a checkpoint directory (``model/`` + ``tokenizer/``), a registry name or a hub id.

        ``max_context`` defaults to what the checkpoint declares (``predictor.json`` or the
        registry entry), else 512. ``calibrate=True`` calibrates every forecast on
        ``calibration_origins`` rolling origins inside the history it is given (so give it a lookback of
        about ``max_context + calibration_origins x horizon`` bars).
        """
        try:
            from kronos.forecasting.predictor import KronosPredictor
        except ImportError as exc:  # the core model ships in the same package; say so if it is absent
            raise InputError(
                f"cannot load Kronos checkpoint {path!s}: kronos.KronosPredictor is unavailable ({exc})"
            ) from None
        kwargs: dict[str, Any] = {}
        if max_context is not None:
            kwargs["max_context"] = int(max_context)
        if device is not None:
            kwargs["device"] = device
        predictor = KronosPredictor.from_pretrained(str(path), **kwargs)
        label = name or Path(str(path).rstrip("/")).name or "kronos"
        return cls(
            predictor,
            label,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            max_history=max_history,
            calibrate=calibrate,
            calibration_origins=calibration_origins,
            calibration_samples=calibration_samples,
        )

    def forecast(
        self,
        history: pd.DataFrame,
        future_timestamps: pd.DatetimeIndex,
        num_samples: int,
        *,
        seed: int | None = None,
        label: str | None = None,
    ) -> Forecast:
        seeds = None if seed is None else [seed]
        return self.forecast_many([history], [future_timestamps], num_samples, seeds=seeds, labels=[label])[0]

    def forecast_many(
        self,
        histories: list[pd.DataFrame],
        future_timestamps: list[pd.DatetimeIndex],
        num_samples: int,
        *,
        seeds: list[int] | None = None,
        labels: list[str | None] | None = None,
    ) -> list[Forecast]:
        """:meth:`forecast` of many origins (or series) with the same horizon, in padded batches.

        With ``seeds`` each forecast equals the single call with that seed; without, the draws come
        from torch's global generator. ``labels`` name each origin in errors and notices (the rolling engine passes
        ``"'SYMBOL' at <origin time>"``; default: its place in the batch).
        """
        frames, xs, ys = [], [], []
        for history, future_times in zip(histories, future_timestamps):
            if self.max_history > 0 and len(history) > self.max_history:
                history = history.iloc[-self.max_history :]
            cols = [c for c in FEATURES if c in history.columns]
            frames.append(history[cols].reset_index(drop=True))
            xs.append(pd.Series(pd.DatetimeIndex(history["timestamps"])))
            ys.append(pd.Series(pd.DatetimeIndex(future_times)))
        horizons = {len(y) for y in ys}
        if len(horizons) != 1:
            raise InputError(f"forecast_many needs one horizon for every origin, got {sorted(horizons)}")
        horizon = horizons.pop()
        options = dict(
            options=SamplingOptions.resolve(self.sampling, sample_count=int(num_samples)),
            verbose=False,
            calibrate=self.calibration or False,
        )
        seed_list = [None] * len(frames) if seeds is None else [int(s) for s in seeds]
        if hasattr(self.predictor, "forecast_batch"):
            named = None if labels is None or all(x is None for x in labels) else list(labels)
            results = self.predictor.forecast_batch(
                frames, xs, ys, horizon, seeds=None if seeds is None else seed_list, labels=named, **options
            )
        else:  # a predictor with only forecast(): one call per origin
            results = [
                self.predictor.forecast(f, x, y, horizon, seed=s, **options)
                for f, x, y, s in zip(frames, xs, ys, seed_list)
            ]
        for result in results:
            result.info.setdefault("forecaster", self.name)
        return results


# ----------------------------------------------------------------------------------------------
# names -> forecasters


def _baseline_factories() -> dict[str, Callable[[], Forecaster]]:
    from kronos.evaluation import baselines as b

    return {
        "persistence": lambda: b.Persistence(),
        "drift": lambda: b.DriftRandomWalk(method="bootstrap"),
        "drift-normal": lambda: b.DriftRandomWalk(method="normal", name="drift-normal"),
        "garch": lambda: b.Garch(dist="normal"),
        "garch-t": lambda: b.Garch(dist="t", name="garch-t"),
        "ets": lambda: b.StatsForecastModel("ets"),
        "arima": lambda: b.StatsForecastModel("arima"),
    }


BASELINES: tuple[str, ...] = ("persistence", "drift", "drift-normal", "garch", "garch-t", "ets", "arima")

#: Names of the shipped model as a forecaster: raw, and calibrated on each history.
SHIPPED_FORECASTERS: tuple[str, ...] = ("kronos", "kronos-cal")


@dataclass(frozen=True)
class ForecasterSpec:
    """A picklable recipe for a forecaster: what worker processes receive instead of a model.

    ``source`` is a baseline name, a checkpoint directory or a hub id; ``label`` the report name;
    ``options`` the Kronos loading/sampling options (``device``, ``max_context``, ``temperature``,
    ``top_k``, ``top_p``, ``max_history``), ignored by baselines.
    """

    label: str
    source: str
    options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    def build(self) -> Forecaster:
        return load_forecaster(self.source, name=self.label, **dict(self.options))


def parse_forecaster_spec(text: str, **kronos_options: Any) -> ForecasterSpec:
    """Parse ``NAME``, ``PATH`` or ``LABEL=NAME_OR_PATH`` into a :class:`ForecasterSpec`."""
    text = text.strip()
    if not text:
        raise InputError("empty forecaster name")
    label, sep, source = text.partition("=")
    if not sep:
        source = text
        known = text.lower() in BASELINES or text.lower() in SHIPPED_FORECASTERS
        label = text.lower() if known else (Path(text.rstrip("/")).name or text)
    label, source = label.strip(), source.strip()
    if not label or not source:
        raise InputError(f"forecaster {text!r}: expected NAME, PATH or LABEL=NAME_OR_PATH")
    opts = tuple(sorted((k, v) for k, v in kronos_options.items() if v is not None))
    return ForecasterSpec(label=label, source=source, options=opts)


def calibrates(spec: str) -> bool:
    """Whether a forecaster spec (``NAME``, ``PATH`` or ``LABEL=SOURCE``) names a calibrated Kronos: ``kronos-cal``,
    or ``kronos-cal=DIR`` (that checkpoint, calibrated), as :func:`load_forecaster` builds them."""
    label, sep, source = spec.strip().partition("=")
    return "kronos-cal" in {label.strip().lower(), source.strip().lower() if sep else ""}


def load_forecaster(name_or_checkpoint: str, *, name: str | None = None, **kronos_options: Any) -> Forecaster:
    """Build a forecaster from a baseline name, a Kronos checkpoint directory or a hub id.

    Unknown names that are neither an existing directory nor look like a hub id (``owner/repo``)
    are an error listing the baselines, so a typo is not mistaken for a download.
    """
    factories = _baseline_factories()
    key = name_or_checkpoint.strip()
    if key.lower() in factories:
        forecaster = factories[key.lower()]()
        if name:
            forecaster.name = name
        return forecaster
    if calibrates(key) or (name or "").lower() == "kronos-cal":
        kronos_options.setdefault("calibrate", True)  # `kronos-cal=DIR`: that checkpoint, calibrated
    if key.lower() in SHIPPED_FORECASTERS:
        from kronos.model.registry import DEFAULT_MODEL

        return KronosForecaster.from_pretrained(DEFAULT_MODEL, name=name or key.lower(), **kronos_options)
    path = Path(key).expanduser()
    if path.exists():
        if not path.is_dir():
            raise InputError(f"forecaster {key!r}: a checkpoint must be a directory holding model/ and tokenizer/")
        missing = [d for d in ("model", "tokenizer") if not (path / d).is_dir()]
        if missing:
            raise InputError(
                f"forecaster {key!r}: checkpoint directory lacks {missing} (expected model/ and tokenizer/)"
            )
        return KronosForecaster.from_pretrained(path, name=name, **kronos_options)
    published = False
    try:
        from kronos.model.registry import resolve_model

        published = resolve_model(key) is not None
    except ImportError:  # pragma: no cover - the registry ships with the core package
        pass
    if published or (key.count("/") == 1 and not key.startswith((".", "/"))):
        return KronosForecaster.from_pretrained(key, name=name, **kronos_options)
    raise InputError(
        f"unknown forecaster {key!r}: use one of {', '.join(BASELINES + SHIPPED_FORECASTERS)}, a checkpoint directory "
        "(holding model/ and tokenizer/) or a hub id like NeoQuasar/Kronos-small"
    )
