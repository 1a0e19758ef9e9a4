"""Bad failures made clear (issue 12): checkpoints that are missing or broken, CLI checks made before
the work, training leftovers, evaluation skip reasons and the HTML report."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from kronos import ConfigError, InputError, Kronos, KronosPredictor
from kronos.bars.sources import DataSourceError
from kronos.cli import (
    app,
    commands,  # noqa: F401  (registers the commands)
)
from kronos.core.device import DeviceError, resolve_device
from kronos.core.files import remove_stale_temp_dirs
from kronos.evaluation import report
from kronos.evaluation.baselines import Persistence
from kronos.evaluation.data import read_series
from kronos.evaluation.rolling import RollingConfig, rolling_evaluate
from kronos.model import hub as hub_module
from kronos.training import train

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture()
def unreachable_hub(monkeypatch):
    """A hub endpoint nothing listens on: connection refused at once, as with no network."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(hub_module, "_PROBED", {})


# -- 7. a missing path or an unreachable hub fails fast, in one message ------------------------------


@pytest.mark.parametrize(
    "env,why",
    [("offline", r"the hub is offline \(HF_HUB_OFFLINE is set\)"), ("unreachable_hub", "the hub could not be reached")],
)
def test_missing_local_path_fails_fast_with_one_message(env, why, request, tmp_path, monkeypatch):
    request.getfixturevalue(env)
    monkeypatch.chdir(tmp_path)
    for load in (
        lambda: KronosPredictor.from_pretrained("runs/mymodel"),
        lambda: Kronos.from_pretrained("runs/mymodel"),
    ):
        start = time.perf_counter()
        with pytest.raises(FileNotFoundError, match=rf"runs/mymodel: no such local directory, .*{why}"):
            load()
        assert time.perf_counter() - start < 8


# -- 8. broken checkpoint files name the file and the fault -------------------------------------------


@pytest.fixture()
def bundle(tiny_reference, tmp_path):
    out = tmp_path / "bundle"
    shutil.copytree(tiny_reference / "model", out / "model")
    shutil.copytree(tiny_reference / "tokenizer", out / "tokenizer")
    return out


def test_truncated_weights_name_the_file(bundle):
    weights = bundle / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ConfigError, match=rf"{weights}: not a readable safetensors file .*truncated"):
        KronosPredictor.from_pretrained(bundle)


def test_nan_weights_are_refused_at_load_time(bundle):
    weights = bundle / "tokenizer" / "model.safetensors"
    state = load_file(str(weights))
    key = sorted(k for k, v in state.items() if v.is_floating_point())[3]
    state[key] = state[key].clone()
    state[key].view(-1)[0] = float("nan")
    save_file(state, str(weights), metadata={"format": "pt"})
    with pytest.raises(ConfigError, match=rf"{weights}: tensor '{key}' has 1 NaN or infinite value"):
        KronosPredictor.from_pretrained(bundle)


@pytest.mark.parametrize(
    "text,match",
    [
        ("{max_context: 64", "not valid JSON"),
        ("[64]", "expected a JSON object"),
        ('{"max_context": 0}', "max_context must be an integer >= 1, got 0"),
        ('{"clip": -1}', "clip must be > 0"),
        ('{"max_ctx": 64}', r"unknown key\(s\) \['max_ctx'\]"),
    ],
)
def test_invalid_predictor_json_names_the_file(bundle, text, match):
    (bundle / "predictor.json").write_text(text)
    with pytest.raises(ConfigError, match=rf"{bundle / 'predictor.json'}: {match}"):
        KronosPredictor.from_pretrained(bundle)


# -- 9. max_context: 0 is refused, the default is documented and applied ----------------------------------


def test_max_context_zero_is_refused_and_the_default_is_512(bundle):
    with pytest.raises(InputError, match="max_context must be an integer >= 1, got 0"):
        KronosPredictor.from_pretrained(bundle, max_context=0)
    assert KronosPredictor.from_pretrained(bundle).max_context == 512  # no predictor.json: the original's default
    (bundle / "predictor.json").write_text('{"max_context": 64, "clip": 5}')
    assert KronosPredictor.from_pretrained(bundle).max_context == 64
    cli = runner.invoke(app, ["forecast", "--data", "x.csv", "--model", str(bundle), "--max-context", "0"])
    assert cli.exit_code == 2 and "--max-context" in cli.output


