"""What a training run reports: ``<output_dir>/metrics.csv`` (rewritten atomically), TensorBoard scalars,
and its messages and progress bar on the console (:class:`RunConsole`).

One row per logged training interval and per validation, with a fixed column order so the file is
easy to load (``pd.read_csv``). Each flush rewrites the whole file through a temporary file, so a
reader or a crash never sees a half-written row. On resume, rows after the resumed step are dropped
so the file matches the checkpoint.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kronos.core.extras import require
from kronos.core.files import atomic_write_text

__all__ = ["MetricsLogger", "RunConsole"]

BASE_COLUMNS = ("step", "epoch", "split", "loss")
TAIL_COLUMNS = ("lr", "grad_norm", "bars_per_s", "elapsed_s", "time")


class MetricsLogger:
    """Collects metric rows on rank 0 and writes them to CSV (and TensorBoard when available)."""

    def __init__(
        self, output_dir: Path, metric_names: Sequence[str], *, enabled: bool = True, tensorboard: bool = True
    ) -> None:
        self.path = Path(output_dir) / "metrics.csv"
        self.columns = [*BASE_COLUMNS, *[m for m in metric_names if m not in BASE_COLUMNS], *TAIL_COLUMNS]
        self.enabled = enabled
        self.rows: list[dict[str, Any]] = []
        self.started = time.time()
        self._writer = None
        self.tensorboard_error: str | None = None
        if enabled and tensorboard:
            try:
                require("train", "tensorboard", purpose="TensorBoard logging")
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(log_dir=str(Path(output_dir) / "tensorboard"))
            except Exception as exc:  # tensorboard missing or broken: CSV still works
                self.tensorboard_error = f"{type(exc).__name__}: {exc}"

    def resume(self, step: int) -> None:
        """Load earlier rows of this run, keeping those up to ``step``."""
        if not self.enabled or not self.path.is_file():
            return
        with self.path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                try:
                    if int(row.get("step", -1)) <= step:
                        self.rows.append({k: v for k, v in row.items() if k in self.columns and v != ""})
                except ValueError:
                    continue
        # elapsed_s continues from the last kept row rather than restarting at zero
        elapsed = [float(r["elapsed_s"]) for r in self.rows if "elapsed_s" in r]
        if elapsed:
            self.started = time.time() - max(elapsed)

    def log(self, split: str, step: int, epoch: int, values: dict[str, float], *, flush: bool = True) -> None:
        """Record one row (``values`` holds loss and task metrics, lr, grad_norm, bars_per_s ...)."""
        if not self.enabled:
            return
        row: dict[str, Any] = {
            "step": step,
            "epoch": epoch,
            "split": split,
            "elapsed_s": round(time.time() - self.started, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        for k, v in values.items():
            if k in self.columns and v is not None:
                row[k] = float(v)
        self.rows.append(row)
        if self._writer is not None:
            for k, v in values.items():
                if v is not None and isinstance(v, (int, float)) and math.isfinite(float(v)):
                    self._writer.add_scalar(f"{split}/{k}", float(v), step)
        if flush:
            self.flush()

    def flush(self) -> None:
        """Rewrite ``metrics.csv`` atomically with all rows so far."""
        if not self.enabled:
            return
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: _fmt(v) for k, v in row.items()})
        atomic_write_text(self.path, buf.getvalue())
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


class RunConsole:
    """A run's messages (``[kronos train] ...`` on stderr) and its progress bar, shown by rank 0 only."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None

    def log(self, msg: str) -> None:
        """Print one message (above the progress bar while it is shown)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.console.print(f"[kronos train] {msg}", markup=False, highlight=False, soft_wrap=True)
        else:
            print(f"[kronos train] {msg}", file=sys.stderr, flush=True)

    def start(self, description: str, *, total: int, completed: int) -> None:
        """Show a progress bar of ``total`` steps, ``completed`` of them done (a resumed run)."""
        if not self.enabled:
            return
        from kronos.core.progress import progress_bar

        self._bar = progress_bar(info=True, stderr=True)
        self._bar.start()
        self._task = self._bar.add_task(description, total=total, completed=completed, info="")

    def update(self, **fields: Any) -> None:
        """Advance the bar or change its ``info`` text (no-op without a bar)."""
        if self._bar is not None:
            self._bar.update(self._task, **fields)

    def stop(self) -> None:
        """Take the bar down; later messages go straight to stderr."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
