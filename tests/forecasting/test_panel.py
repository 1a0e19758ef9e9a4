"""Panels: padded batches equal each series alone, per-series seeds, the long schema, the CLI and torchrun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from kronos import Kronos, KronosPredictor, KronosTokenizer
from kronos.bars.preprocessing import InputError
from kronos.cli import app, commands  # noqa: F401  (registers the commands on app)
from kronos.forecasting.loading import random_tiny_predictor
from kronos.forecasting.panel import output_columns, series_seed
from kronos.inference.generation import sample_paths
from kronos.inference.options import SamplingOptions
from kronos.inference.sampling import logits_to_probs, sample_from_uniform

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
VALUES = [c for c in output_columns(None, "t", (0.1, 0.5, 0.9)) if c != "t"]


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    """Four real series of different lengths and frequencies (one with holes), rows shuffled across symbols:
    the bundled GOOGL daily and EURUSD hourly samples and arch's S&P 500 and NASDAQ daily indices."""
    nasdaq = pytest.importorskip("arch.data.nasdaq", reason="arch is not installed (pip install 'kronos-kline[eval]')")
    sp500 = pytest.importorskip("arch.data.sp500")
    from kronos.bars.samples import load_sample

    def arch_bars(module) -> pd.DataFrame:
        return module.load().rename(columns=str.lower).rename_axis("timestamps").reset_index()

    series = {
        "GOOGL": load_sample("googl"),
        "SP500": arch_bars(sp500),
        "NDX": arch_bars(nasdaq),
        "EURUSD": load_sample("eurusd"),
    }
    cols = ["timestamps", "open", "high", "low", "close", "volume"]
    parts = [frame[cols].assign(symbol=s).tail(40 + 7 * i) for i, (s, frame) in enumerate(series.items())]
    parts[2] = parts[2].iloc[::2]  # a thinned series: its own length and spacing
    return pd.concat(parts).sample(frac=1.0, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def tiny(tiny_reference) -> KronosPredictor:
    tok = KronosTokenizer.from_pretrained(tiny_reference / "tokenizer")
    model = Kronos.from_pretrained(tiny_reference / "model")
    return KronosPredictor(model, tok, device="cpu", max_context=32)  # small: the window slides


def test_sample_from_uniform_follows_the_filtered_distribution():
    torch.manual_seed(0)
    logits = torch.randn(3, 12)
    probs = logits_to_probs(logits, 1.0, 0, 0.8)
    u = torch.rand(20000)
    draws = torch.cat(
        [sample_from_uniform(logits[i : i + 1].expand(len(u), -1), u, 1.0, 0, 0.8) for i in range(3)], dim=1
    )
    for i in range(3):
        freq = torch.bincount(draws[:, i], minlength=12).double() / len(u)
        assert torch.all(freq[probs[i] == 0] == 0)  # filtered tokens are never drawn
        assert torch.allclose(freq, probs[i].double(), atol=0.015)
    # a row's draw depends on its own logits and uniform only
    assert sample_from_uniform(logits, u[:3])[1].item() == sample_from_uniform(logits[1:2], u[1:2]).item()


@pytest.mark.parametrize("max_context", [256, 24])  # the second slides the window during generation
def test_padded_batch_equals_each_series_alone(max_context):
    predictor = random_tiny_predictor(seed=1)
    torch.manual_seed(2)
    lengths, pred_len, paths = [17, 30, 9], 7, 3
    xs = [torch.randn(n, 6) for n in lengths]
    stamps = [torch.rand(n, 5) for n in lengths]
    future = torch.rand(3, pred_len, 5)
    uniforms = torch.rand(3 * paths, pred_len, 2)
    longest = max(lengths)
    x = torch.zeros(3, longest, 6)
    xstamp = torch.zeros(3, longest, 5)
    for i, n in enumerate(lengths):
        x[i, longest - n :], xstamp[i, longest - n :] = xs[i], stamps[i]
    args = (predictor.tokenizer, predictor.model)
    batch = sample_paths(
        *args,
        x,
        xstamp,
        future,
        pred_len,
        max_context,
        SamplingOptions(sample_count=paths),
        uniforms=uniforms,
        lengths=torch.tensor(lengths),
    )
    for i in range(len(lengths)):
        own = uniforms[i * paths : (i + 1) * paths]
        alone = sample_paths(
            *args,
            xs[i][None],
            stamps[i][None],
            future[i : i + 1],
            pred_len,
            max_context,
            SamplingOptions(sample_count=paths),
            uniforms=own,
        )
        original = sample_paths(
            *args,
            xs[i][None],
            stamps[i][None],
            future[i : i + 1],
            pred_len,
            max_context,
            SamplingOptions(sample_count=paths, use_cache=False),
            uniforms=own,
        )
        torch.testing.assert_close(batch[i], alone[0], rtol=0, atol=0)
        torch.testing.assert_close(alone, original)  # same tokens; the decode differs only by rounding


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


def _cli(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)


def test_cli_forecasts_a_panel_file_as_each_symbol_alone(panel, tiny_reference, tmp_path):
    panel.to_parquet(tmp_path / "panel.parquet", index=False)
    common = ["--model", str(tiny_reference), "--max-context", "32", "--pred-len", "5", "--samples", "4", "--seed", "3"]
    _cli(["forecast", "--data", str(tmp_path / "panel.parquet"), *common, "--out", str(tmp_path / "f.parquet")])
    out = pd.read_parquet(tmp_path / "f.parquet")
    assert list(out.columns) == output_columns("symbol", "timestamps", (0.1, 0.5, 0.9))
    assert set(out["symbol"]) == set(panel["symbol"]) and len(out) == 5 * panel["symbol"].nunique()
    for symbol in ("EURUSD", "NDX"):
        panel[panel["symbol"] == symbol].to_csv(tmp_path / f"{symbol}.csv", index=False)
        _cli(
            [
                "forecast",
                "--data",
                str(tmp_path / f"{symbol}.csv"),
                *common,
                "--out",
                str(tmp_path / f"{symbol}.csv.out.csv"),
            ]
        )
        alone = pd.read_csv(tmp_path / f"{symbol}.csv.out.csv", parse_dates=["timestamps"])
        rows = out[out["symbol"] == symbol].reset_index(drop=True)
        pd.testing.assert_frame_equal(
            rows[["timestamps", *VALUES]], alone[["timestamps", *VALUES]], check_exact=False, rtol=1e-12
        )


def test_torchrun_two_ranks_equal_one_process(panel, tiny_reference, tmp_path):
    panel.to_parquet(tmp_path / "panel.parquet", index=False)
    args = [
        "forecast",
        "--data",
        str(tmp_path / "panel.parquet"),
        "--model",
        str(tiny_reference),
        "--max-context",
        "32",
        "--pred-len",
        "4",
        "--samples",
        "4",
        "--calendar",
        "XNYS",
    ]
    _cli([*args, "--out", str(tmp_path / "one.parquet")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO / "src")}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "kronos",
        *args,
        "--out",
        str(tmp_path / "two.parquet"),
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "one.parquet"), pd.read_parquet(tmp_path / "two.parquet"))
    assert not list(tmp_path.glob(".two.parquet.parts*"))  # the parts are cleaned up


