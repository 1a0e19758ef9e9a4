"""The same file in every command: each command reads bars through the one reader, so a file that works in one
works in all, and a bad file fails with the same message in all."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from kronos.bars.calendars import future_timestamps
from kronos.bars.preprocessing import InputError
from kronos.bars.reader import read_bars
from kronos.bars.samples import sample_data_path

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def googl() -> pd.DataFrame:
    """The bundled GOOGL sample as it is on disk: timestamps, open, high, low, close, volume."""
    return pd.read_csv(sample_data_path("googl"), parse_dates=["timestamps"])


def _variants(googl: pd.DataFrame, root: Path) -> dict[str, Path]:
    bars = googl.iloc[-300:].reset_index(drop=True)
    upper = bars.rename(columns={"timestamps": "Date", "volume": "Vol"})
    upper.columns = [c if c in ("Date", "Vol") else c.capitalize() for c in upper.columns]
    out = {"date-upper-vol.csv": upper, "time-index.parquet": bars.set_index("timestamps")}
    out["epoch-ms.csv"] = bars.assign(timestamps=bars["timestamps"].astype("int64") // 10**6)
    out["no-close.csv"] = bars.drop(columns="close")
    out["non-positive.csv"] = bars.assign(close=bars["close"].where(bars.index != 123, 0.0))
    paths = {}
    for name, frame in out.items():
        path = root / name
        frame.to_parquet(path) if name.endswith(".parquet") else frame.to_csv(path, index=False)
        paths[name] = path
    return paths


@pytest.fixture(scope="module")
def variants(googl, tmp_path_factory) -> dict[str, Path]:
    return _variants(googl, tmp_path_factory.mktemp("variants"))


def _commands(path: Path, out: Path) -> dict[str, list[str]]:
    common = ["--lookback", "64", "--horizon", "2", "--samples", "1", "--jobs", "1", "--no-progress", "-f"]
    return {
        "forecast": ["forecast", "--data", str(path), "--random-tiny", "--lookback", "64", "--pred-len", "2"]
        + ["--samples", "1", "--out", str(out / "forecast.csv")],
        "evaluate": ["evaluate", "--data", str(path), "--out", str(out / "eval"), "--origins", "2", *common]
        + ["persistence"],
        "backtest": [
            "backtest",
            "--data",
            str(path),
            "--out",
            str(out / "bt"),
            "--origins",
            "5",
            "--strategy",
            "single",
            *common,
        ]
        + ["persistence"],
        "train": ["train", "tokenizer", str(REPO / "configs" / "tiny-pair.yaml"), "-o", str(out / "tok")]
        + [
            arg
            for setting in (
                f"data.paths={json.dumps([str(path)])}",
                f"data.corpus_dir={out / 'corpus'}",
                "data.val_fraction=0.3",
                "train.max_steps=2",
                "train.steps_per_epoch=2",
                "train.batch_size=4",
                "train.val_samples=8",
                "train.progress=false",
                "train.tensorboard=false",
            )
            for arg in ("--set", setting)
        ],
    }


def _run(args: list[str]):
    from kronos.cli import (
        app,
        commands,  # noqa: F401  (registers the commands)
    )

    return CliRunner().invoke(app, args)


COMMANDS = ["forecast", "evaluate", "backtest", "train"]


@pytest.mark.parametrize("variant", ["date-upper-vol.csv", "time-index.parquet", "epoch-ms.csv"])
@pytest.mark.parametrize("command", COMMANDS)
def test_the_same_file_works_in_every_command(googl, variants, tmp_path, variant, command):
    result = _run(_commands(variants[variant], tmp_path)[command])
    assert result.exit_code == 0, result.output
    if command == "forecast":
        fc = pd.read_csv(tmp_path / "forecast.csv", parse_dates=["timestamps"])
        # whatever the file's time column, the forecast continues the same bar times
        assert list(fc["timestamps"]) == list(future_timestamps(googl["timestamps"].iloc[-300:], 2))
        assert set(fc["symbol"]) == {variants[variant].name.split(".")[0]}
    elif command == "train":
        assert (tmp_path / "tok" / "best").is_dir() or (tmp_path / "tok" / "last").is_dir()
    else:
        assert any((tmp_path / ("eval" if command == "evaluate" else "bt")).iterdir())


@pytest.mark.parametrize("variant", ["no-close.csv", "non-positive.csv"])
def test_a_bad_file_fails_with_the_same_message_in_every_command(variants, tmp_path, variant):
    with pytest.raises(InputError) as err:
        read_bars(variants[variant])
    message = str(err.value)
    assert variant in message and ("['close']" in message if variant == "no-close.csv" else "row 123" in message)
    squeezed = "".join(message.split())  # rich wraps long lines in the evaluate/backtest output
    for command, args in _commands(variants[variant], tmp_path).items():
        result = _run(args)
        assert result.exit_code == 2, (command, result.output)
        assert squeezed in "".join(result.output.split()), (command, message, result.output)
