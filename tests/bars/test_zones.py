"""Times that carry UTC offsets but no zone name (a CSV or JSON written from a zone-aware index) are read in the zone
their offsets fit, so every door sees the local times an aware index gives."""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kronos.bars.preprocessing import to_datetime_index
from kronos.bars.reader import read_bars
from kronos.bars.samples import load_sample
from kronos.bars.zones import OffsetZoneNotice, infer_zone, local_zone
from kronos.core.errors import InputError


def _in(zone: str, sample: str = "googl") -> pd.DataFrame:
    """A bundled sample's bars (GOOGL's days taken at 21:00 UTC), as a broker in ``zone`` would export them."""
    bars = load_sample(sample)
    utc = bars["timestamps"] + (pd.Timedelta(hours=21) if sample == "googl" else pd.Timedelta(0))
    return bars.assign(timestamps=utc.dt.tz_localize("UTC").dt.tz_convert(zone))


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/London", "Australia/Sydney"])
def test_a_csv_written_from_an_aware_index_across_daylight_saving_reads_back_in_its_zone(zone, tmp_path):
    aware = _in(zone)
    offsets = {t.utcoffset() for t in aware["timestamps"]}
    assert len(offsets) == 2  # 2016-2018: daylight-saving changes in each zone
    aware.to_csv(tmp_path / "bars.csv", index=False)  # each time written with its own offset
    with pytest.warns(OffsetZoneNotice, match=rf"read in {zone}, whose offsets they match"):
        back = read_bars(tmp_path / "bars.csv")
    assert str(back["timestamps"].dt.tz) == zone
    pd.testing.assert_series_equal(back["timestamps"], aware["timestamps"].reset_index(drop=True), check_names=False)


def test_the_zone_found_gives_the_local_times_the_offsets_say():
    aware = _in("America/Chicago", "eurusd")["timestamps"]  # hourly, across 5 November 2017
    zone = local_zone(list(aware))
    assert zone == "America/Chicago"
    # whichever fitting zone is named, the local time of every bar is the one written
    np.testing.assert_array_equal(
        aware.dt.tz_convert(zone).dt.tz_localize(None).to_numpy(), aware.dt.tz_localize(None).to_numpy()
    )


def test_one_offset_is_a_fixed_zone_and_offsets_no_zone_fits_are_refused():
    times = [pd.Timestamp("2024-06-19 09:15", tz="Asia/Kolkata") + pd.Timedelta(minutes=5 * i) for i in range(20)]
    assert local_zone(times) == timezone(timedelta(hours=5, minutes=30))
    assert local_zone([t.tz_localize(None) for t in times]) is None  # naive: nothing to read
    jumbled = pd.DatetimeIndex([f"2024-01-0{d} 10:00" for d in range(1, 7)], tz="UTC")
    assert infer_zone(jumbled, np.array([3600.0 * h for h in (1, 7, 1, 7, 1, 7)])) is None
    strings = pd.Series([f"2024-01-0{d} 10:00:00+0{h}:00" for d, h in zip(range(1, 7), (1, 7, 1, 7, 1, 7))])
    frame = pd.DataFrame({"timestamps": strings, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0})
    with pytest.raises(InputError, match="mix UTC offsets .* that no time zone fits"):
        read_bars(frame)


def test_one_offset_or_none_reads_without_a_notice(tmp_path):
    bars = load_sample("eurusd").tail(50)
    bars.assign(timestamps=bars["timestamps"].dt.tz_localize("UTC")).to_csv(tmp_path / "utc.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OffsetZoneNotice)
        assert str(read_bars(tmp_path / "utc.csv")["timestamps"].dt.tz) == "UTC"


@settings(max_examples=25, deadline=None)
@given(
    zone=st.sampled_from(
        [
            "America/New_York",
            "Europe/London",
            "Australia/Sydney",
            "Australia/Lord_Howe",
            "America/Santiago",
            "Asia/Tehran",
            "Europe/Moscow",
            "Pacific/Chatham",
            "America/Havana",
            "Africa/Casablanca",
        ]
    ),
    start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)),
    step_hours=st.sampled_from([1, 6, 24]),
)
def test_times_written_with_their_offsets_read_back_as_the_same_local_times_and_instants(zone, start, step_hours):
    """Whatever the zone's rules (half-hour daylight saving, southern seasons, rules that changed over the years), times
    saved with their offsets read back at the same instants and the same local times, in some zone that fits."""
    aware = pd.date_range(pd.Timestamp(start).floor("h"), periods=400, freq=f"{step_hours}h", tz="UTC").tz_convert(zone)
    strings = pd.Series(aware.strftime("%Y-%m-%d %H:%M:%S%z").str.replace(r"(\d\d)(\d\d)$", r"\1:\2", regex=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OffsetZoneNotice)
        back = to_datetime_index(strings)
    assert (back == aware).all()  # the same instants
    np.testing.assert_array_equal(back.tz_localize(None), aware.tz_localize(None))  # the same local times


def test_offsets_written_every_usual_way_read_the_same():
    """ISO with a colon, without one (+0100), UTC as Z, and datetime objects each with a fixed offset: one zone, the
    same instants; a missing time stays missing, to be named by its row."""
    aware = pd.date_range("2019-10-25", periods=300, freq="h", tz="UTC").tz_convert("Europe/London")
    ways = {
        "colon": pd.Series(aware.map(lambda t: t.isoformat())),
        "no colon": pd.Series(aware.strftime("%Y-%m-%dT%H:%M:%S%z")),
        "Z": pd.Series(aware.map(lambda t: t.isoformat().replace("+00:00", "Z"))),
        "objects": pd.Series([t.to_pydatetime().astimezone(timezone(t.utcoffset())) for t in aware], dtype=object),
    }
    for way, values in ways.items():
        with pytest.warns(OffsetZoneNotice, match="read in Europe/London"):
            back = to_datetime_index(values)
        assert str(back.tz) == "Europe/London" and (back == aware).all(), way
    gap = ways["colon"].copy()
    gap.iloc[5] = None
    with pytest.warns(OffsetZoneNotice):
        back = to_datetime_index(gap)
    assert back.isna().sum() == 1 and pd.isna(back[5]) and (back[6:] == aware[6:]).all()
