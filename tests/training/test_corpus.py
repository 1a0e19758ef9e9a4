"""The memory-mapped corpus: contents, gap rule, time splits, atomic builds (real data)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from kronos.bars.preprocessing import calendar_features
from kronos.bars.sources import iter_series
from kronos.training.corpus import Corpus, build_corpus
from kronos.training.splits import CorpusError, GapRule, SplitSpec


@pytest.fixture(scope="module")
def files(shared_data):
    return [
        shared_data / "cn_equity" / "SH600977_5min.parquet",
        shared_data / "crypto" / "BINANCE-ALGOUSDT_1min.parquet",  # five whole months, years apart
        shared_data / "fx" / "EURUSD_daily.parquet",
    ]


@pytest.fixture(scope="module")
def corpus(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "c"
    return build_corpus(
        iter_series(files), out, lookback=60, horizon=20, split=SplitSpec(val_fraction=0.1, test_fraction=0.1)
    )


def test_arrays_hold_the_source_bars(corpus, files):
    assert corpus.meta["n_instruments"] == 3
    for inst, path in zip(corpus.instruments, files):
        df = pd.read_parquet(path)
        rows = slice(inst["row"], inst["row"] + inst["n_bars"])
        assert inst["n_bars"] == len(df)
        expected = df[["open", "high", "low", "close", "volume"]].to_numpy(np.float32)
        np.testing.assert_array_equal(corpus.features[rows][:, :5], expected)
        np.testing.assert_array_equal(
            corpus.timestamps[rows], df["timestamps"].to_numpy().astype("datetime64[ns]").astype(np.int64)
        )
        np.testing.assert_array_equal(corpus.stamps[rows], calendar_features(df["timestamps"]).astype(np.uint8))
    assert corpus.n_bars == sum(i["n_bars"] for i in corpus.instruments)


def test_no_window_crosses_a_gap_and_missing_months_split_the_series(corpus):
    algo = next(i for i in corpus.instruments if i["symbol"] == "BINANCE-ALGOUSDT_1min")
    assert algo["n_segments"] == 5  # the five calendar months present in the file
    assert pd.Timedelta(algo["max_gap"]) == pd.Timedelta("14D")  # auto: max(10 x 1 min, 14 days)
    ts = np.asarray(corpus.timestamps)
    window = corpus.window
    for inst in corpus.instruments:
        lo, hi = inst["row"], inst["row"] + inst["n_bars"]
        limit = pd.Timedelta(inst["max_gap"]).value
        breaks = np.zeros(corpus.n_bars + 1, dtype=np.int64)
        breaks[lo + 1 : hi] = np.diff(ts[lo:hi]) > limit  # breaks[r] = 1: gap just before row r
        csum = np.cumsum(breaks)
        for split in ("train", "val", "test"):
            starts = np.asarray(corpus.windows(split))
            starts = starts[(starts >= lo) & (starts < hi)]
            assert (starts + window <= hi).all()
            # gaps strictly inside [s, s + window): none
            assert (csum[starts + window - 1] - csum[starts] == 0).all()


def test_splits_follow_time_within_each_instrument(corpus):
    window = corpus.window
    ts = np.asarray(corpus.timestamps)
    for inst in corpus.instruments:
        lo, n = inst["row"], inst["n_bars"]
        train_end, val_end = lo + inst["train_end"], lo + inst["val_end"]
        assert inst["train_end"] == n - round(0.1 * n) - round(0.1 * n) and inst["val_end"] == n - round(0.1 * n)
        tr = np.asarray(corpus.windows("train"))
        va = np.asarray(corpus.windows("val"))
        te = np.asarray(corpus.windows("test"))
        tr, va, te = (w[(w >= lo) & (w < lo + n)] for w in (tr, va, te))
        assert len(tr) and len(va) and len(te)
        assert (tr + window <= train_end).all()
        assert ((va >= train_end) & (va + window <= val_end)).all()
        assert (te >= val_end).all()
        assert ts[tr + window - 1].max() < ts[va].min() <= ts[va + window - 1].max() < ts[te].min()


def test_split_by_date(files, tmp_path):
    c = build_corpus(
        iter_series(files[2]),
        tmp_path / "c",
        lookback=30,
        horizon=5,
        split=SplitSpec(val_start="2015-01-01", test_start="2018-01-01"),
    )
    ts = np.asarray(c.timestamps)
    for split, lo, hi in (
        ("train", None, "2015-01-01"),
        ("val", "2015-01-01", "2018-01-01"),
        ("test", "2018-01-01", None),
    ):
        w = np.asarray(c.windows(split))
        assert len(w)
        if lo:
            assert ts[w].min() >= pd.Timestamp(lo).value
        if hi:
            assert ts[w + c.window - 1].max() < pd.Timestamp(hi).value


def test_explicit_and_disabled_gap_rules(files, tmp_path):
    never = build_corpus(iter_series(files[1]), tmp_path / "a", lookback=60, horizon=20, gap=GapRule(max_gap=None))
    assert never.meta["n_segments"] == 1
    hourly = build_corpus(iter_series(files[1]), tmp_path / "b", lookback=60, horizon=20, gap=GapRule(max_gap="30min"))
    ts = np.asarray(hourly.timestamps)
    assert hourly.meta["n_segments"] == 1 + int((np.diff(ts) > pd.Timedelta("30min").value).sum())
    with pytest.raises(CorpusError, match="max_gap must be"):
        GapRule(max_gap="whenever")


def test_too_long_window_is_a_clear_error(files, tmp_path):
    with pytest.raises(
        CorpusError,
        match=r"no training window fits: lookback \+ horizon = 5000 bars.*longest gap-free training stretch",
    ):
        build_corpus(iter_series(files[0]), tmp_path / "c", lookback=4990, horizon=10)
    assert not (tmp_path / "c").exists()
    assert not list(tmp_path.iterdir())  # no temporary folder left behind


def test_failed_rebuild_leaves_the_previous_corpus_intact(files, tmp_path):
    target = tmp_path / "c"
    first = build_corpus(iter_series(files[0]), target, lookback=30, horizon=10, fingerprint="v1")

    def broken():
        yield from iter_series(files[2])
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        build_corpus(broken(), target, lookback=30, horizon=10, fingerprint="v2")
    again = Corpus.open(target)
    assert again.meta["fingerprint"] == "v1" and again.meta["n_bars"] == first.meta["n_bars"] == 2500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_corpus_pickles_without_its_arrays(corpus):
    _ = corpus.features[:10]  # map the arrays
    blob = pickle.dumps(corpus)
    assert len(blob) < 50_000 < corpus.features.nbytes
    clone = pickle.loads(blob)
    np.testing.assert_array_equal(clone.features[:10], corpus.features[:10])


def test_open_missing_corpus_says_how_to_build_one(tmp_path):
    with pytest.raises(CorpusError, match="kronos train corpus"):
        Corpus.open(tmp_path / "nothing")
