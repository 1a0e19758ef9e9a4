"""The model shipped inside the package (``kronos-open``): loads offline, in the published layout, forecasts,
matches its recipe, installs with the package, and fine-tunes offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from safetensors.numpy import load_file
from typer.testing import CliRunner

from kronos import Kronos, KronosPredictor, KronosTokenizer
from kronos.bars.samples import load_sample
from kronos.model.registry import DEFAULT_MODEL, resolve_model, shipped_dir

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "configs" / "kronos-open.yaml"
FINETUNE = REPO / "configs" / "finetune-open-csv.yaml"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def shipped(shipped_predictor) -> KronosPredictor:
    return shipped_predictor


def _published_model_keys(n_layers: int) -> set[str]:
    """State-dict keys of a Kronos predictor in the published checkpoints' layout (SPEC.md)."""
    attn = [f"{p}_proj.{w}" for p in "qkv" for w in ("weight", "bias")] + [
        "out_proj.weight",
        "out_proj.bias",
        "rotary.inv_freq",
    ]
    keys = {f"embedding.{k}" for k in ("emb_s1.weight", "emb_s2.weight", "fusion_proj.weight", "fusion_proj.bias")}
    keys |= {f"time_emb.{k}_embed.weight" for k in ("minute", "hour", "weekday", "day", "month")}
    for i in range(n_layers):
        keys |= {f"transformer.{i}.self_attn.{a}" for a in attn}
        keys |= {f"transformer.{i}.ffn.w{j}.weight" for j in (1, 2, 3)} | {
            f"transformer.{i}.norm{j}.weight" for j in (1, 2)
        }
    keys |= {"norm.weight", "dep_layer.norm.weight"} | {f"dep_layer.cross_attn.{a}" for a in attn}
    keys |= {f"head.proj_s{j}.{w}" for j in (1, 2) for w in ("weight", "bias")}
    return keys


def test_default_model_is_the_shipped_one_and_has_every_file():
    root = shipped_dir(DEFAULT_MODEL)
    assert DEFAULT_MODEL == "kronos-open" and root is not None
    for rel in (
        "model/config.json",
        "model/model.safetensors",
        "tokenizer/config.json",
        "tokenizer/model.safetensors",
        "predictor.json",
        "MODEL_CARD.md",
        "loss_curves.png",
    ):
        assert (root / rel).is_file(), rel
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert size <= 25 * 2**20, f"shipped model is {size / 2**20:.1f} MB (limit 25 MB)"
    entry = resolve_model("kronos-open")
    assert entry is not None and entry.max_context == json.loads((root / "predictor.json").read_text())["max_context"]


def test_config_equals_the_recipe():
    recipe = yaml.safe_load(RECIPE.read_text())
    root = shipped_dir("kronos-open")
    model_cfg = json.loads((root / "model" / "config.json").read_text())
    tok_cfg = json.loads((root / "tokenizer" / "config.json").read_text())
    for key, value in recipe["predictor"]["model"]["config"].items():
        assert model_cfg[key] == value, key
    for key, value in recipe["tokenizer"]["model"]["config"].items():
        assert tok_cfg[key] == value, key
    assert (
        json.loads((root / "predictor.json").read_text())["max_context"] == recipe["predictor"]["model"]["max_context"]
    )


def _published_tokenizer_keys(n_enc_layers: int, n_dec_layers: int) -> set[str]:
    """State-dict keys of a Kronos tokenizer in the published layout (the original builds n - 1 blocks per side)."""
    attn = [f"{p}_proj.{w}" for p in "qkv" for w in ("weight", "bias")] + [
        "out_proj.weight",
        "out_proj.bias",
        "rotary.inv_freq",
    ]
    keys: set[str] = set()
    for side, n in (("encoder", n_enc_layers), ("decoder", n_dec_layers)):
        for i in range(n - 1):
            keys |= {f"{side}.{i}.self_attn.{a}" for a in attn}
            keys |= {f"{side}.{i}.ffn.w{j}.weight" for j in (1, 2, 3)} | {f"{side}.{i}.norm{j}.weight" for j in (1, 2)}
    for lin in ("embed", "head", "quant_embed", "post_quant_embed", "post_quant_embed_pre"):
        keys |= {f"{lin}.weight", f"{lin}.bias"}
    return keys | {"tokenizer.bsq.basis", "tokenizer.bsq.group_basis"}


