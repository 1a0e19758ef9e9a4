"""The command line in users' terms: unique_id/ds files without flags (and kept in the output), close-only files
forecast with one ``note:`` line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kronos.bars.closeonly import CLOSE_ONLY_NOTICE
from kronos.cli import app, commands  # noqa: F401  (registers the commands)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_nixtla_panel_in_nixtla_names_out(googl_bars, eurusd_bars, tmp_path):
    data = tmp_path / "panel.csv"
    parts = [googl_bars.assign(unique_id="GOOGL").tail(120), eurusd_bars.assign(unique_id="EURUSD").tail(120)]
    pd.concat(parts).rename(columns={"timestamps": "ds"}).to_csv(data, index=False)
    out = tmp_path / "f.csv"
    result = CliRunner().invoke(
        app, ["forecast", "--data", str(data), "--pred-len", "2", "--samples", "4", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out)
    assert list(written.columns[:2]) == ["unique_id", "ds"] and "prob_up" in written.columns
    assert sorted(written["unique_id"].unique()) == ["EURUSD", "GOOGL"]


def test_close_only_file_is_forecast_with_one_note(googl_bars, tmp_path):
    data = tmp_path / "closes.csv"
    googl_bars[["timestamps", "close"]].tail(200).to_csv(data, index=False)
    out = tmp_path / "f.csv"
    result = CliRunner().invoke(
        app, ["forecast", "--data", str(data), "--pred-len", "2", "--samples", "4", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if line.startswith("note:")]
    assert notes == [f"note: {data}: {CLOSE_ONLY_NOTICE}"]
    written = pd.read_csv(out)
    assert np.isfinite(written["close"]).all() and len(written) == 2


def test_backtest_says_when_the_portfolio_is_the_whole_universe(panel, tmp_path):
    data = tmp_path / "panel.parquet"
    panel.to_parquet(data, index=False)
    args = ["backtest", "--data", str(data), "-f", "drift", "--horizon", "1", "--origins", "4", "--lookback", "30"]
    args += ["--samples", "8", "--jobs", "1", "--no-progress", "--n-drop", "1", "--out", str(tmp_path / "bt")]
    whole = CliRunner().invoke(app, [*args, "--top", "4"])
    assert whole.exit_code == 0, whole.output
    notes = [line for line in whole.output.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and notes[0].startswith("note: --top: holds 4 names of a universe of 4")
    fewer = CliRunner().invoke(app, [*args, "--top", "2"])
    assert fewer.exit_code == 0, fewer.output
    assert "note:" not in fewer.output


def test_calibrated_forecast_dist_names_the_flag_that_makes_it_fast():
    args = ["forecast-dist", "--sample", "googl", "--pred-len", "2", "--samples", "4", "--origins", "9"]
    slow = CliRunner().invoke(app, args)
    assert slow.exit_code == 0, slow.output
    assert "note: calibrating on 9 origins of 4 paths each samples 10x" in slow.output
    assert "--no-calibrate" in slow.output
    fast = CliRunner().invoke(app, [*args, "--no-calibrate"])
    assert fast.exit_code == 0 and "note:" not in fast.output


def test_a_folder_of_close_only_files_gets_one_note(googl_bars, tmp_path):
    folder = tmp_path / "closes"
    folder.mkdir()
    for name, part in (("A", googl_bars.head(300)), ("B", googl_bars.tail(300))):
        part[["timestamps", "close"]].to_csv(folder / f"{name}.csv", index=False)
    args = ["evaluate", "--data", str(folder), "-f", "drift", "--horizon", "2", "--origins", "2", "--lookback", "50"]
    result = CliRunner().invoke(
        app, [*args, "--samples", "8", "--jobs", "1", "--no-progress", "--out", str(tmp_path / "e")]
    )
    assert result.exit_code == 0, result.output
    assert sum(line.startswith("note:") for line in result.output.splitlines()) == 1
    assert set(pd.read_parquet(tmp_path / "e" / "cross_validation.parquet")["symbol"]) == {"A", "B"}
