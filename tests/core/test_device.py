"""Device choice: a CUDA device on a build without it is named, in the library and on the command line."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from kronos.cli import (
    app,
    commands,  # noqa: F401  (registers the commands)
)
from kronos.core.device import DeviceError, resolve_device

runner = CliRunner()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_on_a_build_without_it_is_named(bundle, tmp_path, shared_data):
    with pytest.raises(DeviceError, match="CUDA"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="not a valid PyTorch device name"):
        resolve_device("gpu0")
    bars = pd.read_parquet(shared_data / "fx" / "EURUSD_1h.parquet").iloc[:80]
    bars.to_csv(tmp_path / "bars.csv", index=False)
    result = runner.invoke(
        app, ["forecast", "--data", str(tmp_path / "bars.csv"), "--model", str(bundle), "--device", "cuda"]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    expected = "CUDA is not available in this PyTorch build" if torch.version.cuda is None else "no CUDA GPU is visible"
    assert expected in result.output
