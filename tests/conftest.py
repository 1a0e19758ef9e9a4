"""Shared test fixtures: where ``../shared`` lives, the data every test can read, and the predictors.

Data, by fixture (all but ``shared_data`` ship with the repository or an installed dependency, so the
tests that use them run in a bare clone):

- ``googl_bars``: 600 daily GOOGL bars, 2016-04..2018-08, and ``eurusd_bars``: 1,000 hourly EURUSD bars,
  2017-11..2017-12. The package's bundled samples (``kronos.bars.samples``), excerpts of gym-anytrading's
  datasets (MIT licence, https://github.com/AminHP/gym-anytrading).
- ``sp500_bars`` and ``nasdaq_bars``: 5,031 daily bars of the S&P 500 and NASDAQ Composite indices,
  1999-01..2018-12, as shipped by the ``arch`` package (``arch.data.sp500`` / ``arch.data.nasdaq``;
  University of Illinois/NCSA licence, https://github.com/bashtage/arch). ``arch`` comes with the
  ``eval`` extra; without it these fixtures skip.
- ``bars_folder``: a temporary folder built from the four series above (CSV and Parquet files, plus a
  panel with a ``symbol`` column), laid out like ``../shared/data`` (``<market>/<SYMBOL>_<freq>``).
- ``shared_data``: ``../shared/data``, the real multi-instrument corpus (read in place, never copied;
  see its README and MANIFEST for sources and licences). Only tests that need the corpus itself use it.
- ``tiny_reference``: ``tests/fixtures/kronos_tiny``, random-weight checkpoints and the original
  code's outputs on real bars (a copy of ``../shared/reference/kronos_tiny``).

Predictors (session-scoped; tests must not change their attributes):

- ``tiny_predictor``: the ``kronos_tiny`` checkpoints on CPU with ``max_context=64`` (clip 5).
- ``shipped_predictor``: the model shipped in the package (``kronos-open``) on CPU.

Shared by several test modules (module-scoped unless said; a module's own fixture of the same name wins):

- ``panel``: four real series of different lengths and frequencies in one long frame (rows shuffled).
- ``tiny``: the ``kronos_tiny`` checkpoints on CPU with ``max_context=32``, so the window slides.
- ``bundle`` (per test): a writable copy of the ``kronos_tiny`` checkpoint folder, to break on purpose.
- ``model_dir``: a random tiny model saved to a folder, as ``kronos serve --model DIR`` loads it.

Tests live in ``tests/<layer>/`` beside the package layer they specify; each folder is a package, so two
layers may both have a ``test_config.py``. Helpers (not fixtures) shared by modules are in ``tests/helpers.py``.

Tests that need ``../shared`` skip with a reason when the folder is absent, except under CI
(``CI=true``), where its absence is a failure.

Property tests (hypothesis) draw the same examples on every run (profile ``stable``, derandomized), so a run's result
does not depend on luck; ``pytest --hypothesis-profile=explore`` draws fresh random examples each run, to look for new
failures (then make the one found a fixed case).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings

settings.register_profile("stable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile("stable")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KRONOS_SHARED", REPO_ROOT.parent / "shared"))
BAR_COLUMNS = ["timestamps", "open", "high", "low", "close", "volume"]


def _require(path: Path) -> Path:
    if not path.exists():
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{path} is missing; CI needs ../shared beside the repository")
        pytest.skip(f"{path} is absent (it lives in ../shared beside the repository)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: real market bars (read in place, never copied)."""
    return _require(SHARED / "data")


#: A copy of ``../shared/reference/kronos_tiny`` (1.4 MB), so the parity and core tests run in a bare clone;
#: tests/model/test_parity.py checks that it still equals the shared original when that is present.
TINY_FIXTURE = REPO_ROOT / "tests" / "fixtures" / "kronos_tiny"


@pytest.fixture(scope="session")
def shared_root() -> Path:
    """Where ``../shared`` is expected (it may be absent)."""
    return SHARED


@pytest.fixture(scope="session")
def tiny_reference() -> Path:
    """``kronos_tiny``: random-weight checkpoints and the original's outputs (the committed copy)."""
    return _require(TINY_FIXTURE)


# -- bars that travel with the repository --------------------------------------------------------------


@pytest.fixture(scope="session")
def _samples() -> dict[str, pd.DataFrame]:
    from kronos.bars.samples import load_sample

    return {name: load_sample(name) for name in ("googl", "eurusd")}


@pytest.fixture()
def googl_bars(_samples) -> pd.DataFrame:
    """600 daily GOOGL bars (bundled sample, gym-anytrading, MIT); a fresh copy per test."""
    return _samples["googl"].copy()


@pytest.fixture()
def eurusd_bars(_samples) -> pd.DataFrame:
    """1,000 hourly EURUSD bars (bundled sample, gym-anytrading, MIT); a fresh copy per test."""
    return _samples["eurusd"].copy()


def _arch_bars(name: str) -> pd.DataFrame:
    module = pytest.importorskip(f"arch.data.{name}", reason="arch is not installed (pip install 'kronos-kline[eval]')")
    raw = module.load()
    frame = raw.rename(columns=str.lower).rename_axis("timestamps").reset_index()
    frame["volume"] = frame["volume"].astype("float64")
    return frame[BAR_COLUMNS]


@pytest.fixture(scope="session")
def _arch_frames() -> dict[str, pd.DataFrame]:
    return {name: _arch_bars(name) for name in ("sp500", "nasdaq")}


