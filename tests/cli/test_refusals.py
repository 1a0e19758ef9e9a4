"""Tracebacks that became one error line (issue 21): memory limit, huge configs, serve --max-context 1,
backtest on a file that is not Parquet, checkpoints that cannot be written or read."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from kronos.bars.samples import sample_data_path


def _cli(args: list[str], env: dict[str, str] | None = None):
    import kronos.cli.commands  # noqa: F401  (registers the commands)
    from kronos.cli import app

    result = CliRunner().invoke(app, args, env=env)
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_the_cli_refuses_work_over_the_memory_limit_in_one_line(tmp_path):
    data = str(sample_data_path("googl"))
    args = ["forecast", "--data", data, "--random-tiny", "--pred-len", "1", "--samples", "60000"]
    line = _cli([*args, "--out", str(tmp_path / "f.csv")], env={"KRONOS_MEMORY_LIMIT": "64M"})
    assert "over the limit of 64.0 MiB" in line and "KRONOS_MEMORY_LIMIT" in line


def test_a_config_asking_for_huge_sizes_is_one_line_naming_the_file(tmp_path):
    src = sample_data_path("googl").parents[1] / "pretrained" / "kronos-open"
    model = tmp_path / "huge"
    shutil.copytree(src, model)
    cfg_path = model / "model" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["d_model"] = 65536
    cfg_path.write_text(json.dumps(cfg))
    line = _cli(
        ["forecast", "--data", str(sample_data_path("googl")), "--model", str(model), "--out", str(tmp_path / "f.csv")]
    )
    assert str(cfg_path) in line and "d_model=65536" in line and "memory limit" in line


def test_kronos_serve_refuses_a_context_of_one_bar(tmp_path):
    line = _cli(["serve", "--max-context", "1", "--port", "0"])
    assert "max_context must be an integer >= 2, got 1" in line


def test_backtest_of_a_forecasts_file_that_is_not_parquet_is_one_line(tmp_path):
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("a,b\n1,2\n")
    line = _cli(["backtest", "--forecasts", str(garbage), "--out", str(tmp_path / "bt")])
    assert line.startswith("error: --forecasts: ") and str(garbage) in line and "Parquet" in line


def test_a_corrupt_trainer_state_names_the_file_and_never_advises_unsafe_loading(tmp_path):
    from kronos.training.checkpoint import STATE_NAME, CheckpointError, load_trainer_state

    folder = tmp_path / "last"
    folder.mkdir()
    (folder / STATE_NAME).write_bytes(b"PK\x03\x04 not a checkpoint at all")
    with pytest.raises(CheckpointError) as info:
        load_trainer_state(folder)
    msg = str(info.value)
    assert str(folder / STATE_NAME) in msg and "weights_only" not in msg and "\n" not in msg


def test_a_checkpoint_save_onto_a_full_disk_names_the_file(tmp_path, monkeypatch):
    from safetensors import SafetensorError

    from kronos.training import checkpoint

    def full_disk(*args, **kwargs):
        raise SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
        )

    monkeypatch.setattr(checkpoint, "save_file", full_disk)
    with pytest.raises(checkpoint.CheckpointError, match=r"cannot write .*model\.safetensors: .*No space left") as info:
        checkpoint.save_model_dir(tmp_path / "best", {"d_model": 4}, {"w": torch.zeros(2)})
    assert not (tmp_path / "best").exists()  # nothing half-written is left behind
    from kronos.cli.errors import message_of, user_error_types

    assert isinstance(info.value, user_error_types()) and "\n" not in message_of(info.value)
