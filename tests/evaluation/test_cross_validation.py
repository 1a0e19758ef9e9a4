"""``kronos.cross_validation`` and ``kronos.evaluation_metrics``: the rolling evaluation as a DataFrame.

On the bundled GOOGL (daily) and EURUSD (hourly) samples, in Nixtla's ``unique_id``/``ds`` names: every row is
a future bar after its cutoff, the actual is the input's bar, the frame scores to the metrics ``kronos evaluate``
writes for the same settings, and a close-only frame is forecast with one notice.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import kronos
from kronos.bars.closeonly import CloseOnlyNotice
from kronos.bars.samples import load_sample
from kronos.cli import app, commands  # noqa: F401  (registers the commands)
from kronos.evaluation.cross_validation import cross_validate, to_long
from kronos.evaluation.metrics import compute_metrics

pytestmark = pytest.mark.usefixtures("one_torch_thread")

H, WINDOWS, STEP = 3, 2, 4
FORECASTERS = ("persistence", "drift", "kronos")


@pytest.fixture(scope="module")
def nixtla() -> pd.DataFrame:
    """Two real series in Nixtla's names, rows of the two interleaved."""
    parts = [load_sample(name).assign(unique_id=name.upper()).tail(300) for name in ("googl", "eurusd")]
    frame = pd.concat(parts).rename(columns={"timestamps": "ds"})
    return frame.sample(frac=1.0, random_state=1).reset_index(drop=True)


@pytest.fixture(scope="module")
def cv(nixtla) -> pd.DataFrame:
    return kronos.cross_validation(
        nixtla, h=H, n_windows=WINDOWS, step_size=STEP, forecasters=FORECASTERS, num_samples=16
    )


def test_rows_line_up_with_the_data(cv, nixtla):
    assert list(cv.columns[:7]) == ["unique_id", "ds", "cutoff", "step", "close", "last_close", "realized_vol"]
    assert len(cv) == 2 * WINDOWS * H  # series x cutoff x future bar
    assert (cv["ds"] > cv["cutoff"]).all()
    for name, rows in cv.groupby("unique_id"):
        bars = nixtla[nixtla["unique_id"] == name].sort_values("ds").reset_index(drop=True)
        pos = pd.Index(bars["ds"])
        # each cutoff is a bar of the series; the rows after it are the next H bars, with their real closes
        for cutoff, window in rows.groupby("cutoff"):
            at = pos.get_loc(cutoff)
            assert list(window["ds"]) == list(bars["ds"].iloc[at + 1 : at + 1 + H])
            np.testing.assert_array_equal(window["close"], bars["close"].iloc[at + 1 : at + 1 + H])
            assert (window["last_close"] == bars["close"].iloc[at]).all()
        cutoffs = sorted(rows["cutoff"].unique())
        assert pos.get_loc(cutoffs[-1]) == len(bars) - 1 - H  # the last window ends on the last bar
        assert pos.get_loc(cutoffs[-1]) - pos.get_loc(cutoffs[0]) == STEP
    for f in FORECASTERS:
        assert cv[f].notna().all() and (cv[f"{f}_q0.05"] <= cv[f"{f}_q0.95"]).all()
        assert cv[f"{f}_prob_up"].between(0, 1).all()
    assert (cv["persistence"] == cv["last_close"]).all()


def test_metrics_of_the_frame_are_the_scores_of_its_forecasts(cv, nixtla):
    run = cross_validate(nixtla, H, WINDOWS, STEP, FORECASTERS, num_samples=16)
    pd.testing.assert_frame_equal(run.frame, cv)  # seeded: the same frame again
    direct = compute_metrics(run.result.forecasts)
    from_frame = kronos.evaluation_metrics(cv)
    assert len(to_long(cv)) == len(run.result.forecasts)
    key = ["forecaster", "series", "step"]
    a = direct.astype({"step": str}).sort_values(key).reset_index(drop=True)
    b = from_frame.astype({"step": str}).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)
    pooled = from_frame[(from_frame["series"] == "(all)") & (from_frame["step"] == "all")].set_index("forecaster")
    assert pooled.loc["persistence", "cov80"] < 0.2 < pooled.loc["drift", "cov80"]


def test_kronos_evaluate_gives_the_numbers_of_python(cv, nixtla, tmp_path):
    """The command reads the same frame from a file (unique_id/ds recognised without flags) and writes the
    metrics evaluation_metrics computes from cross_validation's frame."""
    data = tmp_path / "panel.parquet"
    nixtla.to_parquet(data, index=False)
    out = tmp_path / "eval"
    args = ["evaluate", "--data", str(data), "-f", ",".join(FORECASTERS), "--horizon", str(H)]
    args += ["--origins", str(WINDOWS), "--stride", str(STEP), "--samples", "16", "--jobs", "1", "--no-progress"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out / "metrics.csv")
    expected = kronos.evaluation_metrics(cv)
    pd.testing.assert_frame_equal(
        written.astype({"step": str}), expected.astype({"step": str}), check_exact=False, rtol=1e-12
    )
    frame = pd.read_parquet(out / "cross_validation.parquet")
    np.testing.assert_allclose(frame["kronos"], cv["kronos"], rtol=1e-12)


def test_close_only_frame_is_forecast_with_one_notice(nixtla):
    closes = nixtla[nixtla["unique_id"] == "GOOGL"][["ds", "close"]].rename(columns={"close": "y"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = kronos.cross_validation(closes, h=2, n_windows=1, forecasters=("drift", "kronos"), num_samples=8)
    notices = [w for w in caught if issubclass(w.category, CloseOnlyNotice)]
    assert len(notices) == 1 and "close-only" in str(notices[0].message)
    assert "unique_id" not in frame.columns and list(frame.columns[:5]) == ["ds", "cutoff", "step", "y", "last_close"]
    bars = closes.sort_values("ds").reset_index(drop=True)
    np.testing.assert_array_equal(frame["y"], bars["y"].iloc[-2:])
    assert frame["kronos"].notna().all()


def test_a_frame_without_forecaster_columns_is_refused():
    with pytest.raises(kronos.InputError, match="no forecaster columns"):
        kronos.evaluation_metrics(pd.DataFrame({"ds": pd.date_range("2020", periods=3), "close": [1.0, 2, 3]}))
