"""The training corpus: many instruments packed into memory-mapped arrays plus an index of windows.

Training draws random windows of ``lookback + horizon`` bars from millions of bars; holding them all
in RAM (once per data-loader worker and per rank) does not scale, so the builder streams each
instrument once into flat binary files that every process maps read-only::

    <corpus>/meta.json             format version, sizes, build options and their fingerprint
    <corpus>/instruments.json      per instrument: symbol, source, first row, bar count, first/last time,
                                   median bar spacing, gap threshold, split boundaries
    <corpus>/features.f32          (n_bars, 6) float32  open, high, low, close, volume, amount
    <corpus>/stamps.u8             (n_bars, 5) uint8    minute, hour, weekday, day, month
    <corpus>/timestamps.i64        (n_bars,)   int64    nanoseconds, naive wall-clock time
    <corpus>/segments.i64          (n_segments, 2)      [first row, end row) of gap-free runs
    <corpus>/windows_<split>.i64   (n_windows,) int64   first row of every valid window of a split

The folder is built under a temporary name and renamed into place, so a failed or interrupted build
never leaves a corpus that looks complete.

Which bars form windows of which split (the gap rule and the time split) is decided in
:mod:`kronos.training.splits`; its options are re-exported here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kronos.bars.preprocessing import calendar_features
from kronos.bars.sources import SeriesData
from kronos.core.files import atomic_write_text, new_temp_dir, recover_dir, replace_dir
from kronos.core.validation import positive_int
from kronos.training.splits import CorpusError, GapRule, SplitSpec, gap_free_segments, window_starts

__all__ = [
    "CORPUS_FORMAT_VERSION",
    "FREQUENCY_GROUPS",
    "SPLITS",
    "Corpus",
    "build_corpus",
    "file_fingerprint",
    "frequency_group",
]

CORPUS_FORMAT_VERSION = 1
SPLITS: tuple[str, ...] = ("train", "val", "test")
N_FEATURES = 6
N_STAMPS = 5
FREQUENCY_GROUPS: tuple[str, ...] = ("daily", "hourly", "intraday")


def frequency_group(spacing: str | pd.Timedelta) -> str:
    """The frequency group of a median bar spacing: ``daily`` (20 h and slower, weekly and monthly bars included),
    ``hourly`` (30 min to 20 h: 1 h, 4 h bars) or ``intraday`` (faster: minute and 5-minute bars).

    Users mostly forecast daily and hourly bars, while minute series hold most of the bars; the groups let
    training weight them (``train.sampling: frequency``) and evaluation report them separately.
    """
    step = pd.Timedelta(spacing)
    if step >= pd.Timedelta(hours=20):
        return "daily"
    if step >= pd.Timedelta(minutes=30):
        return "hourly"
    return "intraday"


def file_fingerprint(paths: Iterable[str | os.PathLike[str]]) -> list[list[Any]]:
    """``[path, size, mtime_ns]`` per file: enough to notice that a source changed since a build."""
    out = []
    for p in paths:
        st = os.stat(p)
        out.append([str(Path(p).resolve()), st.st_size, st.st_mtime_ns])
    return out


@dataclass
class Corpus:
    """A built corpus opened read-only; arrays are memory maps, opened lazily and not pickled.

    Safe to hand to data-loader workers: each process maps the files itself on first access.
    """

    path: Path
    meta: dict[str, Any]
    instruments: list[dict[str, Any]]
    _maps: dict[str, np.memmap] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Corpus:
        """Open the corpus folder at ``path`` (errors say what is missing or incompatible)."""
        found = recover_dir(path)
        if found is None:
            raise CorpusError(f"no corpus at {str(path)!r}; build one with `kronos train corpus CONFIG`")
        root = Path(found)
        try:
            meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
            instruments = json.loads((root / "instruments.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CorpusError(f"{root}: not a readable corpus ({exc})") from None
        if meta.get("format_version") != CORPUS_FORMAT_VERSION:
            raise CorpusError(
                f"{root}: corpus format {meta.get('format_version')!r}, this version reads "
                f"{CORPUS_FORMAT_VERSION}; rebuild it"
            )
        return cls(path=root, meta=meta, instruments=instruments)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_maps"] = {}
        return state

    def _map(self, name: str, dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
        arr = self._maps.get(name)
        if arr is None:
            if shape[0] == 0:
                arr = np.empty(shape, dtype=dtype)
            else:
                arr = np.memmap(self.path / name, dtype=dtype, mode="r", shape=shape)
            self._maps[name] = arr
        return arr

    @property
    def n_bars(self) -> int:
        return int(self.meta["n_bars"])

    @property
    def lookback(self) -> int:
        return int(self.meta["lookback"])

    @property
    def horizon(self) -> int:
        return int(self.meta["horizon"])

    @property
    def window(self) -> int:
        return self.lookback + self.horizon

    @property
    def features(self) -> np.ndarray:
        """``(n_bars, 6)`` float32 raw (un-normalised) features."""
        return self._map("features.f32", np.float32, (self.n_bars, N_FEATURES))

    @property
    def stamps(self) -> np.ndarray:
        """``(n_bars, 5)`` uint8 calendar features."""
        return self._map("stamps.u8", np.uint8, (self.n_bars, N_STAMPS))

    @property
    def timestamps(self) -> np.ndarray:
        """``(n_bars,)`` int64 nanoseconds."""
        return self._map("timestamps.i64", np.int64, (self.n_bars,))

    @property
    def segments(self) -> np.ndarray:
        return self._map("segments.i64", np.int64, (int(self.meta["n_segments"]), 2))

    def windows(self, split: str) -> np.ndarray:
        """First rows of every valid window of ``split`` (``train``, ``val`` or ``test``)."""
        if split not in SPLITS:
            raise CorpusError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
        return self._map(f"windows_{split}.i64", np.int64, (int(self.meta["n_windows"][split]),))

    def window_groups(self, split: str) -> np.ndarray:
        """Per window of ``split``, the index in :data:`FREQUENCY_GROUPS` of its instrument's frequency group."""
        starts = np.asarray([inst["row"] for inst in self.instruments], dtype=np.int64)
        per_instrument = np.asarray(
            [FREQUENCY_GROUPS.index(frequency_group(inst["median_spacing"])) for inst in self.instruments],
            dtype=np.int8,
        )
        owner = np.searchsorted(starts, np.asarray(self.windows(split)), side="right") - 1
        return per_instrument[owner]

    def instrument_of_row(self, row: int) -> dict[str, Any]:
        """The instrument record holding global row ``row``."""
        starts = [inst["row"] for inst in self.instruments]
        i = int(np.searchsorted(starts, row, side="right")) - 1
        return self.instruments[i]