def test_weights_are_in_the_published_layout_and_finite():
    root = shipped_dir("kronos-open")
    cfg = json.loads((root / "model" / "config.json").read_text())
    weights = load_file(str(root / "model" / "model.safetensors"))
    assert set(weights) == _published_model_keys(cfg["n_layers"])
    assert all(np.isfinite(w).all() for w in weights.values())
    tok_cfg = json.loads((root / "tokenizer" / "config.json").read_text())
    tok_weights = load_file(str(root / "tokenizer" / "model.safetensors"))
    assert set(tok_weights) == _published_tokenizer_keys(tok_cfg["n_enc_layers"], tok_cfg["n_dec_layers"])
    assert all(np.isfinite(w).all() for w in tok_weights.values())
    # the classes load both halves strictly (every key present, none left over)
    Kronos.from_pretrained(root / "model")
    KronosTokenizer.from_pretrained(root / "tokenizer")


@pytest.mark.parametrize("sample,pred_len", [("googl", 10), ("eurusd", 24)])
def test_forecasts_on_the_bundled_samples_are_finite_and_move(shipped, sample, pred_len):
    df = load_sample(sample).tail(shipped.max_context).reset_index(drop=True)
    step = df["timestamps"].diff().median()
    future = pd.Series([df["timestamps"].iloc[-1] + step * (i + 1) for i in range(pred_len)])
    import torch

    gen = torch.Generator().manual_seed(0)
    fc = shipped.forecast(df, df["timestamps"], future, pred_len, sample_count=30, generator=gen)
    mean = fc.mean()
    assert np.isfinite(mean.to_numpy()).all()
    assert mean["close"].std() > 0 and fc.paths.std(axis=0).min() > 0  # not constant in time nor across paths
    last = float(df["close"].iloc[-1])
    assert (mean["close"] / last).between(0.7, 1.3).all()  # a trained model stays near the last price


