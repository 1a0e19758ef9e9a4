"""``kronos forecast`` and ``kronos demo``: forecast a CSV/Parquet series from the command line."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Optional

import pandas as pd
import torch
import typer
from rich.console import Console
from rich.table import Table

from kronos.cli import app
from kronos.config import ConfigError
from kronos.device import DeviceError
from kronos.fileio import check_writable
from kronos.forecast import Forecast
from kronos.model import Kronos
from kronos.predictor import KronosPredictor
from kronos.preprocessing import InputError, to_datetime_index
from kronos.tokenizer import KronosTokenizer

console = Console()

SAMPLE_FILES = {"googl": "GOOGL_daily.csv", "eurusd": "EURUSD_1h.csv"}


def sample_data_path(name: str = "googl") -> Path:
    """Path of a bundled sample series (``googl`` daily or ``eurusd`` hourly)."""
    try:
        return Path(str(resources.files("kronos") / "sample_data" / SAMPLE_FILES[name.lower()]))
    except KeyError:
        raise InputError(f"unknown sample {name!r}; choose from {sorted(SAMPLE_FILES)}") from None


def read_bars(path: Path, time_column: str = "timestamps") -> pd.DataFrame:
    """Read a CSV or Parquet file of bars with a time column, sorted as given."""
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a CSV or Parquet file")
    try:
        df = pd.read_parquet(path) if path.suffix.lower() in {".parquet", ".pq"} else pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        kind = "Parquet" if path.suffix.lower() in {".parquet", ".pq"} else "CSV"
        raise InputError(f"{path}: cannot be read as {kind} ({type(exc).__name__}: {exc})") from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    time_column = time_column.lower()
    if time_column not in df.columns:
        raise InputError(f"{path}: no time column {time_column!r}; columns are {list(df.columns)}")
    # integer epochs (Binance milliseconds, Unix seconds) get their unit from the magnitude
    df[time_column] = to_datetime_index(df[time_column], name=f"column {time_column!r}", label=str(path))
    return df.reset_index(drop=True)


def future_timestamps(past: pd.Series, pred_len: int) -> pd.DatetimeIndex:
    """Future bar times continuing the series' own spacing (business days for daily bars)."""
    idx = pd.DatetimeIndex(past)
    freq = pd.infer_freq(idx[-min(len(idx), 50) :]) if len(idx) >= 3 else None
    if freq is None:
        step = pd.Series(idx).diff().dropna().median()
        if pd.isna(step) or step <= pd.Timedelta(0):
            raise InputError("cannot infer the bar spacing from the timestamps; give at least two distinct times")
        if step >= pd.Timedelta(days=1):
            return pd.bdate_range(idx[-1] + pd.offsets.BDay(1), periods=pred_len)
        return pd.DatetimeIndex([idx[-1] + step * (i + 1) for i in range(pred_len)])
    return pd.date_range(idx[-1], periods=pred_len + 1, freq=freq)[1:]


def random_tiny_predictor(seed: int = 0) -> KronosPredictor:
    """A randomly initialised tiny predictor: shows the pipeline, forecasts nothing real."""
    torch.manual_seed(seed)
    tokenizer = KronosTokenizer(d_model=32, n_heads=2, ff_dim=64, n_enc_layers=2, n_dec_layers=2, s1_bits=4, s2_bits=4)
    model = Kronos(s1_bits=4, s2_bits=4, n_layers=2, d_model=32, n_heads=2, ff_dim=64)
    return KronosPredictor(model, tokenizer, device="cpu", max_context=256)


def show_forecast(fc: Forecast, title: str, rows: int = 10) -> None:
    """Print the mean path with an 80% interval of the close."""
    mean = fc.mean()
    lo, hi = fc.interval(0.8)
    table = Table(title=title)
    daily = bool((mean.index == mean.index.normalize()).all())
    table.add_column("time", no_wrap=True, min_width=10 if daily else 16)
    for col in ("open", "high", "low", "close", "close 10%", "close 90%", "P(up)"):
        table.add_column(col, justify="right")
    prob = fc.prob_up()
    fmt = "{:.5g}".format
    for i, t in enumerate(mean.index[:rows]):
        r = mean.iloc[i]
        table.add_row(
            t.strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:%M"), fmt(r.open), fmt(r.high), fmt(r.low), fmt(r.close),
            fmt(lo.close.iloc[i]), fmt(hi.close.iloc[i]), f"{prob.iloc[i]:.2f}",
        )  # fmt: skip
    console.print(table)


