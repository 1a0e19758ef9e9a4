"""End-to-end training in one process on real bars: the tiny pair, fine-tuning, resume, early stopping."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from kronos import Kronos, KronosPredictor, KronosTokenizer
from kronos.bars.sources import DataSourceError
from kronos.training import TrainingError, train
from kronos.training.corpus import Corpus
from kronos.training.windows import EvalWindowSampler, WindowDataset

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "tiny-pair.yaml"
# Real series that travel with the repository (tests/conftest.py: bars_folder): daily equity, hourly FX, daily index
FILES = ["us_equity/GOOGL_daily.parquet", "fx/EURUSD_1h.parquet", "index/NASDAQ_daily.parquet"]
QUIET = ["train.progress=false", "train.tensorboard=false"]


def _data(bars_folder: Path, root: Path) -> list[str]:
    return [
        f"data.paths={json.dumps([str(bars_folder / f) for f in FILES])}",
        f"data.corpus_dir={root / 'corpus'}",
        *QUIET,
    ]


@pytest.fixture(scope="module")
def tiny_pair(bars_folder, tmp_path_factory):
    """Train the tiny tokenizer through the CLI, then the tiny predictor on its tokens (Python API)."""
    from kronos.cli import (
        app,
        commands,  # noqa: F401
    )

    root = tmp_path_factory.mktemp("tiny")
    sets = sum((["--set", o] for o in [*_data(bars_folder, root), "train.tensorboard=true"]), [])
    cli = CliRunner().invoke(app, ["train", "tokenizer", str(TINY), "-o", str(root / "tokenizer"), *sets])
    assert cli.exit_code == 0, cli.output
    tok_dir = root / "tokenizer"
    predictor = train(
        "predictor",
        TINY,
        overrides=[
            *_data(bars_folder, root),
            f"output_dir={root / 'predictor'}",
            f"model.tokenizer={tok_dir / 'best'}",
        ],
    )
    return root, tok_dir, predictor


def _val_rows(metrics: Path) -> pd.DataFrame:
    df = pd.read_csv(metrics)
    return df[df["split"] == "val"].reset_index(drop=True)


@pytest.mark.slow
def test_tokenizer_learns_and_best_checkpoint_is_the_best(tiny_pair):
    root, tok_dir, _ = tiny_pair
    val = _val_rows(tok_dir / "metrics.csv")
    assert list(val["step"]) == [0, 30, 60]
    assert val["recon"].iloc[-1] < 0.6 * val["recon"].iloc[0]  # reconstruction error falls a lot
    train_rows = pd.read_csv(tok_dir / "metrics.csv").query("split == 'train'")
    assert len(train_rows) == 6 and np.isfinite(train_rows[["loss", "lr", "grad_norm", "bars_per_s"]].to_numpy()).all()
    # best/ is the hub layout and holds the weights that scored best on validation
    tok = KronosTokenizer.from_pretrained(tok_dir / "best")
    assert json.loads((tok_dir / "best" / "config.json").read_text())["d_model"] == 32
    corpus = Corpus.open(root / "corpus")
    ds = WindowDataset(corpus, "val")
    x = torch.stack([ds[i]["x"] for i in EvalWindowSampler(len(ds), 256)])
    with torch.no_grad():
        (_, z), _, _, _ = tok(x)
    assert float(F.mse_loss(z, x)) == pytest.approx(val["recon"].min(), rel=1e-3)
    s1, s2 = tok.encode(x[:2], half=True)
    assert s1.max() < 64 and s2.max() < 64 and torch.isfinite(tok.decode([s1, s2], half=True)).all()


@pytest.mark.slow
def test_tensorboard_has_the_csv_scalars(tiny_pair):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, tok_dir, _ = tiny_pair
    events = EventAccumulator(str(tok_dir / "tensorboard"))
    events.Reload()
    recon = [e.value for e in events.Scalars("val/recon")]
    csv = _val_rows(tok_dir / "metrics.csv")["recon"].tolist()
    assert recon == pytest.approx(csv, rel=1e-5) and len(events.Scalars("train/loss")) == 6


#: The tiny config's learning rate (configs/tiny-pair.yaml): one AdamW step moves a weight by about this much.
TINY_LR = 3e-3


@pytest.mark.slow
def test_gradient_accumulation_matches_the_larger_batch(tiny_pair, bars_folder, tmp_path):
    """Two micro-batches of 16 with accumulation train the same model as one batch of 32.

    Summation order differs between the two, so gradients agree to float32 rounding, not bit for bit.
    Adam divides each gradient by its own running RMS, which turns a rounding difference in a gradient
    that nearly cancels into a visible one: on these series 2 of 26,000 weights differ by up to 8e-6
    (the tokens and the rest agree to 1e-7). So weights must agree to a hundredth of one optimizer step.
    """
    root, tok_dir, _ = tiny_pair
    common = [
        *_data(bars_folder, tmp_path),
        f"model.tokenizer={tok_dir / 'best'}",
        "train.max_steps=6",
        "train.steps_per_epoch=3",
        "train.teacher_forcing=true",
        "train.val_samples=64",
    ]  # no dropout in the tiny config
    big = train("predictor", TINY, overrides=[*common, f"output_dir={tmp_path / 'big'}", "train.batch_size=32"])
    acc = train(
        "predictor",
        TINY,
        overrides=[*common, f"output_dir={tmp_path / 'acc'}", "train.batch_size=16", "train.accumulation_steps=2"],
    )
    a, b = big.model.state_dict(), acc.model.state_dict()
    assert all(torch.allclose(a[k], b[k], rtol=1e-4, atol=TINY_LR / 100) for k in a)
    assert big.final_val["loss"] == pytest.approx(acc.final_val["loss"], rel=1e-5)


@pytest.mark.slow
def test_predictor_learns_and_the_saved_bundle_forecasts_real_bars(tiny_pair, bars_folder):
    root, tok_dir, result = tiny_pair
    assert result.initial_val is not None and result.final_val is not None
    assert result.final_val["loss"] < result.initial_val["loss"] - 0.5  # from ~ln(64)=4.16 towards the data's entropy
    assert result.best_dir == root / "predictor" / "best"
    model = Kronos.from_pretrained(result.best_dir)
    assert model.config.d_model == 32 and model.config.n_layers == 1
    bundle = root / "predictor" / "predictor"
    assert json.loads((bundle / "predictor.json").read_text()) == {"max_context": 64, "clip": 5.0}
    predictor = KronosPredictor.from_pretrained(bundle, device="cpu")
    df = pd.read_parquet(bars_folder / FILES[1]).iloc[-200:-20].reset_index(drop=True)
    future = pd.read_parquet(bars_folder / FILES[1])["timestamps"].iloc[-20:]
    torch.manual_seed(0)
    out = predictor.predict(df, df["timestamps"], future, pred_len=20, sample_count=2, verbose=False)
    assert out.shape == (20, 6) and np.isfinite(out.to_numpy()).all()
    assert 0.5 * df["close"].min() < out["close"].mean() < 2 * df["close"].max()


def test_finetuning_a_checkpoint_teacher_forced(tiny_reference, bars_folder, tmp_path):
    result = train(
        "predictor",
        TINY,
        overrides=[
            *_data(bars_folder, tmp_path),
            f"output_dir={tmp_path / 'ft'}",
            "model.config=null",
            f"model.init={tiny_reference / 'model'}",
            f"model.tokenizer={tiny_reference / 'tokenizer'}",
            "train.teacher_forcing=true",
            "train.max_steps=20",
            "train.steps_per_epoch=10",
            "train.lr=1e-3",
        ],
    )
    assert result.final_val["loss"] < result.initial_val["loss"] - 0.3
    start = Kronos.from_pretrained(tiny_reference / "model").state_dict()
    tuned = Kronos.from_pretrained(result.best_dir).state_dict()
    assert set(start) == set(tuned) and any(not torch.equal(start[k], tuned[k]) for k in start)


def test_finetuning_on_forecast_targets_scores_fewer_positions_and_learns(tiny_reference, bars_folder, tmp_path):
    """``train.targets: forecast`` with ``min_lookback`` reaches the objective through the trainer: the starting
    model's validation loss is that of the bars after the lookback, not of every position, and it falls."""
    common = [
        *_data(bars_folder, tmp_path),
        "model.config=null",
        f"model.init={tiny_reference / 'model'}",
        f"model.tokenizer={tiny_reference / 'tokenizer'}",
        "train.teacher_forcing=true",
        "train.steps_per_epoch=10",
        "train.lr=1e-3",
    ]
    every = train("predictor", TINY, overrides=[*common, f"output_dir={tmp_path / 'all'}", "train.max_steps=1"])
    ahead = train(
        "predictor",
        TINY,
        overrides=[
            *common,
            f"output_dir={tmp_path / 'forecast'}",
            "train.max_steps=20",
            "train.targets=forecast",
            "train.min_lookback=8",
        ],
    )
    assert ahead.initial_val["loss"] != pytest.approx(every.initial_val["loss"], rel=1e-3)
    assert ahead.final_val["loss"] < ahead.initial_val["loss"] - 0.1


