"""Window datasets and samplers: lookback-only normalisation, per-rank draws, resumable positions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from kronos.bars.sources import iter_series
from kronos.training.corpus import FREQUENCY_GROUPS, build_corpus, frequency_group
from kronos.training.splits import SplitSpec
from kronos.training.windows import EvalWindowSampler, RandomWindowSampler, WindowDataset, group_weights


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory):
    files = [shared_data / "crypto" / "BINANCE-ETHUSDT_1h.parquet", shared_data / "index" / "VIX_daily.parquet"]
    return build_corpus(
        iter_series(files),
        tmp_path_factory.mktemp("ds") / "c",
        lookback=64,
        horizon=16,
        split=SplitSpec(val_fraction=0.2),
    )


def test_windows_are_normalised_with_lookback_statistics_only(corpus):
    ds = WindowDataset(corpus, "train", clip=5.0)
    rng = np.random.default_rng(0)
    for i in rng.integers(0, len(ds), size=20):
        item = ds[int(i)]
        start = item["row"]
        raw = np.asarray(corpus.features[start : start + 80], dtype=np.float32)
        look = np.asfortranarray(raw[:64])  # column-major, as the original's df.values.astype(np.float32)
        mean, std = look.mean(axis=0), look.std(axis=0)
        expected = np.clip((raw - mean) / (std + 1e-5), -5, 5)  # whole-window statistics would not match
        np.testing.assert_allclose(item["x"].numpy(), expected, rtol=1e-5, atol=1e-5)
        assert item["x"].shape == (80, 6) and item["stamp"].shape == (80, 5) and item["stamp"].dtype == torch.int64
        np.testing.assert_array_equal(item["stamp"].numpy(), np.asarray(corpus.stamps[start : start + 80]))
    # the lookback part is standardised (unless values were clipped), the horizon generally is not
    lookback_means = np.stack([ds[int(i)]["x"][:64].mean(0).numpy() for i in range(0, len(ds), max(len(ds) // 50, 1))])
    assert np.abs(np.median(lookback_means, axis=0)).max() < 0.05


def test_each_rank_draws_different_windows_and_the_order_is_reproducible():
    n, per_epoch = 10_000, 3_000
    ranks = [RandomWindowSampler(n, per_epoch, seed=3, rank=r, world_size=3) for r in range(3)]
    draws = [list(s) for s in ranks]
    assert all(len(d) == 1000 == len(s) for d, s in zip(draws, ranks))
    assert not set(draws[0]) & set(draws[1]) and not set(draws[1]) & set(draws[2])
    assert sorted(sum(draws, [])) == sorted(ranks[0].global_order().tolist())
    assert list(RandomWindowSampler(n, per_epoch, seed=3, rank=1, world_size=3)) == draws[1]
    ranks[1].set_epoch(1)
    assert list(ranks[1]) != draws[1]
    # resuming inside an epoch skips exactly the draws already used by all ranks
    ranks[1].set_epoch(0)
    ranks[1].set_position(600)  # 200 steps of one window per rank
    assert list(ranks[1]) == draws[1][200:]


def test_more_draws_than_windows_repeats_whole_permutations():
    s = RandomWindowSampler(100, 250, seed=0)
    order = s.global_order()
    assert (
        len(order) == 250
        and sorted(order[:100].tolist()) == list(range(100))
        and sorted(order[100:200].tolist()) == list(range(100))
    )


def test_eval_sampler_gives_equal_disjoint_shares():
    shares = [list(EvalWindowSampler(1003, 500, rank=r, world_size=4)) for r in range(4)]
    assert len({len(s) for s in shares}) == 1 and len(shares[0]) == 125
    assert len(set(sum(shares, []))) == 500


@pytest.mark.slow
def test_loader_with_workers_reads_the_memory_maps(corpus):
    ds = WindowDataset(corpus, "val")
    sampler = EvalWindowSampler(len(ds), 64)
    loader = DataLoader(ds, batch_size=16, sampler=sampler, num_workers=2)
    batches = list(loader)
    assert len(batches) == 4 and batches[0]["x"].shape == (16, 80, 6)
    first = ds[int(sampler.indices[0])]
    torch.testing.assert_close(batches[0]["x"][0], first["x"])


def test_corpus_knows_each_windows_frequency_group(corpus):
    groups = corpus.window_groups("train")
    starts = np.asarray(corpus.windows("train"))
    assert len(groups) == len(starts)
    by_symbol = {inst["symbol"]: inst for inst in corpus.instruments}
    for i in np.linspace(0, len(starts) - 1, 25).round().astype(int):
        symbol = corpus.instrument_of_row(int(starts[i]))["symbol"]
        expected = "hourly" if "ETHUSDT" in symbol else "daily"
        assert FREQUENCY_GROUPS[groups[i]] == expected, (symbol, by_symbol[symbol]["median_spacing"])


def test_frequency_groups_of_bar_spacings():
    assert [frequency_group(s) for s in ("1min", "5min", "15min")] == ["intraday"] * 3
    assert [frequency_group(s) for s in ("30min", "1h", "4h")] == ["hourly"] * 3
    assert [frequency_group(s) for s in ("1D", "3D", "7D", "31D")] == ["daily"] * 4


def test_weighted_draws_give_each_group_its_share_however_many_windows_it_has(corpus):
    groups = corpus.window_groups("train")
    counts = np.bincount(groups, minlength=3)
    assert counts[0] > 2 * counts[1] or counts[1] > 2 * counts[0]  # the groups are unequal to start with
    weights = group_weights(groups, [1.0, 1.0, 1.0])
    sampler = RandomWindowSampler(len(groups), 20_000, seed=5, weights=weights)
    drawn = np.bincount(groups[sampler.global_order()], minlength=3) / 20_000
    present = counts > 0
    np.testing.assert_allclose(drawn[present], 1 / present.sum(), atol=0.02)
    # deterministic per (seed, epoch), different across epochs, disjoint shares across ranks
    again = RandomWindowSampler(len(groups), 20_000, seed=5, weights=weights)
    np.testing.assert_array_equal(again.global_order(), sampler.global_order())
    again.set_epoch(1)
    assert not np.array_equal(again.global_order(), sampler.global_order())
    ranks = [list(RandomWindowSampler(len(groups), 600, seed=5, rank=r, world_size=2, weights=weights)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 300
    whole = RandomWindowSampler(len(groups), 600, seed=5, weights=weights).global_order().tolist()
    assert sorted(ranks[0] + ranks[1]) == sorted(whole)


def test_group_weights_respect_shares_and_refuse_an_empty_choice():
    groups = np.array([0] * 90 + [2] * 10)
    w = group_weights(groups, [1.0, 5.0, 3.0])  # group 1 has no window: its share goes to the others
    assert w.sum() == pytest.approx(1.0)
    assert w[groups == 0].sum() == pytest.approx(0.25) and w[groups == 2].sum() == pytest.approx(0.75)
    with pytest.raises(ValueError, match="positive share"):
        group_weights(groups, [0.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="weights for"):
        RandomWindowSampler(50, 10, weights=np.ones(49))


def test_eval_sampler_takes_an_equal_number_from_each_group():
    groups = np.array([0] * 900 + [1] * 80 + [2] * 20 + [-1] * 100)
    sampler = EvalWindowSampler(len(groups), 150, groups=groups)
    picked = groups[sampler.indices]
    assert np.bincount(picked + 1, minlength=4).tolist() == [0, 50, 50, 20]  # group 2 has only 20; -1 left out
    shares = [list(EvalWindowSampler(len(groups), 150, rank=r, world_size=2, groups=groups)) for r in (0, 1)]
    assert len(shares[0]) == len(shares[1]) and not set(shares[0]) & set(shares[1])


def test_a_drawn_normalised_part_is_fixed_per_window_and_seed(corpus):
    """With ``min_lookback`` each window is normalised on its first ``fitted`` bars, drawn from
    ``[min_lookback, lookback]`` once per (seed, window): the same on every read and in every worker."""
    ds = WindowDataset(corpus, "train", clip=5.0, min_lookback=16, seed=3)
    again = WindowDataset(corpus, "train", clip=5.0, min_lookback=16, seed=3)
    other = WindowDataset(corpus, "train", clip=5.0, min_lookback=16, seed=4)
    picks = np.random.default_rng(1).integers(0, len(ds), size=200)
    fitted = np.array([ds[int(i)]["fitted"] for i in picks])
    assert fitted.min() >= 16 and fitted.max() <= 64 and len(np.unique(fitted)) > 20
    assert [again[int(i)]["fitted"] for i in picks] == fitted.tolist()
    assert [other[int(i)]["fitted"] for i in picks] != fitted.tolist()
    for i in picks[:10]:
        item = ds[int(i)]
        raw = np.asarray(corpus.features[item["row"] : item["row"] + 80], dtype=np.float32)
        n = item["fitted"]
        expected = np.clip((raw - raw[:n].mean(axis=0)) / (raw[:n].std(axis=0) + 1e-5), -5, 5)
        np.testing.assert_allclose(item["x"].numpy(), expected, rtol=1e-4, atol=1e-4)
    assert WindowDataset(corpus, "val")[0]["fitted"] == 64  # without min_lookback: the whole lookback
    with pytest.raises(ValueError, match="min_lookback must be in"):
        WindowDataset(corpus, "train", min_lookback=65)
