"""What the commands write: the long schema's quantile columns in every output, complete tables off a terminal."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

import kronos.cli.commands  # noqa: F401  (registers every command on the app)
from kronos.bars.samples import sample_data_path
from kronos.cli import app
from kronos.forecasting.panel import output_columns

GOOGL = str(sample_data_path("googl"))


def test_quantile_columns_are_the_long_schema_in_every_output(tmp_path):
    fc_out, dist_out = tmp_path / "f.csv", tmp_path / "d.csv"
    common = ["--pred-len", "3", "--samples", "4", "--lookback", "64", "--random-tiny"]
    assert CliRunner().invoke(app, ["forecast", "--data", GOOGL, "--out", str(fc_out), *common]).exit_code == 0
    result = CliRunner().invoke(
        app, ["forecast-dist", "--data", GOOGL, "--csv", str(dist_out), "--no-calibrate", "--levels", "0.8", *common]
    )
    assert result.exit_code == 0, result.output
    forecast_cols = list(pd.read_csv(fc_out).columns)
    dist_cols = list(pd.read_csv(dist_out).columns)
    assert forecast_cols == output_columns("symbol", "timestamps", (0.1, 0.5, 0.9))
    expected = [
        c for c in output_columns(None, "timestamps", (0.1, 0.5, 0.9)) if "_q" not in c or c.startswith("close")
    ]
    assert dist_cols[: len(expected)] == expected  # then prob_up, realized_vol_mean


def test_tables_are_complete_when_stdout_is_not_a_terminal():
    levels = ",".join(f"{q:g}" for q in (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975, 0.99))
    args = ["forecast", "--data", GOOGL, "--pred-len", "2", "--samples", "4", "--quantiles", levels, "--random-tiny"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "close q0.01" in line)
    for q in levels.split(","):
        assert f"close q{q}" in header
    assert "…" not in result.output