@pytest.mark.slow
def test_an_interrupted_run_resumes_exactly(tiny_pair, bars_folder, tmp_path):
    root, tok_dir, _ = tiny_pair
    common = [
        *_data(bars_folder, root),
        f"model.tokenizer={tok_dir / 'best'}",
        "train.max_steps=12",
        "train.steps_per_epoch=5",
        "train.checkpoint_every=4",
        "model.config.resid_dropout_p=0.2",
    ]
    straight = train("predictor", TINY, overrides=[*common, f"output_dir={tmp_path / 'a'}"])

    class Crash(Exception):
        pass

    def crash_at_10(step: int, info: dict) -> None:
        if step == 10:
            raise Crash

    with pytest.raises(Crash):
        train("predictor", TINY, overrides=[*common, f"output_dir={tmp_path / 'b'}"], callbacks=[crash_at_10])
    state = torch.load(tmp_path / "b" / "last" / "trainer_state.pt", weights_only=True)
    assert (
        state["trainer"]["step"] == 8
        and state["trainer"]["epoch"] == 1
        and state["trainer"]["epoch_position"] == 3 * 32
    )
    resumed = train("predictor", TINY, overrides=[*common, f"output_dir={tmp_path / 'b'}"])
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # dropout, sampled coarse tokens and data order all restored
    assert resumed.final_val == straight.final_val
    rows = pd.read_csv(tmp_path / "b" / "metrics.csv")
    assert rows["step"].is_monotonic_increasing and list(rows.query("split == 'val'")["step"]) == [0, 5, 10, 12]
    with pytest.raises(TrainingError, match="scheduled for 12 steps, the config now gives 20"):
        train("predictor", TINY, overrides=[*common, f"output_dir={tmp_path / 'b'}", "train.max_steps=20"])


