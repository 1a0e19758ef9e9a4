"""The YAML run configuration: example recipes load, and every mistake is named by its key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from kronos.training.config import load_config, parse_config
from kronos.training.schema import TrainConfigError

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))

BASE = {
    "output_dir": "runs/x",
    "data": {"paths": ["data.csv"], "lookback": 32, "horizon": 8},
    "model": {
        "config": {
            "d_model": 32,
            "n_heads": 2,
            "ff_dim": 64,
            "n_enc_layers": 2,
            "n_dec_layers": 2,
            "s1_bits": 4,
            "s2_bits": 4,
        }
    },
    "train": {"batch_size": 8, "lr": 1e-3, "max_steps": 10},
}


def _with(path: str, value):
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    node = doc
    *parents, last = path.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


_DELETE = object()


def test_example_configs_exist_and_validate_for_each_run_they_describe():
    names = {p.name for p in CONFIGS}
    assert {"finetune-small-csv.yaml", "pretrain-mini-folder.yaml", "tiny-pair.yaml"} <= names
    for path in CONFIGS:
        doc = yaml.safe_load(path.read_text())
        kinds = [k for k in ("tokenizer", "predictor") if k in doc] or ["predictor"]
        for kind in kinds:
            cfg = load_config(path, kind=kind)
            assert cfg.output_dir and cfg.data.lookback > 0 and (cfg.train.epochs or cfg.train.max_steps)


def test_kind_sections_merge_over_the_shared_keys():
    path = REPO / "configs" / "pretrain-mini-folder.yaml"
    tok, pred = load_config(path, kind="tokenizer"), load_config(path, kind="predictor")
    assert tok.data == pred.data and tok.data.lookback == 480
    assert tok.model.config["d_model"] == 256 and pred.model.config["n_layers"] == 4
    assert pred.model.tokenizer == "runs/pretrain-mini/tokenizer/best"
    assert tok.output_dir != pred.output_dir
    with pytest.raises(TrainConfigError, match="say which run"):
        load_config(path)


def test_defaults_follow_the_original_recipe():
    cfg = parse_config(BASE, kind="tokenizer")
    t = cfg.train
    assert (t.betas, t.weight_decay, t.pct_start, t.div_factor) == ([0.9, 0.95], 0.1, 0.03, 10.0)
    assert cfg.data.max_gap == "auto" and cfg.data.clip == 5.0 and t.resume == "auto"


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("train.lrr", 0.1, r"train\.lrr: unknown key; did you mean 'lr'\?"),
        ("data.lookbak", 3, r"data\.lookbak: unknown key; did you mean 'lookback'\?"),
        ("extra", 1, r"extra: unknown key"),
        ("train.lr", "fast", r"train\.lr: expected a number, got 'fast'"),
        ("train.lr", -1.0, r"train\.lr: must be positive"),
        ("train.batch_size", 0, r"train\.batch_size: must be positive, got 0"),
        ("train.batch_size", 2.5, r"train\.batch_size: expected an integer, got 2\.5"),
        (
            "train.mixed_precision",
            "fp8",
            r"train\.mixed_precision: must be one of \['auto', 'no', 'bf16', 'fp16'\], got 'fp8'",
        ),
        ("train.betas", [0.9], r"train\.betas: must be two numbers"),
        ("train.max_steps", _DELETE, r"train: give train\.epochs or train\.max_steps"),
        ("data.max_gap", "soon", r"data\.max_gap: max_gap must be 'auto', null or a duration"),
        ("data.val_fraction", 1.5, r"data\.val_fraction: must be in \[0, 1\)"),
        ("data.paths", "data.csv", r"data\.paths: expected a list of a string"),
        ("data.paths", [], r"data: give data\.paths .* or a data\.qlib section"),
        ("data.val_start", "not-a-date", r"val_start must be a date"),
        ("model.init", "some/ckpt", r"model: give exactly one of model\.init .* and model\.config"),
        ("model.config.d_model", 33, r"model\.config: .*d_model \(33\) must be divisible by n_heads \(2\)"),
        ("model.config.colour", "red", r"model\.config: unknown key\(s\) \['colour'\]"),
        ("model.tokenizer", "tok/", r"model\.tokenizer: only predictor training uses a tokenizer"),
        ("output_dir", _DELETE, r"output_dir: required key is missing"),
        ("train.distributed", "horovod", r"train\.distributed: must be one of \['ddp', 'fsdp'\]"),
        ("train.sampling", "balanced", r"train\.sampling: must be one of \['uniform', 'frequency'\]"),
        ("train.schedule", "cosine", r"train\.schedule: must be one of \['onecycle', 'wsd'\]"),
        ("train.decay_fraction", 0.99, r"train\.decay_fraction: must be in \(0, 1 - pct_start\]"),
        ("train.group_weights", {"daily": 1.0}, r"train\.group_weights: only used with sampling: frequency"),
        ("train.targets", "horizon", r"train\.targets: must be one of \['all', 'forecast'\]"),
        ("train.targets", "forecast", r"train\.targets: only predictor training chooses its targets"),
        ("train.min_lookback", 16, r"train\.min_lookback: only used with targets: forecast"),
    ],
)
def test_bad_values_are_errors_naming_the_key(path, value, message):
    with pytest.raises(TrainConfigError, match=message):
        parse_config(_with(path, value), kind="tokenizer", source="run.yaml")


def test_group_weights_name_known_groups_with_a_positive_weight():
    doc = _with("train.sampling", "frequency")
    doc["train"]["group_weights"] = {"daily": 1.0, "weekly": 2.0}
    with pytest.raises(TrainConfigError, match=r"train\.group_weights: unknown group 'weekly'; the groups are"):
        parse_config(doc, kind="tokenizer")
    doc["train"]["group_weights"] = {"daily": 0.0, "hourly": 0}
    with pytest.raises(TrainConfigError, match="at least one group needs a positive weight"):
        parse_config(doc, kind="tokenizer")
    doc["train"]["group_weights"] = {"daily": 2, "intraday": 1}
    assert parse_config(doc, kind="tokenizer").train.group_shares() == [2.0, 0.0, 1.0]
    assert parse_config(_with("train.sampling", "frequency"), kind="tokenizer").train.group_shares() == [1.0] * 3
    assert parse_config(BASE, kind="tokenizer").train.group_shares() is None


def test_forecast_targets_draw_the_normalised_part_within_the_lookback():
    doc = _with("train.targets", "forecast")
    doc["train"]["min_lookback"] = 33
    with pytest.raises(TrainConfigError, match=r"train\.min_lookback: must be at most data\.lookback \(32\), got 33"):
        parse_config(doc, kind="predictor", source="run.yaml")
    doc["train"]["min_lookback"] = 8
    doc["model"] = {"init": "kronos-open"}
    cfg = parse_config(doc, kind="predictor", source="run.yaml")
    assert (cfg.train.targets, cfg.train.min_lookback) == ("forecast", 8)
    assert parse_config(BASE, kind="tokenizer").train.targets == "all"  # the original objective by default


def test_predictor_specific_checks():
    fresh = _with(
        "model.config", {"s1_bits": 4, "s2_bits": 4, "n_layers": 1, "d_model": 32, "n_heads": 2, "ff_dim": 64}
    )
    with pytest.raises(TrainConfigError, match="model.tokenizer: predictor training needs the tokenizer"):
        parse_config(fresh, kind="predictor")
    ckpt = _with("model", {"init": "/some/checkpoint"})
    with pytest.raises(TrainConfigError, match="not a published model, so name its tokenizer"):
        parse_config(ckpt, kind="predictor")
    published = parse_config(_with("model", {"init": "NeoQuasar/Kronos-small"}), kind="predictor")
    assert published.model.tokenizer is None  # defaults to the published pairing


def test_overrides_and_file_errors(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(BASE))
    cfg = load_config(
        path,
        kind="tokenizer",
        overrides=["train.max_steps=25", "data.paths=[a.csv, b.parquet]", "train.grad_clip=null"],
    )
    assert cfg.train.max_steps == 25 and cfg.data.paths == ["a.csv", "b.parquet"] and cfg.train.grad_clip is None
    with pytest.raises(TrainConfigError, match="expected KEY=VALUE"):
        load_config(path, overrides=["train.max_steps"])
    (tmp_path / "broken.yaml").write_text("train: [unclosed\n")
    with pytest.raises(TrainConfigError, match=r"broken\.yaml: not valid YAML"):
        load_config(tmp_path / "broken.yaml")
    with pytest.raises(TrainConfigError, match="cannot read the config"):
        load_config(tmp_path / "absent.yaml")


def test_cli_reports_config_errors_without_a_traceback(tmp_path):
    from kronos.cli import (
        app,
        commands,  # noqa: F401  (registers the command groups)
    )

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(_with("train.lrr", 1)))
    runner = CliRunner()
    result = runner.invoke(app, ["train", "tokenizer", str(path)])
    assert result.exit_code == 2
    assert "error:" in result.output and "train.lrr: unknown key; did you mean 'lr'?" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump(BASE))
    checked = runner.invoke(app, ["train", "check", str(ok), "--kind", "tokenizer", "--set", "train.lr=0.5"])
    assert checked.exit_code == 0, checked.output
    assert yaml.safe_load(checked.stdout)["train"]["lr"] == 0.5
