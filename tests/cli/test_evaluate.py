"""``kronos evaluate`` / ``kronos backtest`` end to end on real files, and their failure behaviour."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from kronos.cli import (
    app,
    commands,  # noqa: F401  (registers the commands)
)

runner = CliRunner()


def _evaluate_args(shared_data, tiny_reference, out, *extra):
    return [
        "evaluate",
        "--data",
        str(shared_data / "etf"),
        "--symbols",
        "SPY_daily,TLT_daily",
        "-f",
        "persistence,drift,garch,ets",
        "-f",
        f"tiny={tiny_reference}",
        "--max-context",
        "64",
        "--lookback",
        "64",
        "--horizon",
        "3",
        "--origins",
        "3",
        "--samples",
        "8",
        "--jobs",
        "1",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


def test_evaluate_writes_the_report_folder(shared_data, tiny_reference, tmp_path, one_torch_thread):
    out = tmp_path / "eval"
    result = runner.invoke(app, _evaluate_args(shared_data, tiny_reference, out))
    assert result.exit_code == 0, result.output
    for name in (
        "forecasts.parquet",
        "metrics.csv",
        "summary.md",
        "report.html",
        "horizon.png",
        "calibration.png",
        "example.png",
    ):
        assert (out / name).stat().st_size > 0, name
    assert (out / "horizon.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".staging-*")) and not list(out.glob(".*tmp*"))

    forecasts = pd.read_parquet(out / "forecasts.parquet")
    for col in ("series", "origin_time", "step", "target_time", "y_true", "y_pred", "q10", "q90"):
        assert col in forecasts.columns
    assert set(forecasts["forecaster"]) == {"persistence", "drift", "garch", "ets", "tiny"}
    assert len(forecasts) == 5 * 2 * 3 * 3  # forecasters x series x origins x steps
    assert not forecasts.duplicated(["forecaster", "series", "origin_time", "step"]).any()
    assert (forecasts["target_time"] > forecasts["origin_time"]).all()
    # y_true is the real close at the target time
    spy = pd.read_parquet(shared_data / "etf" / "SPY_daily.parquet").set_index("timestamps")["close"]
    rows = forecasts[forecasts["series"] == "SPY_daily"]
    np.testing.assert_allclose(rows["y_true"], spy.reindex(rows["target_time"]).to_numpy())
    np.testing.assert_allclose(rows["last_close"], spy.reindex(rows["origin_time"]).to_numpy())

    pit = pd.read_csv(out / "pit_histogram.csv")
    assert len(pit) == 10 and np.allclose(pit[["persistence", "tiny"]].mean(), 1.0)  # densities average to 1
    metrics = pd.read_csv(out / "metrics.csv")
    assert set(metrics["series"]) == {"(all)", "SPY_daily", "TLT_daily"}
    summary = (out / "summary.md").read_text()
    assert "| forecaster | n | mae_ret" in summary and "| tiny |" in summary
    html = (out / "report.html").read_text()
    assert "plotly" in html and "CRPS" in html


def test_a_failed_evaluate_leaves_the_earlier_results_intact(shared_data, tmp_path, monkeypatch):
    out = tmp_path / "eval"
    args = [
        "evaluate",
        "--data",
        str(shared_data / "etf" / "GLD_daily.parquet"),
        "-f",
        "persistence,drift",
        "--lookback",
        "50",
        "--horizon",
        "2",
        "--origins",
        "2",
        "--samples",
        "5",
        "--jobs",
        "1",
        "--no-progress",
        "--out",
        str(out),
    ]
    assert runner.invoke(app, args).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    bad = runner.invoke(app, [*args[:4], "persistence,persistance", *args[5:]])
    assert bad.exit_code == 2 and "unknown forecaster 'persistance'" in bad.output

    from kronos.evaluation import report

    def broken(*_a, **_k):
        raise RuntimeError("disk full while plotting")

    monkeypatch.setattr(report, "write_html", broken)
    crashed = runner.invoke(app, [*args[:8], "4", *args[9:]])  # a new horizon: new results
    assert isinstance(crashed.exception, RuntimeError)
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before  # same files, same bytes, no staging folder left behind


def test_evaluate_rejects_bad_data_naming_row_and_column(shared_data, tmp_path):
    bars = pd.read_parquet(shared_data / "etf" / "TLT_daily.parquet").iloc[-200:].reset_index(drop=True)
    bars.loc[123, "high"] = -1.0
    bars.to_csv(tmp_path / "bad.csv", index=False)
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--data",
            str(tmp_path / "bad.csv"),
            "-f",
            "persistence",
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ],
    )
    assert result.exit_code == 2
    assert "'high'" in result.output and "row 123" in result.output
    assert not (tmp_path / "out" / "summary.md").exists()


def test_backtest_runs_the_topk_portfolio_on_the_daily_panel(shared_data, tmp_path):
    out = tmp_path / "bt"
    symbols = "AAPL,MSFT,AMZN,JPM,XOM,JNJ,PG,KO,PFE,INTC,CSCO,T,VZ,WMT,HD,BA,GE,F,GS,MRK"
    result = runner.invoke(
        app,
        [
            "backtest",
            "--data",
            str(shared_data / "us_equity" / "sp500_daily_panel.parquet"),
            "--symbols",
            symbols,
            "-f",
            "drift",
            "--lookback",
            "60",
            "--horizon",
            "5",
            "--origins",
            "40",
            "--samples",
            "10",
            "--top",
            "5",
            "--n-drop",
            "1",
            "--cost-bps",
            "10",
            "--slippage-bps",
            "5",
            "--jobs",
            "1",
            "--no-progress",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    for name in ("backtest.csv", "stats.csv", "summary.md", "equity.png", "report.html", "forecasts.parquet"):
        assert (out / name).stat().st_size > 0, name
    periods = pd.read_csv(out / "backtest.csv")
    assert len(periods) == 40 and periods["n_holdings"].eq(5).all()
    np.testing.assert_allclose(periods["net"], periods["gross"] - 2 * periods["turnover"] * 15e-4, atol=1e-15)
    stats = pd.read_csv(out / "stats.csv").set_index("row")
    assert {"annual_return", "annual_volatility", "sharpe", "max_drawdown", "turnover", "excess_return"} <= set(
        stats.columns
    )
    assert "| strategy |" in (out / "summary.md").read_text()

    # the same forecasts, read back, give the same backtest; the single-asset rule runs per series
    again = runner.invoke(
        app,
        [
            "backtest",
            "--forecasts",
            str(out / "forecasts.parquet"),
            "--top",
            "5",
            "--n-drop",
            "1",
            "--out",
            str(tmp_path / "bt2"),
            "--no-progress",
        ],
    )
    assert again.exit_code == 0, again.output
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "bt2" / "backtest.csv"), periods)
    single = runner.invoke(
        app,
        [
            "backtest",
            "--forecasts",
            str(out / "forecasts.parquet"),
            "--strategy",
            "single",
            "--long-short",
            "--out",
            str(tmp_path / "bt3"),
            "--no-progress",
        ],
    )
    assert single.exit_code == 0, single.output
    assert set(pd.read_csv(tmp_path / "bt3" / "stats.csv")["series"]) == set(symbols.split(","))


runner = CliRunner()


def test_evaluate_prints_the_skip_count_and_reasons(shared_data, tmp_path):
    spy = pd.read_parquet(shared_data / "etf" / "SPY_daily.parquet")
    (tmp_path / "data").mkdir()
    spy.iloc[-300:].to_parquet(tmp_path / "data" / "SPY.parquet")
    spy.iloc[:40].to_parquet(tmp_path / "data" / "SPY_short.parquet")
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--data",
            str(tmp_path / "data"),
            "-f",
            "persistence",
            "--lookback",
            "50",
            "--horizon",
            "2",
            "--origins",
            "2",
            "--jobs",
            "1",
            "--no-progress",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "1 series skipped" in result.output
    assert "SPY_short: too short: 40 bars, lookback 50 + horizon 2 needs 52" in result.output


def test_calibration_origins_reach_kronos_cal(tiny_reference, tmp_path, one_torch_thread):
    """``--calibration-origins`` is what kronos-cal calibrates on: 100 bars of history hold 20 origins at horizon 3
    (the default, 60 bars after a 40-bar lookback), not 30 (90 bars would leave 10, under the 32-bar minimum)."""
    from kronos.bars.samples import sample_data_path

    def run(*extra: str):
        out = tmp_path / f"out{len(extra)}"
        args = ["evaluate", "--data", str(sample_data_path("googl")), "-f", f"kronos-cal={tiny_reference}"]
        args += ["--lookback", "100", "--horizon", "3", "--origins", "2", "--samples", "8", "--jobs", "1"]
        return runner.invoke(app, [*args, "--no-progress", "--out", str(out), *extra]), out

    result, out = run()
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(out / "forecasts.parquet")) == 2 * 3
    result, out = run("--calibration-origins", "30")
    assert result.exit_code == 2 and "needs at least 122 bars of history for 30 origins" in result.output
    assert not out.exists()  # every forecast failed: nothing written
    refused = runner.invoke(app, ["evaluate", "--data", "x", "-f", "drift", "--out", "o", "--calibration-origins", "5"])
    assert refused.exit_code == 2 and "calibration-origins" in refused.output


def test_the_auto_lookback_leaves_kronos_cal_its_origins_before_the_forecast_window(tiny_reference, tmp_path):
    """With kronos-cal among the forecasters, --lookback auto is the context plus origins x horizon: with the context
    alone its calibration origins had no room at horizon 20 (every forecast failed) and at horizon 5 pushed its
    forecast onto a shorter window than the product's."""
    from kronos.bars.samples import sample_data_path
    from kronos.cli.flags import evaluation_window
    from kronos.model.registry import DEFAULT_LOOKBACK

    assert evaluation_window("auto", ["drift", "kronos"], 20) == DEFAULT_LOOKBACK
    assert evaluation_window("auto", ["drift", "kronos-cal"], 20) == DEFAULT_LOOKBACK + 20 * 20
    assert evaluation_window("auto", ["mine=kronos-cal"], 5, 40, 512) == 512 + 40 * 5
    assert evaluation_window("auto", [f"kronos-cal={tiny_reference}"], 5) == DEFAULT_LOOKBACK + 20 * 5
    assert evaluation_window(300, ["kronos-cal"], 20) == 300  # an explicit lookback is kept
    out = tmp_path / "out"
    args = ["evaluate", "--data", str(sample_data_path("eurusd")), "-f", f"kronos-cal={tiny_reference}", "-f", "drift"]
    args += ["--horizon", "20", "--origins", "1", "--samples", "4", "--jobs", "1", "--no-progress", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    forecasts = pd.read_parquet(out / "forecasts.parquet")
    assert set(forecasts["forecaster"]) == {"kronos-cal", "drift"} and not (out / "errors.csv").exists()
    assert f"| lookback | {DEFAULT_LOOKBACK + 400} |" in (out / "summary.md").read_text()
