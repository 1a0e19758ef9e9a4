"""Request and response bodies of the HTTP API (pydantic models; they also make the OpenAPI docs).

Field-level checks (types, ranges, list sizes) happen here; the checks on the series itself (NaN,
order, duplicates, non-positive prices) are the library's own, run in :mod:`kronos.server.inference`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from kronos.bars.calendars import DEFAULT_CALENDAR
from kronos.core.errors import InputError
from kronos.forecasting.panel import DEFAULT_QUANTILES
from kronos.forecasting.prepared import MAX_ENSEMBLE_WINDOWS, parse_lookback
from kronos.inference.options import SamplingOptions

__all__ = ["Bar", "ForecastRequest", "ForecastResponse", "ModelInfo", "ModelsResponse"]

_SAMPLING = SamplingOptions()  # the library's defaults, so the API and every command agree


def _no_bool(value: Any) -> Any:
    """Refuse ``true``/``false`` where a number is expected (pydantic's lax mode would read ``true`` as 1)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got the boolean {str(value).lower()}")
    return value


#: Numbers that refuse booleans; strings of digits (multipart form fields) are still read.
Int = Annotated[int, BeforeValidator(_no_bool)]
Float = Annotated[float, BeforeValidator(_no_bool)]


class Bar(BaseModel):
    """One candlestick. ``volume`` and ``amount`` are optional (missing volume means 0). A close-only series
    leaves out ``open``, ``high`` and ``low`` in every bar: bars are then built from the closes (open =
    previous close, high/low = the larger/smaller of the two) and the response's ``notes`` say so."""

    model_config = ConfigDict(extra="forbid")

    timestamps: datetime = Field(description="Bar time, ISO 8601 (e.g. 2024-05-01T09:30:00).")
    open: Float | None = None
    high: Float | None = None
    low: Float | None = None
    close: Float
    volume: Float | None = None
    amount: Float | None = None


class ForecastRequest(BaseModel):
    """A forecast of the bars after ``bars``. Limits (bars, ``pred_len``, ``sample_count``) are the server's."""

    model_config = ConfigDict(extra="forbid")

    bars: list[Bar] = Field(description="History, oldest first.")
    pred_len: Int = Field(ge=1, description="Bars to forecast.")
    sample_count: Int = Field(
        _SAMPLING.sample_count, ge=1, description="Sample paths drawn; quantiles and prob_up come from them."
    )
    quantiles: list[Float] = Field(
        list(DEFAULT_QUANTILES), min_length=1, max_length=20, description="Levels in (0, 1), each once."
    )
    T: Float = Field(_SAMPLING.temperature, gt=0, description="Sampling temperature.")
    top_p: Float = Field(_SAMPLING.top_p, gt=0, le=1, description="Nucleus sampling threshold.")
    seed: Int | None = Field(None, ge=0, lt=2**63, description="Random seed; the response names the one used.")
    calibrate: bool = Field(False, description="Conformal calibration on the history (needs a long history).")
    lookback: (
        Int
        | Literal["ensemble", "auto"]
        | Annotated[list[Int | Literal["auto"]], Field(min_length=1, max_length=MAX_ENSEMBLE_WINDOWS)]
    ) = Field(
        "ensemble",
        description="History bars the forecast conditions on, the last ones: 'ensemble' (default: the paths shared "
        "among windows of max_context - pred_len, 128 and 64 bars and pooled), 'auto' (max_context - pred_len, so the "
        "forecast fits the model's context), a number, or a list of them (an ensemble). Send the whole history; the "
        "response says bars_used.",
    )
    future_timestamps: list[datetime] | None = Field(
        None, description="Times of the forecast bars (default: continue the history's schedule, see calendar)."
    )
    calendar: str | None = Field(
        DEFAULT_CALENDAR,
        max_length=32,
        description="How future times are made when future_timestamps is absent: 'auto' (an exchange calendar when "
        "one explains 99% of the history's trading days, else the schedule learnt from the history), 'own' (the "
        "learnt schedule) or an exchange_calendars name such as 'XNYS'. The response names the one used.",
    )
    splits: bool = Field(
        True,
        description="Undo a share split left unadjusted in the bars (a whole-ratio gap at the open that stays, volume "
        "moving against it), so the forecast reads one price scale; false reads the bars as sent. The response "
        "lists what was undone.",
    )
    anchor: bool = Field(
        True,
        description="Start the sample paths from the last bar as sent (default); false continues them from the "
        "tokenizer's reconstruction of it, as the original Kronos does.",
    )
    return_paths: bool = Field(False, description="Include every sample path in the response.")

    @field_validator("lookback", mode="before")
    @classmethod
    def _one_lookback_or_a_list(cls, value: Any) -> Any:
        """One message for every wrong lookback (a union would report its first member's complaint only); the
        grammar is the library's (:func:`~kronos.forecasting.prepared.parse_lookback`), so a form field "64,auto"
        means what ``--lookback 64,auto`` does."""
        try:
            return parse_lookback(value)
        except InputError as e:
            raise ValueError(str(e)) from None

    @field_validator("quantiles")
    @classmethod
    def _levels_in_range(cls, levels: list[float]) -> list[float]:
        for q in levels:
            if not 0.0 < q < 1.0:
                raise ValueError(f"quantile level {q} is not in (0, 1)")
        repeated = sorted({q for q in levels if levels.count(q) > 1})
        if repeated:
            raise ValueError(f"quantile levels repeat: {repeated}; give each level once")
        return levels


class ModelInfo(BaseModel):
    name: str
    version: str = Field(description="Content hash of the weights (first 12 hex digits of SHA-256).")
    max_context: int
    parameters: int


class SplitUndone(BaseModel):
    row: int = Field(description="Row of the first bar at the new price scale.")
    time: str | None = Field(description="Its time.")
    ratio: str = Field(description="New shares per old, '2:1' (a reverse split: '1:10').")
    gap: float = Field(description="Its open over the close before.")


class ForecastResponse(BaseModel):
    timestamps: list[str] = Field(description="ISO times of the forecast bars.")
    mean: dict[str, list[float]] = Field(description="Column -> mean over paths, per bar.")
    quantiles: dict[str, dict[str, list[float]]] = Field(description='Level ("0.1") -> column -> values.')
    prob_up: list[float] = Field(description="Per bar, share of paths whose close ends above the last close.")
    model: ModelInfo
    seed: int
    sample_count: int
    calibrated: bool
    bars_used: int = Field(
        description="History bars the forecast conditioned on (the longest window of an ensemble): at most "
        "max_context - pred_len of those sent."
    )
    lookbacks: list[int] | None = Field(None, description="Bars of each window of a lookback ensemble (else null).")
    paths: dict[str, list[list[float]]] | None = Field(None, description="Column -> paths x bars (when asked).")
    splits: list[SplitUndone] = Field(
        default_factory=list,
        description="Share splits undone in the bars the forecast read (see the request's splits).",
    )
    calendar: str | None = Field(
        None, description="The exchange calendar that gave the future times (null: the learnt schedule or given times)."
    )
    notes: list[str] = Field(
        default_factory=list,
        description="What the server did with the input, or found in it, that a user should know (close-only, a "
        "short history, splits undone).",
    )


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