class _OneAtATime:
    """The same Kronos forecaster without ``forecast_many``: the rolling engine calls it origin by origin."""

    def __init__(self, inner) -> None:
        self.inner, self.name = inner, inner.name

    def forecast(self, history, future_timestamps, num_samples, *, seed=None):
        return self.inner.forecast(history, future_timestamps, num_samples, seed=seed)


def test_evaluate_batches_kronos_origins_and_equals_one_origin_at_a_time(tiny, panel):
    from kronos.evaluation.forecasters import KronosForecaster
    from kronos.evaluation.rolling import RollingConfig, forecast_origins

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


def test_cli_future_timestamps_file_quantile_names_and_bad_quantiles(panel, tiny_reference, tmp_path):
    one = panel[panel["symbol"] == "SP500"]
    one.drop(columns="symbol").to_csv(tmp_path / "ko.csv", index=False)  # one series: named after the file
    last = one["timestamps"].max()
    pd.DataFrame({"timestamps": pd.date_range(last, periods=4, freq="h")[1:]}).to_csv(
        tmp_path / "future.csv", index=False
    )
    common = [
        "forecast",
        "--data",
        str(tmp_path / "ko.csv"),
        "--model",
        str(tiny_reference),
        "--max-context",
        "32",
        "--pred-len",
        "3",
        "--samples",
        "3",
    ]
    _cli(
        [
            *common,
            "--future-timestamps",
            str(tmp_path / "future.csv"),
            "--quantiles",
            "0.05,0.95",
            "--out",
            str(tmp_path / "o.csv"),
        ]
    )
    out = pd.read_csv(tmp_path / "o.csv", parse_dates=["timestamps"])
    assert list(out["timestamps"]) == list(pd.date_range(last, periods=4, freq="h")[1:])
    assert list(out.columns) == output_columns("symbol", "timestamps", (0.05, 0.95)) and set(out["symbol"]) == {"ko"}
    bad = CliRunner().invoke(app, [*common, "--quantiles", "0.5,nope"])
    assert bad.exit_code == 2 and "--quantiles" in bad.output
