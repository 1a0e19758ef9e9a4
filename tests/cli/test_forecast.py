"""``kronos forecast``: checks made before the work, a panel file forecast as each symbol alone, a file of future
timestamps, quantile names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kronos.cli import (
    app,
    commands,  # noqa: F401  (registers the commands)
)
from kronos.forecasting.panel import output_columns
from tests.helpers import cli_ok as _cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")

runner = CliRunner()


def test_forecast_refuses_an_unusable_out_before_loading_anything(tmp_path):
    (tmp_path / "somefile").write_text("x")
    for out in (tmp_path, tmp_path / "somefile" / "f.csv"):
        # the model does not exist: had the destination not been checked first, the error would be about the model
        result = runner.invoke(
            app, ["forecast", "--data", "nowhere.csv", "--model", "no/such-model", "--out", str(out)]
        )
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output and "no/such-model" not in result.output
        assert ("is a directory" in result.output) if out == tmp_path else ("is a file, not a folder" in result.output)


VALUES = [c for c in output_columns(None, "t", (0.1, 0.5, 0.9)) if c != "t"]


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


def test_cli_forecast_calibrates_each_series_of_a_panel_as_the_python_api_does(tiny_reference, tmp_path):
    from kronos.bars.samples import load_sample
    from kronos.forecasting.calibration import CalibrationOptions
    from kronos.forecasting.panel import forecast_df
    from kronos.forecasting.predictor import KronosPredictor

    panel = pd.concat([load_sample(s).tail(n).assign(symbol=s.upper()) for s, n in (("googl", 120), ("eurusd", 90))])
    panel.to_parquet(tmp_path / "panel.parquet", index=False)
    common = ["--data", str(tmp_path / "panel.parquet"), "--model", str(tiny_reference), "--max-context", "64"]
    common += ["--pred-len", "3", "--samples", "8", "--seed", "3", "--lookback", "40"]
    note = _cli(["forecast", *common, "--out", str(tmp_path / "raw.csv")]).output
    assert "quantiles and P(up): the model's own; --calibrate" in " ".join(note.split())
    said = _cli(
        ["forecast", *common, "--calibrate", "--origins", "9", "--stride", "2", "--out", str(tmp_path / "c.csv")]
    )
    assert "calibrating each series on 9 origins of 8 paths" in said.output and "(calibrated)" in said.output
    raw, cal = (pd.read_csv(tmp_path / f, parse_dates=["timestamps"]) for f in ("raw.csv", "c.csv"))
    assert cal["calibrated"].all() and "calibrated" not in raw.columns
    # the calibrated spread is the raw model's changed, series by series, and P(up) is stated by the calibration
    width = (cal["close_q0.9"] - cal["close_q0.1"]) / (raw["close_q0.9"] - raw["close_q0.1"])
    assert not np.allclose(width, 1.0)
    predictor = KronosPredictor.from_pretrained(tiny_reference, max_context=64)
    direct = forecast_df(
        predictor,
        panel,
        3,
        sample_count=8,
        seed=3,
        lookback=40,
        calibrate=CalibrationOptions(origins=9, stride=2),
    ).sort_values(["symbol", "timestamps"])
    cal = cal.sort_values(["symbol", "timestamps"])
    np.testing.assert_allclose(cal[VALUES].to_numpy(), direct[VALUES].to_numpy(), rtol=1e-9)


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


def test_cli_undoes_an_unadjusted_split_with_a_note_and_keeps_it_when_asked(tiny_reference, tmp_path):
    from kronos.bars.samples import load_sample

    adjusted = load_sample("googl").tail(100).reset_index(drop=True)
    raw = adjusted.copy()
    raw.loc[:79, ["open", "high", "low", "close"]] *= 2
    raw.loc[:79, "volume"] /= 2
    for name, frame in (("adjusted", adjusted), ("raw", raw)):  # one file name: one symbol, one seed
        (tmp_path / name).mkdir()
        frame.to_csv(tmp_path / name / "GOOGL.csv", index=False)
    common = ["--model", str(tiny_reference), "--max-context", "32", "--pred-len", "4", "--samples", "4", "--seed", "3"]

    def forecast(name: str, *extra: str) -> tuple[pd.DataFrame, str]:
        result = runner.invoke(
            app,
            [
                "forecast",
                "--data",
                str(tmp_path / name / "GOOGL.csv"),
                *common,
                "--out",
                str(tmp_path / "f.csv"),
                *extra,
            ],
        )
        assert result.exit_code == 0, result.output
        return pd.read_csv(tmp_path / "f.csv"), result.output

    undone, said = forecast("raw")
    assert "note: " in said and "2:1 at row 80" in said
    clean, quiet = forecast("adjusted")
    assert "split" not in quiet
    pd.testing.assert_frame_equal(undone, clean, check_exact=False, rtol=1e-9)
    kept, silent = forecast("raw", "--keep-splits")
    assert "split" not in silent and not kept[VALUES].equals(clean[VALUES])
    # --no-anchor: the original's paths, every close moved by one amount (the last close's reconstruction error)
    original, _ = forecast("adjusted", "--no-anchor")
    shift = (clean["close"] - original["close"]).to_numpy()
    assert abs(shift[0]) > 1e-6 * adjusted["close"].iloc[-1] and np.ptp(shift) < 1e-6 * adjusted["close"].iloc[-1]