@pytest.mark.slow
def test_loads_from_an_installed_wheel_offline(tmp_path):
    """Build the wheel, unpack it elsewhere and load the model from there, with the hub switched off."""
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheel_dir),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheel_dir.glob("*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "kronos/pretrained/kronos-open/model/model.safetensors" in names
        zf.extractall(site)
    code = (
        "import kronos, pathlib; from kronos import KronosPredictor; "
        "p = KronosPredictor.from_pretrained('kronos-open'); "
        "print(pathlib.Path(kronos.__file__).parent, p.max_context)"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True, cwd=tmp_path
    )
    where, ctx = out.stdout.split()
    assert Path(where) == site / "kronos" and int(ctx) > 0


def test_demo_uses_the_shipped_model():
    from kronos.cli import (
        app,
        commands,  # noqa: F401  (registers the commands)
    )

    result = CliRunner().invoke(app, ["demo", "--pred-len", "5", "--samples", "5"])
    assert result.exit_code == 0, result.output
    assert "kronos-open" in result.output and "RANDOMLY" not in result.output
    tiny = CliRunner().invoke(app, ["demo", "--pred-len", "3", "--samples", "2", "--random-tiny"])
    assert tiny.exit_code == 0 and "RANDOMLY INITIALISED" in tiny.output


def test_finetune_recipe_runs_offline_from_the_shipped_pair(tmp_path, monkeypatch):
    """Both stages of configs/finetune-open-csv.yaml start from the shipped weights, a few steps each."""
    from kronos.training import train

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(REPO)  # the recipe's data path is relative to the project root
    common = [
        f"data.corpus_dir={tmp_path / 'corpus'}",
        "train.max_steps=3",
        "train.steps_per_epoch=3",
        "train.val_samples=16",
        "train.progress=false",
        "train.tensorboard=false",
    ]
    tok = train("tokenizer", FINETUNE, overrides=[*common, f"output_dir={tmp_path / 'tok'}"])
    pred = train(
        "predictor",
        FINETUNE,
        overrides=[*common, f"output_dir={tmp_path / 'pred'}", f"model.tokenizer={tmp_path / 'tok' / 'best'}"],
    )
    val = pd.read_csv(tmp_path / "pred" / "metrics.csv").query("split == 'val'")
    assert list(val["step"]) == [0, 3] and np.isfinite(val["loss"]).all()
    # step 0 is the shipped predictor itself: a trained model, far below the uniform-guess loss
    cfg = json.loads((shipped_dir("kronos-open") / "model" / "config.json").read_text())
    uniform = (cfg["s1_bits"] + cfg["s2_bits"]) / 2 * np.log(2)
    assert val["loss"].iloc[0] < 0.6 * uniform
    assert tok.best_dir.is_dir()
    tuned = KronosPredictor.from_pretrained(pred.output_dir / "predictor")
    assert tuned.max_context == 256


@pytest.mark.slow
def test_evaluate_shipped_forecasters_on_a_folder_of_bars(tmp_path):
    """`kronos evaluate -f kronos,kronos-cal,drift,garch` on the bundled samples folder, offline."""
    from kronos.bars.samples import sample_data_path
    from kronos.cli import (
        app,
        commands,  # noqa: F401  (registers the commands)
    )

    out = tmp_path / "eval"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--data",
            str(sample_data_path("googl").parent),
            "-f",
            "kronos,kronos-cal,drift,garch",
            "--out",
            str(out),
            "--lookback",
            "300",
            "--horizon",
            "3",
            "--origins",
            "2",
            "--samples",
            "12",
            "--jobs",
            "1",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    forecasts = pd.read_parquet(out / "forecasts.parquet")
    counts = forecasts.groupby("forecaster")["series"].nunique().to_dict()
    assert counts == {"kronos": 2, "kronos-cal": 2, "drift": 2, "garch": 2}
    assert np.isfinite(forecasts["crps"]).all()
    cal = forecasts[forecasts["forecaster"] == "kronos-cal"]
    raw = forecasts[forecasts["forecaster"] == "kronos"]
    # the calibrated forecaster really recalibrates: its intervals differ from the raw model's
    assert not np.allclose(cal["q90"].to_numpy() - cal["q10"].to_numpy(), raw["q90"].to_numpy() - raw["q10"].to_numpy())


def test_greedy_forecast_matches_the_original_code_on_the_shipped_checkpoint(shipped_predictor):
    """The original implementation, run outside this repository on the shipped files, gave these numbers."""
    case = json.loads((REPO / "tests" / "fixtures" / "kronos_open_original_greedy.json").read_text())
    c = case["case"]
    predictor = shipped_predictor
    assert predictor.max_context == c["max_context"]
    df = load_sample(c["sample"]).tail(c["tail"]).reset_index(drop=True)
    future = pd.Series(pd.bdate_range(df["timestamps"].iloc[-1] + pd.offsets.BDay(1), periods=c["pred_len"]))
    pred = predictor.predict(
        df[c["columns"]],
        df["timestamps"],
        future,
        c["pred_len"],
        T=c["T"],
        top_k=c["top_k"],
        top_p=c["top_p"],
        sample_count=c["sample_count"],
        verbose=False,
    )
    np.testing.assert_allclose(pred.to_numpy(), np.asarray(case["expected"]), rtol=2e-6)


def test_the_cards_evaluation_holds_the_results_doc_and_can_be_rewritten_alone(tmp_path):
    """The card's evaluation section ends with ``docs/kronos-open-results.md`` (the packager's notes), so the two
    cannot drift apart; ``package_kronos_open.py --eval-only`` rewrites that section and nothing else."""
    import shutil

    repo = Path(__file__).resolve().parents[2]
    card = (shipped_dir("kronos-open") / "MODEL_CARD.md").read_text()
    notes = (repo / "docs" / "kronos-open-results.md").read_text()
    heading, limits = "## Evaluation on the held-out test period", "\n\n## Limits"
    assert card[: card.index(limits)].endswith(notes)
    dest = tmp_path / "kronos-open"
    shutil.copytree(shipped_dir("kronos-open"), dest)
    (tmp_path / "tables.md").write_text("| group | crps |\n|---|---|\n| pooled | 1.0 |\n")
    (tmp_path / "notes.md").write_text("A new reading.\n")
    script = [sys.executable, str(repo / "scripts" / "package_kronos_open.py"), "--dest", str(dest)]
    run = subprocess.run(
        [*script, "--eval-only", "--eval", str(tmp_path / "tables.md"), "--notes", str(tmp_path / "notes.md")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    new = (dest / "MODEL_CARD.md").read_text()
    start = card.index(heading)
    assert new[:start] == card[:start] and new[new.index(limits) :] == card[card.index(limits) :]
    section = new[start : new.index(limits)]
    assert section.endswith("| pooled | 1.0 |\n\nA new reading.\n") and "crps_ret" not in section
    for rel in ("model/model.safetensors", "tokenizer/model.safetensors", "predictor.json", "loss_curves.png"):
        assert (dest / rel).read_bytes() == (shipped_dir("kronos-open") / rel).read_bytes(), rel
    refused = subprocess.run([*script, "--eval-only"], capture_output=True, text=True)
    assert refused.returncode != 0 and "--eval-only needs --eval" in refused.stderr
