"""Cached generation computes what the original (uncached) algorithm computes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from kronos import Kronos, KronosPredictor, KronosTokenizer
from kronos.forecasting.loading import random_tiny_predictor
from kronos.inference.generation import sample_paths
from kronos.inference.options import SamplingOptions


@pytest.fixture()
def predictor(tiny_predictor):
    return tiny_predictor


def _windows(df, lengths, pred_len):
    """Windows of a real daily series (the S&P 500 index from arch, via the ``sp500_bars`` fixture)."""
    out = []
    for i, n in enumerate(lengths):
        part = df.iloc[2000 + 300 * i : 2000 + 300 * i + n + pred_len].reset_index(drop=True)
        out.append((part.iloc[:n], part.timestamps.iloc[:n], part.timestamps.iloc[n:]))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("lookback, pred_len", [(40, 12), (60, 20)], ids=["fits-window", "window-slides"])
def test_cached_greedy_equals_uncached_on_real_data(predictor, sp500_bars, lookback, pred_len):
    ((df, xt, yt),) = _windows(sp500_bars, [lookback], pred_len)
    a = predictor.predict(df, xt, yt, pred_len, top_k=1, verbose=False, use_cache=False)
    b = predictor.predict(df, xt, yt, pred_len, top_k=1, verbose=False, use_cache=True)
    np.testing.assert_allclose(b.to_numpy(), a.to_numpy(), rtol=1e-4)


def test_shared_prefix_paths_match_uncached_paths_seeded(predictor, sp500_bars):
    ((df, xt, yt),) = _windows(sp500_bars, [50], 8)
    torch.manual_seed(5)
    a = predictor.forecast(df, xt, yt, 8, sample_count=4, use_cache=False)
    torch.manual_seed(5)
    b = predictor.forecast(df, xt, yt, 8, sample_count=4, use_cache=True)
    assert a.paths.shape == (4, 8, 6)
    np.testing.assert_allclose(b.paths, a.paths, rtol=1e-4)
    assert np.ptp(a.paths[:, -1, 3]) > 0  # the paths really differ from each other


def test_sliding_window_with_many_paths_matches_uncached_seeded(predictor, sp500_bars):
    """After the window slides, the history part is shared by the paths and the generated part is per path."""
    ((df, xt, yt),) = _windows(sp500_bars, [60], 14)
    torch.manual_seed(11)
    a = predictor.forecast(df, xt, yt, 14, sample_count=3, use_cache=False)
    torch.manual_seed(11)
    b = predictor.forecast(df, xt, yt, 14, sample_count=3, use_cache=True)
    np.testing.assert_allclose(b.paths, a.paths, rtol=1e-4)


def test_forecast_longer_than_the_context_matches_uncached(predictor, sp500_bars):
    """pred_len > max_context: late windows hold generated bars only."""
    ((df, xt, yt),) = _windows(sp500_bars, [20], 80)
    a = predictor.predict(df, xt, yt, 80, top_k=1, sample_count=2, verbose=False, use_cache=False)
    b = predictor.predict(df, xt, yt, 80, top_k=1, sample_count=2, verbose=False, use_cache=True)
    np.testing.assert_allclose(b.to_numpy(), a.to_numpy(), rtol=1e-4)


def test_predict_batch_with_different_lengths_matches_single_calls(predictor, sp500_bars):
    items = _windows(sp500_bars, [30, 45, 30, 70], 10)
    batch = predictor.predict_batch(
        [d for d, _, _ in items], [x for _, x, _ in items], [y for _, _, y in items], 10, top_k=1, verbose=False
    )
    for (df, xt, yt), got in zip(items, batch):
        alone = predictor.predict(df, xt, yt, 10, top_k=1, verbose=False)
        np.testing.assert_allclose(got.to_numpy(), alone.to_numpy(), rtol=1e-5)
        assert (got.index == pd.DatetimeIndex(yt)).all()


def test_block_window_mode_is_an_approximation_that_only_differs_after_sliding(predictor, sp500_bars):
    ((df, xt, yt),) = _windows(sp500_bars, [56], 20)
    exact = predictor.predict(df, xt, yt, 20, top_k=1, verbose=False, window="exact")
    block = predictor.predict(df, xt, yt, 20, top_k=1, verbose=False, window="block", block=16)
    # 56 + 8 = 64 bars fit the window, so the first 8 forecasts use identical context.
    np.testing.assert_allclose(block.to_numpy()[:8], exact.to_numpy()[:8], rtol=1e-4)
    assert np.isfinite(block.to_numpy()).all()


def test_autoregressive_inference_function_keeps_the_original_signature(tiny_reference, sp500_bars):
    from kronos.bars.normalizer import Normalizer
    from kronos.bars.preprocessing import calendar_features, prepare_features
    from kronos.inference.generation import auto_regressive_inference

    ((df, xt, yt),) = _windows(sp500_bars, [32], 6)
    tok = KronosTokenizer.from_pretrained(tiny_reference / "tokenizer")
    model = Kronos.from_pretrained(tiny_reference / "model")
    x = Normalizer.fit(prepare_features(df)).transform(prepare_features(df))
    out = auto_regressive_inference(
        tok,
        model,
        torch.tensor(x)[None],
        torch.tensor(calendar_features(xt))[None],
        torch.tensor(calendar_features(yt))[None],
        64,
        6,
        clip=5,
        T=1.0,
        top_k=1,
        top_p=1.0,
        sample_count=2,
    )
    assert out.shape == (1, 6, 6)


def test_cached_generation_keeps_dtypes_consistent_under_bf16_autocast(tiny_predictor):
    """Reduced-precision autocast (as on CUDA) must not break the cache or sampling; CPU autocast stands in."""
    from kronos.inference.generation import sample_paths
    from kronos.inference.options import SamplingOptions

    p = tiny_predictor
    x, xs, ys = torch.randn(2, 60, 6), torch.zeros(2, 60, 5), torch.zeros(2, 10, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        paths = sample_paths(p.tokenizer, p.model, x, xs, ys, 10, 64, SamplingOptions(top_k=1, sample_count=3))
    assert paths.shape == (2, 3, 10, 6) and torch.isfinite(paths.float()).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cuda_generation_matches_cpu(tiny_reference, tiny_predictor, sp500_bars, precision):
    ((df, xt, yt),) = _windows(sp500_bars, [60], 12)
    cpu = tiny_predictor.predict(df, xt, yt, 12, top_k=1, verbose=False)
    gpu = KronosPredictor.from_pretrained(tiny_reference, device="cuda", max_context=64, precision=precision)
    out = gpu.predict(df, xt, yt, 12, top_k=1, verbose=False)
    if precision == "fp32":
        np.testing.assert_allclose(out.to_numpy(), cpu.to_numpy(), rtol=1e-3)
    assert np.isfinite(out.to_numpy()).all()


@pytest.mark.usefixtures("one_torch_thread")  # as in its former module, tests/test_panel.py
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


def test_shared_prefix_gives_the_same_logits_and_seeded_paths_as_per_path_copies(shipped_predictor, googl_bars):
    """Cascade attention (one copy of each series' history) against every path holding its own copy."""
    p = shipped_predictor
    frames = [googl_bars.iloc[i * 40 : i * 40 + n].reset_index(drop=True) for i, n in enumerate([120, 90, 120, 61])]
    xt = [f.timestamps for f in frames]
    yt = [pd.Series(pd.bdate_range(f.timestamps.iloc[-1], periods=7)[1:]) for f in frames]
    kw = dict(pred_len=6, sample_count=20, seeds=[1, 2, 3, 4], lookback=None)
    shared = p.forecast_batch(frames, xt, yt, share_prefix=True, **kw)
    copied = p.forecast_batch(frames, xt, yt, share_prefix=False, **kw)
    for a, b in zip(shared, copied):
        np.testing.assert_allclose(a.paths, b.paths, rtol=1e-5, atol=1e-6)
        assert np.ptp(a.paths[:, -1, 3]) > 0

    # the coarse logits of every step, fed the same tokens, agree to 1e-5 relative
    model = p.model
    torch.manual_seed(0)
    hist = torch.randint(0, 256, (3, 50))
    stamps = torch.zeros(3 * 8, 56, 5)
    logits = {}
    for share in (True, False):
        cache = model.new_cache(3, 56)
        model.step_s1(hist, hist, stamps[::8, :50], cache)
        cache = cache.expand(8, share=share)
        rows = torch.randint(0, 256, (24, 6), generator=torch.Generator().manual_seed(1))
        steps = []
        for i in range(6):
            out, context = model.step_s1(rows[:, i : i + 1], rows[:, i : i + 1], stamps[:, 50 + i : 51 + i], cache)
            steps += [out, model.step_s2(context, rows[:, i : i + 1], cache)]
        logits[share] = torch.stack(steps)
    torch.testing.assert_close(logits[True], logits[False], rtol=1e-5, atol=1e-5)


def test_unseeded_forecasts_draw_uniforms_from_the_generator_and_predict_keeps_the_multinomial_stream(tiny_predictor):
    """Without seeds a forecast inverts each token's distribution at uniforms drawn in one call from the generator
    (no torch.multinomial, ~4x cheaper for hundreds of paths); the original-compatible predict keeps
    torch.multinomial, so torch.manual_seed gives the original's numbers (tests/model/test_parity.py's sampled
    fixtures fail without it)."""
    p = tiny_predictor
    x = torch.randn(2, 50, 6) * 0.5
    xs, ys = torch.zeros(2, 50, 5), torch.zeros(2, 6, 5)
    opts = SamplingOptions(sample_count=5)
    unseeded = sample_paths(p.tokenizer, p.model, x, xs, ys, 6, 16, opts, generator=torch.Generator().manual_seed(3))
    explicit = torch.rand(10, 6, 2, generator=torch.Generator().manual_seed(3))
    given = sample_paths(p.tokenizer, p.model, x, xs, ys, 6, 16, opts, uniforms=explicit)
    torch.testing.assert_close(unseeded, given, rtol=0, atol=0)
    multinomial = sample_paths(
        p.tokenizer, p.model, x, xs, ys, 6, 16, SamplingOptions(sample_count=5, draws="multinomial"),
        generator=torch.Generator().manual_seed(3),
    )  # fmt: skip
    assert not torch.equal(multinomial, unseeded)  # another stream, not the uniforms above