def build_corpus(
    series: Iterable[SeriesData],
    out_dir: str | os.PathLike[str],
    *,
    lookback: int,
    horizon: int,
    split: SplitSpec = SplitSpec(),
    gap: GapRule = GapRule(),
    fingerprint: Any = None,
    progress: bool = False,
) -> Corpus:
    """Stream ``series`` into a new corpus at ``out_dir`` (replacing any previous one atomically).

    ``fingerprint`` (any JSON value) is stored in ``meta.json`` so callers can tell whether an
    existing corpus was built from the same sources and options. Raises :class:`CorpusError` when
    no training window fits, naming the window length and the longest gap-free training stretch.
    """
    for name, v in (("lookback", lookback), ("horizon", horizon)):
        positive_int(name, v, error=CorpusError)
    window = lookback + horizon
    out_dir = Path(out_dir)
    tmp = new_temp_dir(out_dir)
    started = time.time()
    try:
        n_bars = 0
        instruments: list[dict[str, Any]] = []
        all_segments: list[np.ndarray] = []
        counts = dict.fromkeys(SPLITS, 0)
        longest_train = 0
        names = {
            "features": "features.f32",
            "stamps": "stamps.u8",
            "timestamps": "timestamps.i64",
            **{f"windows_{s}": f"windows_{s}.i64" for s in SPLITS},
        }
        with contextlib.ExitStack() as stack:
            files = {key: stack.enter_context(open(tmp / name, "wb")) for key, name in names.items()}
            for i, s in enumerate(series):
                n = len(s)
                if n == 0:
                    continue
                ts = np.ascontiguousarray(s.timestamps, dtype=np.int64)
                feats = np.asarray(s.features, dtype=np.float64)
                if feats.shape != (n, N_FEATURES):
                    raise CorpusError(
                        f"{s.source} (symbol {s.symbol!r}): features must be ({n}, {N_FEATURES}), got {feats.shape}"
                    )
                too_big = np.abs(feats) > np.finfo(np.float32).max
                if too_big.any():
                    row, col = np.argwhere(too_big)[0]
                    raise CorpusError(
                        f"{s.source} (symbol {s.symbol!r}): value {feats[row, col]!r} at row {row} does not fit float32"
                    )
                threshold = gap.threshold_ns(ts)
                segs = gap_free_segments(ts, threshold)
                train_end, val_end = split.boundaries(ts)
                ranges = {"train": (0, train_end), "val": (train_end, val_end), "test": (val_end, n)}
                for name, (lo, hi) in ranges.items():
                    starts = window_starts(segs, lo, hi, window) + n_bars
                    files[f"windows_{name}"].write(starts.tobytes())
                    counts[name] += int(starts.size)
                longest_train = max(longest_train, max((min(b, train_end) - a for a, b in segs), default=0))
                files["features"].write(feats.astype(np.float32).tobytes())
                files["stamps"].write(calendar_features(pd.DatetimeIndex(ts)).astype(np.uint8).tobytes())
                files["timestamps"].write(ts.tobytes())
                all_segments.append(np.asarray(segs, dtype=np.int64).reshape(-1, 2) + n_bars)
                median = int(np.median(np.diff(ts))) if n > 1 else 0
                instruments.append(
                    {
                        "symbol": s.symbol,
                        "source": s.source,
                        "row": n_bars,
                        "n_bars": n,
                        "first": str(pd.Timestamp(ts[0])),
                        "last": str(pd.Timestamp(ts[-1])),
                        "median_spacing": str(pd.Timedelta(median)),
                        "max_gap": None if threshold is None else str(pd.Timedelta(threshold)),
                        "n_segments": len(segs),
                        "train_end": train_end,
                        "val_end": val_end,
                    }
                )
                n_bars += n
                if progress and (i + 1) % 100 == 0:
                    print(f"corpus: {i + 1} instruments, {n_bars:,} bars", flush=True)
        if not instruments:
            raise CorpusError("no bars found in the data sources")
        if counts["train"] == 0:
            raise CorpusError(
                f"no training window fits: lookback + horizon = {window} bars, but the longest gap-free "
                "training stretch "
                f"of any instrument is {longest_train} bars (lower lookback/horizon, add data, or relax data.max_gap)"
            )
        segments = np.concatenate(all_segments)
        (tmp / "segments.i64").write_bytes(segments.tobytes())
        atomic_write_text(tmp / "instruments.json", json.dumps(instruments, indent=1))
        meta = {
            "format_version": CORPUS_FORMAT_VERSION,
            "n_bars": n_bars,
            "n_instruments": len(instruments),
            "n_segments": int(segments.shape[0]),
            "n_windows": counts,
            "lookback": lookback,
            "horizon": horizon,
            "split": asdict(split),
            "gap": asdict(gap),
            "fingerprint": fingerprint,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "build_seconds": round(time.time() - started, 3),
        }
        atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=1))
        replace_dir(tmp, out_dir)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Corpus.open(out_dir)


def fingerprint_digest(value: Any) -> str:
    """A short stable hash of a JSON-serialisable value (used to name and compare corpora)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]