# -- 11. kronos forecast checks --out and --device before the work -----------------------------------------


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


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_on_a_build_without_it_is_named(bundle, tmp_path, shared_data):
    with pytest.raises(DeviceError, match="CUDA"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="not a valid PyTorch device name"):
        resolve_device("gpu0")
    bars = pd.read_parquet(shared_data / "fx" / "EURUSD_1h.parquet").iloc[:80]
    bars.to_csv(tmp_path / "bars.csv", index=False)
    result = runner.invoke(
        app, ["forecast", "--data", str(tmp_path / "bars.csv"), "--model", str(bundle), "--device", "cuda"]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    expected = "CUDA is not available in this PyTorch build" if torch.version.cuda is None else "no CUDA GPU is visible"
    assert expected in result.output


# -- 10. training: stale temp folders are removed; a run that cannot start leaves no folder ----------


def test_stale_temp_folders_are_removed_and_live_ones_kept(tmp_path):
    dead = tmp_path / ".last.tmp-999999999-0123abcd"
    live = tmp_path / f".best.tmp-{os.getpid()}-89abcdef"
    other = tmp_path / ".last.tmp-notapid"
    for d in (dead, live, other):
        (d / "model").mkdir(parents=True)
    assert remove_stale_temp_dirs(tmp_path) == [dead]
    assert not dead.exists() and live.exists() and other.exists()


def _failing_run(out: Path, tmp_path: Path) -> list[str]:
    return [
        f"output_dir={out}",
        f"data.paths={json.dumps([str(tmp_path / 'absent.parquet')])}",
        f"data.corpus_dir={out / 'corpus'}",
        "train.progress=false",
        "train.tensorboard=false",
    ]


def test_a_run_that_cannot_start_leaves_no_output_folder_and_cleans_stale_ones(tmp_path):
    out = tmp_path / "runs" / "new"
    with pytest.raises(DataSourceError, match="absent.parquet"):
        train("tokenizer", REPO / "configs" / "tiny-pair.yaml", overrides=_failing_run(out, tmp_path))
    assert not out.exists()

    kept = tmp_path / "runs" / "old"
    stale = kept / ".last.tmp-999999999-0123abcd"
    (stale / "model").mkdir(parents=True)
    (kept / "metrics.csv").write_text("step\n")
    with pytest.raises(DataSourceError):
        train("tokenizer", REPO / "configs" / "tiny-pair.yaml", overrides=_failing_run(kept, tmp_path))
    assert not stale.exists() and (kept / "metrics.csv").exists()


# -- 12. evaluate / backtest: skipped series are counted, with the true reason ------------------------------


def test_skip_reasons_tell_short_from_misaligned(shared_data):
    panel = read_series(shared_data / "us_equity" / "sp500_daily_panel.parquet", symbols=["AAPL", "MSFT", "XOM", "JPM"])
    panel["XOM"] = panel["XOM"].iloc[:-10].reset_index(drop=True)  # ends two weeks before the others, long enough
    panel["JPM"] = panel["JPM"].iloc[:50].reset_index(drop=True)
    config = RollingConfig(lookback=60, horizon=5, origins=2, stride=5, align="calendar")
    errors = rolling_evaluate(panel, [Persistence()], config).errors.set_index("series")["error"]
    assert errors["JPM"] == "skipped: too short: 50 bars, lookback 60 + horizon 5 needs 65"
    assert errors["XOM"].startswith("skipped: ends too early: its last usable origin")


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


# -- 13. the HTML report keeps PIT = 1 and shares one plotly.js ---------------------------------------------


def test_html_pit_histogram_keeps_values_equal_to_one(tmp_path):
    pit = np.r_[np.ones(57), np.linspace(0.0, 0.95, 43)]
    forecasts = pd.DataFrame({"forecaster": "persistence", "pit": pit})
    metrics = pd.DataFrame(columns=["forecaster", "series", "step", "mae_ret", "crps_ret"])
    figs = report.evaluation_plotly(forecasts, metrics)
    bars = [t for f in figs for t in f.data if t.type == "bar"]
    assert len(bars) == 1
    density = np.asarray(bars[0].y)
    assert density.sum() * 0.1 == pytest.approx(1.0)  # nothing dropped, nothing renormalised
    assert density[-1] == pytest.approx((57 + np.sum(pit[57:] >= 0.9)) / 100 * 10)


def test_html_reports_share_one_local_plotly_js(tmp_path):
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 2]))
    a = report.write_html(tmp_path / "a.html", "A", [("plots", [fig])])
    b = report.write_html(tmp_path / "b.html", "B", [("plots", [fig, pd.DataFrame({"x": [1]})])])
    scripts = list(tmp_path.glob("plotly-*.min.js"))
    assert len(scripts) == 1 and scripts[0].stat().st_size > 1_000_000
    for page in (a, b):
        text = page.read_text()
        assert page.stat().st_size < 50_000 and f"<script src='{scripts[0].name}'></script>" in text
