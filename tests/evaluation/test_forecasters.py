"""The Kronos forecaster of the evaluation: all origins of a series in one batched call, equal to one at a time."""

from __future__ import annotations

import pandas as pd
import pytest

from kronos.cli import app, commands  # noqa: F401  (registers the commands on app)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _OneAtATime:
    """The same Kronos forecaster without ``forecast_many``: the rolling engine calls it origin by origin."""

    def __init__(self, inner) -> None:
        self.inner, self.name = inner, inner.name

    def forecast(self, history, future_timestamps, num_samples, *, seed=None):
        return self.inner.forecast(history, future_timestamps, num_samples, seed=seed)


def test_evaluate_batches_kronos_origins_and_equals_one_origin_at_a_time(tiny, panel):
    from kronos.evaluation.forecasters import KronosForecaster
    from kronos.evaluation.origins import RollingConfig
    from kronos.evaluation.rolling import forecast_origins

    calls = []
    batched = KronosForecaster(tiny, "tiny")
    original_batch = tiny.forecast_batch

    def counting_batch(*args, **kwargs):
        calls.append(len(args[0]))
        return original_batch(*args, **kwargs)

    series = panel[panel["symbol"] == "EURUSD"].sort_values("timestamps").reset_index(drop=True)
    config = RollingConfig(lookback=20, horizon=3, origins=5, num_samples=4)
    positions = [20, 23, 26, 29, 32]
    tiny.forecast_batch = counting_batch
    try:
        together, errors = forecast_origins("EURUSD", series, positions, [batched], config, raise_errors=True)
        one_by_one, _ = forecast_origins("EURUSD", series, positions, [_OneAtATime(batched)], config, raise_errors=True)
    finally:
        del tiny.forecast_batch
    assert calls[0] == len(positions)  # every origin in one batched call
    assert not errors and len(together) == len(positions) * config.horizon
    pd.testing.assert_frame_equal(together, one_by_one)
