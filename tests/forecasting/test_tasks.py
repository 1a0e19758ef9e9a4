"""The other tasks on real bars: anomaly scores and embeddings (synthetic K-lines: ``test_synthesis.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from kronos import InputError, KronosPredictor
from kronos.bars.normalizer import Normalizer
from kronos.bars.preprocessing import calendar_features, prepare_features
from kronos.forecasting.anomaly import token_nll

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def predictor(tiny_predictor):
    return tiny_predictor


@pytest.fixture()
def ibm(sp500_bars):
    """A long real daily series (S&P 500 index, 1999..2018, from arch; once IBM from ../shared)."""
    return sp500_bars


def _tokens(predictor, df):
    x = prepare_features(df)
    z = Normalizer.fit(x.astype(np.float32), clip=predictor.clip).transform(x)
    s1, s2 = predictor.tokenizer.encode(torch.from_numpy(z[None]), half=True)
    return s1, s2, torch.from_numpy(calendar_features(df["timestamps"])[None])


def _reference_nll(model, s1, s2, stamp, max_context):
    """The generation step, one bar at a time: coarse logits of the last context position, then the
    fine logits of the length-1 query with the observed coarse token."""
    out1, out2 = [np.nan], [np.nan]
    with torch.no_grad():
        for t in range(1, s1.shape[1]):
            a = max(0, t - max_context)
            l1, ctx = model.decode_s1(s1[:, a:t], s2[:, a:t], stamp[:, a:t])
            l2 = model.decode_s2(ctx, s1[:, t : t + 1])[:, -1]
            out1.append(-torch.log_softmax(l1[0, -1], -1)[s1[0, t]].item())
            out2.append(-torch.log_softmax(l2[0], -1)[s2[0, t]].item())
    return np.array(out1), np.array(out2)


# -- anomaly scores ------------------------------------------------------------------------------
@pytest.mark.parametrize("bars", [50, 90], ids=["fits-context", "slides"])
def test_token_nll_equals_the_generation_step_bar_by_bar(predictor, ibm, bars):
    df = ibm.iloc[3000 : 3000 + bars].reset_index(drop=True)
    s1, s2, stamp = _tokens(predictor, df)
    ref1, ref2 = _reference_nll(predictor.model, s1, s2, stamp, 64)
    nll1, nll2 = token_nll(predictor.model, s1, s2, stamp, 64, stride=1)
    np.testing.assert_allclose(nll1[0].numpy(), ref1, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(nll2[0].numpy(), ref2, rtol=1e-4, atol=1e-4)
    if bars > 65:  # a coarser stride is exact while the window fits, an approximation after
        c1, _ = token_nll(predictor.model, s1, s2, stamp, 64, stride=8)
        np.testing.assert_allclose(c1[0, :65].numpy(), ref1[:65], rtol=1e-4, atol=1e-4)
        assert np.isfinite(c1[0, 1:].numpy()).all()


def test_window_mode_anomaly_scores_frame(predictor, ibm):
    df = ibm.iloc[3000:3040].reset_index(drop=True)
    scores = predictor.anomaly_scores(df, df["timestamps"], causal=False)
    assert list(scores.columns) == ["nll_s1", "nll_s2", "score"]
    assert (scores.index == pd.DatetimeIndex(df["timestamps"])).all()
    assert np.isnan(scores["score"].iloc[0]) and (scores["score"].iloc[1:] > 0).all()
    np.testing.assert_allclose(scores["score"], scores["nll_s1"] + scores["nll_s2"])
    s1, s2, stamp = _tokens(predictor, df)
    ref1, ref2 = _reference_nll(predictor.model, s1, s2, stamp, 64)
    np.testing.assert_allclose(scores["score"].to_numpy()[1:], (ref1 + ref2)[1:], rtol=1e-4)
    with pytest.raises(InputError, match="stride"):
        predictor.anomaly_scores(df, df["timestamps"], stride=0)


def test_causal_anomaly_scores_are_one_step_forecast_likelihoods(predictor, ibm):
    df = ibm.iloc[3000:3090].reset_index(drop=True)  # longer than max_context: the context slides
    scores = predictor.anomaly_scores(df, df["timestamps"], min_context=8)
    assert scores["score"].iloc[:8].isna().all() and (scores["score"].iloc[8:] > 0).all()
    x, stamp = prepare_features(df), calendar_features(df["timestamps"])
    model = predictor.model
    for t in (8, 40, 64, 89):  # by hand: normalise the past only, tokenise, one generation step
        c = min(64, t)
        z = Normalizer.fit(x[t - c : t].astype(np.float32), clip=predictor.clip).transform(x[t - c : t + 1])
        with torch.no_grad():
            s1, s2 = predictor.tokenizer.encode(torch.from_numpy(z[None]), half=True)
            st = torch.from_numpy(stamp[None, t - c : t + 1])
            l1, ctx = model.decode_s1(s1[:, :c], s2[:, :c], st[:, :c])
            l2 = model.decode_s2(ctx, s1[:, c : c + 1])[:, -1]
        expected = -torch.log_softmax(l1[0, -1], -1)[s1[0, c]] - torch.log_softmax(l2[0], -1)[s2[0, c]]
        assert scores["score"].iloc[t] == pytest.approx(expected.item(), rel=1e-4)
    # causal: changing a later bar leaves every earlier score exactly as it was
    later = df.copy()
    later.loc[70:, ["open", "high", "low", "close"]] *= 1.3
    again = predictor.anomaly_scores(later, later["timestamps"], min_context=8)
    np.testing.assert_array_equal(again["score"].to_numpy()[:70], scores["score"].to_numpy()[:70])
    with pytest.raises(InputError, match="min_context"):
        predictor.anomaly_scores(df, df["timestamps"], min_context=1)


def _fit_briefly(predictor, train: pd.DataFrame, steps: int = 120) -> None:
    """A few Adam steps of next-bar training on real windows: enough to learn which tokens are usual.

    (Random weights cannot tell a corrupted bar from a real one; any trained model can.)
    """
    x, stamp = prepare_features(train), calendar_features(train["timestamps"])
    windows = [(x[a : a + 64], stamp[a : a + 64]) for a in range(0, len(train) - 64, 8)]
    z = torch.from_numpy(np.stack([Normalizer.fit(w.astype(np.float32)).transform(w) for w, _ in windows]))
    st = torch.from_numpy(np.stack([s for _, s in windows]))
    with torch.no_grad():
        s1, s2 = predictor.tokenizer.encode(z, half=True)
    model = predictor.model
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        b = torch.randint(0, len(z), (16,), generator=gen)
        l1, l2 = model(s1[b, :-1], s2[b, :-1], st[b, :-1], use_teacher_forcing=True, s1_targets=s1[b, 1:])
        loss, _, _ = model.head.compute_loss(l1, l2, s1[b, 1:], s2[b, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


@pytest.mark.slow
def test_anomaly_score_is_higher_on_a_corrupted_bar(tiny_reference, ibm):
    """A briefly trained model scores corrupted closes (25% print errors, up or down) above the real bars.

    The fixture tokenizer keeps its random weights, so detection is statistical, not certain: the
    test asks for a clear majority and a large typical rise, over 32 corruptions in held-out stretches.
    """
    torch.manual_seed(0)
    fitted = KronosPredictor.from_pretrained(
        tiny_reference, device="cpu", max_context=64
    )  # its own copy: trained below
    _fit_briefly(fitted, ibm.iloc[1000:3000].reset_index(drop=True))
    rises = []
    for start in (3200, 3600, 4000, 4400):  # held-out stretches, after the training rows
        df = ibm.iloc[start : start + 64].reset_index(drop=True)
        base = fitted.anomaly_scores(df, df["timestamps"])["score"].to_numpy()
        for i in (15, 30, 45, 60):
            for factor in (1.25, 0.8):
                bad = df.copy()
                bad.loc[i, "close"] *= factor
                bad.loc[i, "high"] = max(bad.loc[i, "high"], bad.loc[i, "close"])
                bad.loc[i, "low"] = min(bad.loc[i, "low"], bad.loc[i, "close"])
                corrupted = fitted.anomaly_scores(bad, bad["timestamps"])["score"].to_numpy()
                rises.append(corrupted[i] - base[i])
                np.testing.assert_array_equal(corrupted[:i], base[:i])  # causal: earlier bars do not move
    rises = np.array(rises)
    assert (rises > 0).mean() >= 0.7 and np.median(rises) > 1.0, np.round(rises, 2)


# -- embeddings ----------------------------------------------------------------------------------
def test_embed_is_pooled_hidden_states(predictor, ibm):
    df = ibm.iloc[4000:4100].reset_index(drop=True)  # longer than the tiny model's 64-bar context
    vec = predictor.embed(df, df["timestamps"])
    assert vec.shape == (predictor.model.d_model,)
    # the model sees its last 64 bars, normalised on exactly those: a long history embeds like its tail
    tail = df.iloc[-64:].reset_index(drop=True)
    np.testing.assert_array_equal(predictor.embed(tail, tail["timestamps"]), vec)
    s1, s2, stamp = _tokens(predictor, tail)
    with torch.no_grad():
        h = predictor.model.hidden_states(s1, s2, stamp)
    np.testing.assert_allclose(vec, h[0].mean(0).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        predictor.embed(df, df["timestamps"], pool="last"), h[0, -1].numpy(), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(InputError, match="pool"):
        predictor.embed(df, df["timestamps"], pool="median")


def test_embeddings_ignore_price_level_but_see_shape(predictor, ibm, eurusd_bars):
    df = ibm.iloc[4000:4064].reset_index(drop=True)
    scaled = df.copy()
    scaled[["open", "high", "low", "close"]] *= 10.0
    a, b = predictor.embed(df, df["timestamps"]), predictor.embed(scaled, scaled["timestamps"])
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    other = eurusd_bars.iloc[500:564].reset_index(drop=True)
    both = predictor.embed([df, other], [df["timestamps"], other["timestamps"]])
    assert both.shape == (2, predictor.model.d_model)
    np.testing.assert_allclose(both[0], a, rtol=1e-5, atol=1e-6)
    assert np.abs(both[0] - both[1]).max() > 1e-3


def test_embed_windows_match_single_windows(predictor, ibm):
    df = ibm.iloc[4000:4100].reset_index(drop=True)
    frame = predictor.embed_windows(df, df["timestamps"], 40, stride=15)
    ends = list(range(39, 100, 15))
    assert frame.shape == (len(ends), predictor.model.d_model)
    assert (frame.index == pd.DatetimeIndex(df["timestamps"].iloc[ends])).all()
    one = df.iloc[ends[2] - 39 : ends[2] + 1]
    np.testing.assert_allclose(frame.iloc[2].to_numpy(), predictor.embed(one, one["timestamps"]), rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="fewer than one window"):
        predictor.embed_windows(df.iloc[:10], df["timestamps"].iloc[:10], 40)


# -- anomaly scores of the shipped model ----------------------------------------------------------


def test_anomaly_scores_accept_impossible_bars_and_rank_spikes_high(shipped_predictor):
    """An impossible bar (high and low swapped) is refused by forecasting but scored by anomaly detection;
    with the shipped trained model a 10-sigma spike scores above 95% of the clean bars."""
    from kronos.bars.preprocessing import InputError
    from kronos.bars.samples import load_sample

    predictor = shipped_predictor
    df = load_sample("googl").tail(200).reset_index(drop=True)
    cols = ["open", "high", "low", "close", "volume"]
    swapped = df.copy()
    swapped.loc[180, ["high", "low"]] = [df.loc[180, "low"], df.loc[180, "high"]]
    with pytest.raises(InputError, match="row 180"):
        predictor.predict(
            swapped[cols],
            swapped["timestamps"],
            pd.Series(pd.bdate_range("2030-01-01", periods=2)),
            pred_len=2,
            verbose=False,
        )
    scored = predictor.anomaly_scores(swapped[cols], swapped["timestamps"], min_context=150)["score"]
    assert np.isfinite(scored.iloc[150:]).all()
    clean = predictor.anomaly_scores(df[cols], df["timestamps"], min_context=150)["score"]
    spiked = df.copy()
    sigma = float(np.log(df["close"]).diff().std())
    spiked.loc[180, "close"] = df.loc[180, "close"] * float(np.exp(10 * sigma))
    spiked.loc[180, "high"] = max(df.loc[180, "high"], spiked.loc[180, "close"])
    spike = predictor.anomaly_scores(spiked[cols], spiked["timestamps"], min_context=150)["score"]
    assert spike.iloc[180] > clean.iloc[150:].quantile(0.95)