@pytest.mark.slow
def test_early_stopping_and_protection_of_earlier_results(tiny_pair, bars_folder, tmp_path):
    root, tok_dir, _ = tiny_pair
    common = [*_data(bars_folder, root), f"model.tokenizer={tok_dir / 'best'}", f"output_dir={tmp_path / 'run'}"]
    result = train(
        "predictor",
        TINY,
        overrides=[
            *common,
            "train.lr=1e-7",
            "train.early_stopping_patience=1",
            "train.early_stopping_min_delta=0.5",
            "train.max_steps=60",
        ],
    )
    assert result.stopped_early and result.steps == 30 and result.best_step == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "run" / "best").iterdir()}
    metrics_before = (tmp_path / "run" / "metrics.csv").read_bytes()
    with pytest.raises(TrainingError, match="already holds a training checkpoint"):
        train("predictor", TINY, overrides=[*common, "train.resume=never"])
    assert {p.name: p.read_bytes() for p in (tmp_path / "run" / "best").iterdir()} == before
    assert (tmp_path / "run" / "metrics.csv").read_bytes() == metrics_before


def _failing_run(out: Path, tmp_path: Path) -> list[str]:
    return [
        f"output_dir={out}",
        f"data.paths={json.dumps([str(tmp_path / 'absent.parquet')])}",
        f"data.corpus_dir={out / 'corpus'}",
        "train.progress=false",
        "train.tensorboard=false",
    ]


def test_a_run_that_cannot_start_leaves_no_output_folder_and_cleans_stale_ones(tmp_path):
    out = tmp_path / "runs" / "new"
    with pytest.raises(DataSourceError, match="absent.parquet"):
        train("tokenizer", REPO / "configs" / "tiny-pair.yaml", overrides=_failing_run(out, tmp_path))
    assert not out.exists()

    kept = tmp_path / "runs" / "old"
    stale = kept / ".last.tmp-999999999-0123abcd"
    (stale / "model").mkdir(parents=True)
    (kept / "metrics.csv").write_text("step\n")
    with pytest.raises(DataSourceError):
        train("tokenizer", REPO / "configs" / "tiny-pair.yaml", overrides=_failing_run(kept, tmp_path))
    assert not stale.exists() and (kept / "metrics.csv").exists()


@pytest.mark.slow
def test_kronos_train_onto_a_full_disk_or_from_a_corrupt_state_is_one_line(
    tiny_pair, bars_folder, tmp_path, monkeypatch
):
    """Through the command: a checkpoint that cannot be written, and a run whose trainer state is corrupt,
    each end in one ``error:`` line naming the file (exit 2), never a traceback or torch's unsafe advice."""
    import shutil

    from safetensors import SafetensorError

    from kronos.cli import (
        app,
        commands,  # noqa: F401
    )
    from kronos.training import checkpoint

    root, _, _ = tiny_pair
    sets = sum((["--set", o] for o in [*_data(bars_folder, root), "train.max_steps=4"]), [])

    def full_disk(*args, **kwargs):
        raise SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
        )

    with monkeypatch.context() as m:
        m.setattr(checkpoint, "save_file", full_disk)
        out = CliRunner().invoke(app, ["train", "tokenizer", str(TINY), "-o", str(tmp_path / "full"), *sets])
    lines = [line for line in out.output.splitlines() if line.startswith("error:")]
    assert out.exit_code == 2 and len(lines) == 1, out.output
    assert "model.safetensors" in lines[0] and "No space left" in lines[0] and "Traceback" not in out.output

    run = tmp_path / "corrupt"
    shutil.copytree(root / "tokenizer", run)
    state = run / "last" / checkpoint.STATE_NAME
    state.write_bytes(b"PK\x03\x04 not a checkpoint at all")
    out = CliRunner().invoke(app, ["train", "tokenizer", str(TINY), "-o", str(run), *sets])
    lines = [line for line in out.output.splitlines() if line.startswith("error:")]
    assert out.exit_code == 2 and len(lines) == 1, out.output
    assert str(state) in lines[0] and "weights_only" not in out.output and "Traceback" not in out.output


