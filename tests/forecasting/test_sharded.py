"""Sharded panel forecasts: two ``torchrun`` ranks write the same file as one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kronos.cli import app, commands  # noqa: F401  (registers the commands on app)
from tests.helpers import cli_ok as _cli

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


REPO = Path(__file__).resolve().parents[2]


def test_torchrun_two_ranks_equal_one_process(panel, tiny_reference, tmp_path):
    panel.to_parquet(tmp_path / "panel.parquet", index=False)
    args = [
        "forecast",
        "--data",
        str(tmp_path / "panel.parquet"),
        "--model",
        str(tiny_reference),
        "--max-context",
        "32",
        "--pred-len",
        "4",
        "--samples",
        "4",
        "--calendar",
        "XNYS",
    ]
    _cli([*args, "--out", str(tmp_path / "one.parquet")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO / "src")}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "kronos",
        *args,
        "--out",
        str(tmp_path / "two.parquet"),
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "one.parquet"), pd.read_parquet(tmp_path / "two.parquet"))
    assert not list(tmp_path.glob(".two.parquet.parts*"))  # the parts are cleaned up