@app.command("forecast")
def forecast_command(
    data: Path = typer.Option(..., "--data", help="CSV or Parquet file of bars (timestamps, open, high, low, close[, volume, amount])."),
    model: str = typer.Option(..., "--model", help="Checkpoint directory (with model/ and tokenizer/), hub id, or published name."),
    tokenizer: Optional[str] = typer.Option(None, help="Tokenizer directory or hub id, when --model is a bare model."),
    lookback: int = typer.Option(400, min=1, help="History bars to use (the last ones)."),
    pred_len: int = typer.Option(24, "--pred-len", min=1, help="Bars to forecast."),
    samples: int = typer.Option(20, min=1, help="Sample paths."),
    temperature: float = typer.Option(1.0, "--T", help="Sampling temperature."),
    top_p: float = typer.Option(0.9, help="Nucleus sampling threshold."),
    max_context: Optional[int] = typer.Option(
        None, min=1, help="Model context in bars (default: the checkpoint's predictor.json, the published context, else 512)."
    ),
    time_column: str = typer.Option("timestamps", help="Name of the time column."),
    out: Optional[Path] = typer.Option(None, help="Write the mean forecast and quantiles to this CSV."),
    seed: int = typer.Option(0, help="Random seed."),
    device: Optional[str] = typer.Option(None, help="cuda, mps or cpu (default: best available)."),
) -> None:
    """Forecast the next bars of one series with a Kronos checkpoint."""
    try:
        if out is not None:
            check_writable(out)  # before minutes of sampling, not after
        df = read_bars(data, time_column)
        hist = df.tail(lookback)
        predictor = KronosPredictor.from_pretrained(model, tokenizer=tokenizer, max_context=max_context, device=device)
        torch.manual_seed(seed)
        fc = predictor.forecast(
            hist, hist[time_column.lower()], future_timestamps(hist[time_column.lower()], pred_len), pred_len,
            T=temperature, top_p=top_p, sample_count=samples, verbose=True,
        )  # fmt: skip
    except (InputError, ConfigError, DeviceError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    show_forecast(fc, f"{data.name}: {pred_len} bars ahead, {samples} paths")
    if out is not None:
        _write_forecast_csv(fc, out)
        console.print(f"wrote {out}")


@app.command("demo")
def demo_command(
    sample: str = typer.Option("googl", help="Bundled sample series: googl (daily) or eurusd (hourly)."),
    lookback: int = typer.Option(256, min=1),
    pred_len: int = typer.Option(20, "--pred-len", min=1),
    samples: int = typer.Option(20, min=1),
    model: Optional[str] = typer.Option(None, help="Checkpoint to use instead of the random tiny model."),
) -> None:
    """Forecast the bundled sample data: proves the install works, offline."""
    df = read_bars(sample_data_path(sample))
    hist = df.tail(lookback)
    if model is None:
        console.print(
            "[yellow]NOTE: no trained default model ships yet, so this demo uses a RANDOMLY INITIALISED tiny model. "
            "The numbers show the pipeline working end to end, not a meaningful forecast. "
            "Pass --model NeoQuasar/Kronos-small (network) or a local checkpoint for real forecasts.[/yellow]"
        )
        predictor = random_tiny_predictor()
    else:
        predictor = KronosPredictor.from_pretrained(model)
    torch.manual_seed(0)
    fc = predictor.forecast(
        hist, hist["timestamps"], future_timestamps(hist["timestamps"], pred_len), pred_len, sample_count=samples, verbose=True
    )
    show_forecast(fc, f"{SAMPLE_FILES[sample.lower()]}: last close {fc.last_close:.4f}, {pred_len} bars ahead", rows=pred_len)


def _write_forecast_csv(fc: Forecast, out: Path) -> None:
    from kronos.fileio import atomic_write_text

    frame = fc.mean().add_prefix("mean_")
    for q in (0.1, 0.5, 0.9):
        frame[f"close_q{int(q * 100)}"] = fc.quantile(q)["close"]  # type: ignore[index]
    frame["prob_up"] = fc.prob_up()
    atomic_write_text(out, frame.to_csv(index_label="timestamp"))
