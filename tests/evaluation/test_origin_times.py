"""``RollingConfig.calendar``: forecasters get the future times a live forecast would make at each origin."""

from __future__ import annotations

from kronos.bars.calendars import market_times
from kronos.evaluation import RollingConfig, rolling_evaluate
from kronos.evaluation.baselines import Persistence
from kronos.evaluation.origins import origin_plan


def test_origins_get_the_times_market_times_makes_from_the_history_so_far(sp500_bars):
    # S&P 500 daily, ending in January 2018: origins before Christmas and New Year's Day
    frame = sp500_bars[sp500_bars["timestamps"] <= "2018-01-10"].reset_index(drop=True)  # 19 years: holidays learnt
    config = RollingConfig(lookback=64, horizon=5, origins=6, num_samples=1, calendar="own")
    got = rolling_evaluate({"spx": frame}, [Persistence()], config, raise_errors=True).forecasts
    plan, _ = origin_plan({"spx": frame}, config)
    for pos in plan["spx"]:
        origin = frame["timestamps"].iloc[pos]
        expected = market_times(frame["timestamps"].iloc[: pos + 1], 5, calendar="own").times
        rows = got[got["origin_time"] == origin].sort_values("step")
        assert list(rows["target_time"]) == list(expected)
    # the default keeps the times of the bars that came next
    plain = rolling_evaluate({"spx": frame}, [Persistence()], RollingConfig(64, 5, 6, num_samples=1)).forecasts
    assert set(plain["target_time"]) <= set(frame["timestamps"])
    assert not (got["target_time"].dt.strftime("%m-%d").isin(["12-25", "01-01"])).any()
