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
