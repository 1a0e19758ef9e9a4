"""Refusals of the library: the memory limit, slices of paths, seeds, repeated quantile levels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kronos.bars.samples import load_sample
from kronos.core.errors import InputError
from kronos.forecasting.cost import estimate_run, memory_limit, parse_bytes
from kronos.forecasting.loading import random_tiny_predictor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def series():
    df = load_sample("googl").tail(80).reset_index(drop=True)
    future = pd.Series(pd.bdate_range(df["timestamps"].iloc[-1] + pd.offsets.BDay(1), periods=6))
    return df, future


def test_paths_computed_in_slices_are_the_paths_of_one_call(series):
    df, future = series
    p = random_tiny_predictor(seed=1)
    whole = p.forecast(df, df["timestamps"], future, 6, sample_count=25, seed=4)
    parts = [
        p.forecast(df, df["timestamps"], future, 6, sample_count=n, seed=4, first_path=k) for k, n in ((0, 9), (9, 16))
    ]
    assert np.array_equal(whole.paths, np.concatenate([x.paths for x in parts]))
    with pytest.raises(InputError, match="first_path needs a seed"):
        p.forecast(df, df["timestamps"], future, 6, sample_count=3, first_path=2)


@pytest.mark.parametrize("seed", ["abc", True, 1.5, None])
def test_a_seed_that_is_not_an_integer_is_one_clear_error(series, seed):
    df, future = series
    p = random_tiny_predictor(seed=1)
    if seed is None:  # the one non-integer that is allowed: no seed
        p.forecast(df, df["timestamps"], future, 6, sample_count=2, seed=seed)
        return
    with pytest.raises(InputError, match=r"seed must be an integer, got"):
        p.forecast(df, df["timestamps"], future, 6, sample_count=2, seed=seed)
    with pytest.raises(InputError, match=r"seeds\[1\] must be an integer"):
        p.forecast_batch([df, df], [df["timestamps"]] * 2, [future] * 2, 6, sample_count=2, seeds=[1, seed])
    with pytest.raises(InputError, match=r"seed must be an integer"):
        p.predict(df, df["timestamps"], future, 6, seed=seed, verbose=False)


def test_memory_grows_with_paths_and_horizon_and_the_window_slide_costs_work(series):
    p = random_tiny_predictor(seed=1)
    cfg, params = p.model.config, sum(x.numel() for x in p.model.parameters())
    small = estimate_run(cfg, params, 256, 200, 10, 10)
    assert estimate_run(cfg, params, 256, 200, 10, 20).memory > small.memory
    assert estimate_run(cfg, params, 256, 200, 40, 10).memory > small.memory
    inside = estimate_run(cfg, params, 256, 64, 192, 1).work  # fits the context: one token per bar
    slides = estimate_run(cfg, params, 256, 64, 193, 1).work  # the window slides once: recomputed
    assert slides - inside > 10 * (inside / 192)


def test_a_run_over_the_memory_limit_is_refused_with_how_to_fit(series, monkeypatch):
    df, future = series
    p = random_tiny_predictor(seed=1)
    p.memory_limit = 20 << 20
    with pytest.raises(InputError, match=r"over the limit of 20.0 MiB; use at most (\d+) sample paths") as info:
        p.forecast(df, df["timestamps"], future, 6, sample_count=20_000, seed=1)
    fits = int(str(info.value).split("at most ")[1].split(" ")[0])
    p.forecast(df, df["timestamps"], future, 6, sample_count=min(fits, 200), seed=1)  # within: it runs
    monkeypatch.setenv("KRONOS_MEMORY_LIMIT", "512MiB")
    assert memory_limit() == 512 << 20 and parse_bytes("1.5g") == int(1.5 * (1 << 30))
    monkeypatch.setenv("KRONOS_MEMORY_LIMIT", "lots")
    with pytest.raises(InputError, match="KRONOS_MEMORY_LIMIT: cannot read 'lots'"):
        memory_limit()


def test_repeated_quantile_levels_are_refused_by_the_forecast_too(series):
    df, future = series
    fc = random_tiny_predictor(seed=1).forecast(df, df["timestamps"], future, 6, sample_count=5, seed=1)
    assert set(fc.quantile([0.1, 0.9])) == {0.1, 0.9}
    with pytest.raises(ValueError, match=r"quantile levels repeat: \[0.5\]"):
        fc.quantile([0.5, 0.1, 0.5])
    with pytest.raises(ValueError, match="repeat"):
        fc.volatility_forecast(levels=(0.9, 0.9))