@pytest.mark.slow
def test_frequency_sampling_and_wsd_schedule_resume_exactly(tiny_pair, bars_folder, tmp_path):
    from kronos.training.optim import wsd_factor

    root, tok_dir, _ = tiny_pair
    common = [
        *_data(bars_folder, root),
        f"model.tokenizer={tok_dir / 'best'}",
        "train.max_steps=20",
        "train.steps_per_epoch=10",
        "train.checkpoint_every=4",
        "train.log_every=1",
        "train.sampling=frequency",
        "train.group_weights={daily: 1, hourly: 3}",
        "train.schedule=wsd",
        "train.pct_start=0.1",
        "train.decay_fraction=0.3",
    ]
    straight = train("predictor", TINY, overrides=[*common, f"output_dir={tmp_path / 'a'}"])

    class Crash(Exception):
        pass

    def crash_at_14(step: int, info: dict) -> None:
        if step == 14:
            raise Crash

    with pytest.raises(Crash):
        train("predictor", TINY, overrides=[*common, f"output_dir={tmp_path / 'b'}"], callbacks=[crash_at_14])
    resumed = train("predictor", TINY, overrides=[*common, f"output_dir={tmp_path / 'b'}"])
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the logged learning rate is the warm-up / stable / decay curve: up over 2 steps, flat, down over the last 6
    rows = pd.read_csv(tmp_path / "b" / "metrics.csv").query("split == 'train'").drop_duplicates("step", keep="last")
    peak = float(yaml_lr(TINY))
    factor = wsd_factor(20, 0.1, 0.3, 1e4)
    expected = [peak * factor(int(s)) for s in rows["step"]]
    np.testing.assert_allclose(rows["lr"].to_numpy(), expected, rtol=1e-6)
    assert rows["lr"].max() == pytest.approx(peak) and rows["lr"].iloc[-1] < peak / 1000
    # three times as many hourly windows as daily ones (two daily series, one hourly): counted over an epoch
    trainer_corpus = Corpus.open(root / "corpus")
    groups = trainer_corpus.window_groups("train")
    from kronos.training.windows import EvalWindowSampler, RandomWindowSampler, group_weights

    draws = RandomWindowSampler(len(groups), 4000, seed=1, weights=group_weights(groups, [1, 3, 0])).global_order()
    assert np.mean(groups[draws] == 1) == pytest.approx(0.75, abs=0.03)
    # validation reports each drawn group's loss (intraday has share 0: none), and the pooled loss is their mean
    # weighted by the windows each group has in the validation sample
    val_groups = trainer_corpus.window_groups("val")
    n_val = int(_predictor_train(TINY)["val_samples"])
    sample = EvalWindowSampler(len(val_groups), n_val, groups=np.where(val_groups < 2, val_groups, -1)).indices
    n_daily, n_hourly = int(np.sum(val_groups[sample] == 0)), int(np.sum(val_groups[sample] == 1))
    assert n_daily > 0 and n_hourly > 0 and len(straight.validations) >= 2
    for v in straight.validations:
        assert "loss_intraday" not in v and v["loss_daily"] != v["loss_hourly"]
        pooled = (n_daily * v["loss_daily"] + n_hourly * v["loss_hourly"]) / (n_daily + n_hourly)
        assert v["loss"] == pytest.approx(pooled, rel=1e-9) and v["samples"] == n_daily + n_hourly
    logged = pd.read_csv(tmp_path / "a" / "metrics.csv").query("split == 'val'")
    assert logged[["loss_daily", "loss_hourly"]].notna().all().all() and "loss_intraday" not in logged


def _predictor_train(path: Path) -> dict:
    import yaml

    doc = yaml.safe_load(path.read_text())
    return {**doc.get("train", {}), **doc.get("predictor", {}).get("train", {})}


def yaml_lr(path: Path) -> float:
    return float(_predictor_train(path)["lr"])
