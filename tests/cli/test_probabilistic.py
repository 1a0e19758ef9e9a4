"""``kronos forecast-dist`` on the bundled sample: calibrated quantiles, a CSV and a PNG."""

from __future__ import annotations

import pandas as pd
import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_forecast_dist_command_on_the_bundled_sample(tmp_path):
    from typer.testing import CliRunner

    from kronos.cli import (
        app,
        commands,  # noqa: F401  (registers the commands)
    )

    out = tmp_path / "q.csv"
    result = CliRunner().invoke(
        app,
        [
            "forecast-dist",
            "--sample",
            "eurusd",
            "--lookback",
            "200",
            "--pred-len",
            "5",
            "--samples",
            "20",
            "--origins",
            "9",
            "--stride",
            "5",
            "--csv",
            str(out),
            "--png",
            str(tmp_path / "f.png"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "cross-fitted" in result.output and (tmp_path / "f.png").stat().st_size > 5000
    table = pd.read_csv(out, index_col=0)
    assert len(table) == 5 and {"close_q0.1", "close_q0.9", "prob_up", "realized_vol_mean"} <= set(table.columns)
    assert (table["close_q0.1"] <= table["close_q0.9"]).all()
    # --lookback is each forecast's context; calibration origins lie before it, in the rest of the file
    bad = CliRunner().invoke(
        app,
        ["forecast-dist", "--sample", "eurusd", "--lookback", "50", "--pred-len", "5", "--samples", "5"]
        + ["--origins", "400", "--random-tiny"],
    )
    assert bad.exit_code == 2 and "bars of history" in bad.output and "Traceback" not in bad.output


def test_forecast_dist_draws_one_series_of_a_panel_file_by_its_symbol(tmp_path):
    # a panel read as one series failed on 'timestamps are not sorted', which named a symptom, not the problem
    from kronos.bars.samples import load_sample
    from tests.helpers import cli_ok, cli_run

    googl, eurusd = load_sample("googl").tail(150), load_sample("eurusd").tail(150)
    panel = pd.concat([googl.assign(symbol="GOOGL"), eurusd.assign(symbol="EURUSD")])
    panel.to_csv(tmp_path / "panel.csv", index=False)
    eurusd.to_csv(tmp_path / "eurusd.csv", index=False)
    args = ["forecast-dist", "--pred-len", "3", "--samples", "8", "--no-calibrate", "--random-tiny"]
    refused = cli_run([*args, "--data", str(tmp_path / "panel.csv")])
    assert refused.exit_code == 2 and "--symbol: the file is a panel of 2 series (GOOGL, EURUSD)" in refused.output
    missing = cli_run([*args, "--data", str(tmp_path / "panel.csv"), "--symbol", "AAPL"])
    assert missing.exit_code == 2 and "'AAPL' is not in the file's 'symbol' column" in missing.output
    cli_ok([*args, "--data", str(tmp_path / "panel.csv"), "--symbol", "EURUSD", "--csv", str(tmp_path / "a.csv")])
    cli_ok([*args, "--data", str(tmp_path / "eurusd.csv"), "--csv", str(tmp_path / "b.csv")])
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv"))
