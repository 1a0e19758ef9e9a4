"""Panels: the long schema, each series equal to itself alone, per-series seeds, given future timestamps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kronos.bars.preprocessing import InputError
from kronos.cli import app, commands  # noqa: F401  (registers the commands on app)
from kronos.forecasting.panel import output_columns, series_seed

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VALUES = [c for c in output_columns(None, "t", (0.1, 0.5, 0.9)) if c != "t"]


def test_forecast_df_long_schema_and_each_series_equals_itself_alone(tiny, panel):
    out = tiny.forecast_df(panel, 5, sample_count=6, seed=11, quantiles=[0.1, 0.5, 0.9])
    assert list(out.columns) == output_columns("symbol", "timestamps", (0.1, 0.5, 0.9))
    assert "close_q0.1" in out.columns and len(out) == 5 * panel["symbol"].nunique()
    assert list(out["symbol"].unique()) == list(panel["symbol"].unique())  # order of first appearance
    assert (out["close_q0.1"] <= out["close_q0.5"]).all() and (out["close_q0.5"] <= out["close_q0.9"]).all()
    for symbol, rows in out.groupby("symbol"):
        history = panel[panel["symbol"] == symbol].sort_values("timestamps")
        assert rows["timestamps"].min() > history["timestamps"].max()
        assert (pd.DatetimeIndex(rows["timestamps"]).dayofweek < 5).all()
        alone = tiny.forecast_df(history, 5, sample_count=6, seed=11)
        np.testing.assert_array_equal(rows[VALUES].to_numpy(), alone[VALUES].to_numpy())
    # any row order, any batch size: the same numbers
    again = tiny.forecast_df(panel.iloc[::-1], 5, sample_count=6, seed=11, batch_size=2)
    key = ["symbol", "timestamps"]
    pd.testing.assert_frame_equal(out.sort_values(key, ignore_index=True), again.sort_values(key, ignore_index=True))
    other = tiny.forecast_df(panel, 5, sample_count=6, seed=12)
    assert not np.allclose(other["close"], out["close"])  # the seed matters


def test_forecast_df_given_future_timestamps_and_errors(tiny, panel):
    one = panel[panel["symbol"] == "SP500"]
    last = one["timestamps"].max()
    given = pd.DataFrame({"symbol": "SP500", "timestamps": pd.date_range(last, periods=4, freq="7D")[1:]})
    out = tiny.forecast_df(one, 3, sample_count=2, future_timestamps=given)
    assert list(out["timestamps"]) == list(given["timestamps"])
    with pytest.raises(InputError, match="series 'SP500': 3 given future timestamp"):
        tiny.forecast_df(one, 4, sample_count=2, future_timestamps=given)
    with pytest.raises(InputError, match="series 'SP500': duplicate timestamp"):
        tiny.forecast_df(pd.concat([one, one.tail(1)]), 2, sample_count=2)
    with pytest.raises(InputError, match="quantiles must be in"):
        tiny.forecast_df(one, 2, quantiles=[0.5, 1.5])
    assert series_seed(0, "SP500") == series_seed(0, "SP500") != series_seed(0, "AAPL")


def test_forecast_df_errors_name_the_series_by_its_id(tiny, panel):
    """A bad bar, or a history too short to calibrate, in one series of a panel: the error names its id (the user's
    name for it), not its place in an internal list."""
    from kronos.bars.samples import load_sample

    bad = panel.copy()
    row = bad.index[bad["symbol"] == "NDX"][-3]  # inside the window the forecast reads
    bad.loc[row, "close"] = -1.0
    with pytest.raises(InputError, match=r"^series 'NDX': .*close"):
        tiny.forecast_df(bad, 3, sample_count=2)
    long = load_sample("googl").assign(symbol="GOOGL")
    short = pd.concat([long, panel[panel["symbol"] == "EURUSD"]])
    tiny.forecast_df(long, 3, sample_count=2, calibrate=True)  # long enough alone
    with pytest.raises(InputError, match=r"^series 'EURUSD': .*origins"):
        tiny.forecast_df(short, 3, sample_count=2, calibrate=True)
    # several too short: one error names them all, so a universe is mended in one go
    shorter = pd.concat([short, panel[panel["symbol"] == "NDX"]])
    with pytest.raises(InputError, match=r"^series 'EURUSD': .*origins.*Too short as well: series 'NDX' \(\d+ bars\)$"):
        tiny.forecast_df(shorter, 3, sample_count=2, calibrate=True)
    # the list API names a series by its place, or by the caller's labels
    frames = [
        panel[panel["symbol"] == s].drop(columns="symbol").sort_values("timestamps", ignore_index=True)
        for s in ("GOOGL", "NDX")
    ]
    frames[1].loc[len(frames[1]) - 3, "close"] = -1.0
    xs = [f["timestamps"] for f in frames]
    ys = [pd.Series(pd.date_range(x.iloc[-1], periods=4, freq="D")[1:]) for x in xs]
    frames = [f.drop(columns="timestamps") for f in frames]
    with pytest.raises(InputError, match=r"^series 1: "):
        tiny.forecast_batch(frames, xs, ys, 3, sample_count=2)
    with pytest.raises(InputError, match=r"^Nasdaq: "):
        tiny.forecast_batch(frames, xs, ys, 3, sample_count=2, labels=["Google", "Nasdaq"])
    with pytest.raises(InputError, match="labels must name each of the 2 series"):
        tiny.forecast_batch(frames, xs, ys, 3, sample_count=2, labels=["Google"])