@pytest.fixture()
def sp500_bars(_arch_frames) -> pd.DataFrame:
    """5,031 daily S&P 500 index bars, 1999..2018 (arch package, NCSA licence); a fresh copy per test."""
    return _arch_frames["sp500"].copy()


@pytest.fixture()
def nasdaq_bars(_arch_frames) -> pd.DataFrame:
    """5,031 daily NASDAQ Composite bars, 1999..2018 (arch package, NCSA licence); a fresh copy per test."""
    return _arch_frames["nasdaq"].copy()


@pytest.fixture(scope="session")
def bars_folder(_samples, _arch_frames, tmp_path_factory) -> Path:
    """A folder of real series in ``../shared/data``'s layout, written from the fixtures above:

    ``us_equity/GOOGL_daily.parquet`` and ``.csv``, ``fx/EURUSD_1h.parquet`` and ``.csv``,
    ``index/SP500_daily.parquet``, ``index/NASDAQ_daily.parquet`` and the panel
    ``us_equity/us_daily_panel.parquet`` (``symbol`` first, sorted by symbol then time: GOOGL's 600 days,
    2016-04..2018-08-29, and SP500 and NASDAQ from 1999-01 to the same last day).
    """
    root = tmp_path_factory.mktemp("bars")
    frames = {
        ("us_equity", "GOOGL_daily"): _samples["googl"],
        ("fx", "EURUSD_1h"): _samples["eurusd"],
        ("index", "SP500_daily"): _arch_frames["sp500"],
        ("index", "NASDAQ_daily"): _arch_frames["nasdaq"],
    }
    for (market, stem), frame in frames.items():
        (root / market).mkdir(exist_ok=True)
        frame.to_parquet(root / market / f"{stem}.parquet", index=False)
        if market != "index":
            frame.to_csv(root / market / f"{stem}.csv", index=False)
    googl = _samples["googl"]
    end = googl["timestamps"].iloc[-1]
    members = {
        "GOOGL": googl,
        **{s.upper(): _arch_frames[s][_arch_frames[s]["timestamps"] <= end] for s in ("nasdaq", "sp500")},
    }
    panel = pd.concat([frame.assign(symbol=symbol) for symbol, frame in members.items()], ignore_index=True)
    panel[["symbol", *BAR_COLUMNS]].to_parquet(root / "us_equity" / "us_daily_panel.parquet", index=False)
    return root


# -- predictors ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_predictor(tiny_reference):
    """The ``kronos_tiny`` checkpoints (random weights) on CPU, ``max_context=64``: fast and deterministic."""
    from kronos import KronosPredictor

    return KronosPredictor.from_pretrained(tiny_reference, device="cpu", max_context=64)


@pytest.fixture(scope="session")
def shipped_predictor():
    """The model shipped in the package (``src/kronos/pretrained/kronos-open``) on CPU."""
    from kronos import KronosPredictor

    return KronosPredictor.from_pretrained("kronos-open", device="cpu")


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module of tiny-model tests, restored afterwards.

    Tiny models gain nothing from intra-op threads, and on a busy 2-core machine the threads thrash
    (a module's runtime grew tenfold under load). Opt in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- fixtures shared by several test modules ------------------------------------------------------------


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    """Four real series of different lengths and frequencies (one with holes), rows shuffled across symbols:
    the bundled GOOGL daily and EURUSD hourly samples and arch's S&P 500 and NASDAQ daily indices."""
    nasdaq = pytest.importorskip("arch.data.nasdaq", reason="arch is not installed (pip install 'kronos-kline[eval]')")
    sp500 = pytest.importorskip("arch.data.sp500")
    from kronos.bars.samples import load_sample

    def arch_bars(module) -> pd.DataFrame:
        return module.load().rename(columns=str.lower).rename_axis("timestamps").reset_index()

    series = {
        "GOOGL": load_sample("googl"),
        "SP500": arch_bars(sp500),
        "NDX": arch_bars(nasdaq),
        "EURUSD": load_sample("eurusd"),
    }
    cols = ["timestamps", "open", "high", "low", "close", "volume"]
    parts = [frame[cols].assign(symbol=s).tail(40 + 7 * i) for i, (s, frame) in enumerate(series.items())]
    parts[2] = parts[2].iloc[::2]  # a thinned series: its own length and spacing
    return pd.concat(parts).sample(frac=1.0, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def tiny(tiny_reference):
    """The ``kronos_tiny`` checkpoints on CPU with ``max_context=32`` (small: the window slides); one per module."""
    from kronos import Kronos, KronosPredictor, KronosTokenizer

    tok = KronosTokenizer.from_pretrained(tiny_reference / "tokenizer")
    model = Kronos.from_pretrained(tiny_reference / "model")
    return KronosPredictor(model, tok, device="cpu", max_context=32)  # small: the window slides


@pytest.fixture()
def bundle(tiny_reference, tmp_path):
    """A writable copy of the ``kronos_tiny`` checkpoint folder (``model/``, ``tokenizer/``), to break on purpose."""
    import shutil

    out = tmp_path / "bundle"
    shutil.copytree(tiny_reference / "model", out / "model")
    shutil.copytree(tiny_reference / "tokenizer", out / "tokenizer")
    return out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A random tiny model saved to a folder, loaded as ``kronos serve --model DIR`` would load it."""
    from kronos.forecasting.loading import random_tiny_predictor

    out = tmp_path_factory.mktemp("tiny-model")
    random_tiny_predictor(seed=3).save_pretrained(out)
    return out
