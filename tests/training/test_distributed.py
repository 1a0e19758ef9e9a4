"""Two CPU processes under torchrun (gloo): DDP and FSDP agree across ranks, draw different windows, learn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from kronos import Kronos, KronosPredictor, KronosTokenizer
from kronos.training.corpus import Corpus
from kronos.training.windows import EvalWindowSampler

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "tiny-pair.yaml"
# Real series that travel with the repository (tests/conftest.py: bars_folder): daily equity, hourly FX, daily index
FILES = ["us_equity/GOOGL_daily.parquet", "fx/EURUSD_1h.parquet", "index/NASDAQ_daily.parquet"]


def _torchrun(args: list[str], cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"torchrun failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def _common(bars_folder: Path, root: Path) -> list[str]:
    return [
        f"data.paths={json.dumps([str(bars_folder / f) for f in FILES])}",
        f"data.corpus_dir={root / 'corpus'}",
        "train.progress=false",
        "train.tensorboard=false",
    ]


def test_ddp_ranks_hold_identical_weights_draw_disjoint_windows_and_learn(bars_folder, tiny_reference, tmp_path):
    out = tmp_path / "ranks"
    out.mkdir()
    run = tmp_path / "ddp"
    overrides = [
        *_common(bars_folder, tmp_path),
        f"output_dir={run}",
        "model.config=null",
        f"model.init={tiny_reference / 'model'}",
        f"model.tokenizer={tiny_reference / 'tokenizer'}",
        "train.batch_size=16",
        "train.max_steps=20",
        "train.steps_per_epoch=10",
        "train.lr=1e-3",
        "model.max_context=64",
    ]
    _torchrun([str(REPO / "tests" / "ddp_worker.py"), str(out), "predictor", str(TINY), *overrides], cwd=tmp_path)

    w0, w1 = load_file(str(out / "rank0.safetensors")), load_file(str(out / "rank1.safetensors"))
    assert set(w0) == set(w1) and all(torch.equal(w0[k], w1[k]) for k in w0)
    start = Kronos.from_pretrained(tiny_reference / "model").state_dict()
    assert sum(not torch.equal(start[k], w0[k]) for k in start) > len(start) // 2  # the steps changed the weights
    val = pd.read_csv(run / "metrics.csv").query("split == 'val'")
    assert list(val["step"]) == [0, 10, 20] and val["loss"].iloc[-1] < val["loss"].iloc[0] - 0.3
    saved = Kronos.from_pretrained(run / "best").state_dict()
    final_is_best = val["loss"].iloc[-1] == val["loss"].min()
    assert all(torch.equal(saved[k], w0[k]) for k in saved) == final_is_best  # best/ written by rank 0

    # the bundle written by rank 0 forecasts real bars
    predictor = KronosPredictor.from_pretrained(run / "predictor", device="cpu")
    bars = pd.read_parquet(bars_folder / FILES[0]).iloc[-80:].reset_index(drop=True)
    torch.manual_seed(0)
    fc = predictor.predict(
        bars.iloc[:60], bars["timestamps"].iloc[:60], bars["timestamps"].iloc[60:], pred_len=20, verbose=False
    )
    assert fc.shape == (20, 6) and np.isfinite(fc.to_numpy()).all()

    seen = [json.loads((out / f"rank{r}_windows.json").read_text()) for r in (0, 1)]
    train_rows = [[row for split, row in s if split == "train"] for s in seen]
    assert len(train_rows[0]) == len(train_rows[1]) == 2 * 10 * 16  # 2 epochs x 10 steps x batch 16, per rank
    for epoch in range(2):
        part = [set(t[epoch * 160 : (epoch + 1) * 160]) for t in train_rows]
        assert len(part[0]) == len(part[1]) == 160 and not part[0] & part[1]
    # validation windows are shared out: each rank evaluates its own half of the same fixed set
    corpus = Corpus.open(tmp_path / "corpus")
    val_rows = [{row for split, row in s if split == "val"} for s in seen]
    expected = set(
        np.asarray(corpus.windows("val"))[EvalWindowSampler(int(corpus.meta["n_windows"]["val"]), 256).indices].tolist()
    )
    assert not val_rows[0] & val_rows[1] and val_rows[0] | val_rows[1] == expected


def test_fsdp_tokenizer_via_the_cli_under_torchrun(bars_folder, tmp_path):
    run = tmp_path / "fsdp"
    sets = sum(
        (
            ["--set", o]
            for o in [
                *_common(bars_folder, tmp_path),
                "train.distributed=fsdp",
                "train.max_steps=20",
                "train.steps_per_epoch=10",
                "train.checkpoint_every=5",
            ]
        ),
        [],
    )
    proc = _torchrun(["-m", "kronos", "train", "tokenizer", str(TINY), "-o", str(run), *sets], cwd=REPO)
    assert "tokenizer training finished after 20 steps" in proc.stderr
    val = pd.read_csv(run / "metrics.csv").query("split == 'val'")
    assert val["recon"].iloc[-1] < 0.8 * val["recon"].iloc[0]
    tok = KronosTokenizer.from_pretrained(run / "best")
    last = KronosTokenizer.from_pretrained(run / "last")
    same = all(torch.equal(a, b) for a, b in zip(tok.state_dict().values(), last.state_dict().values()))
    assert same == (val["recon"].iloc[-1] == val["recon"].min())  # best/ is the step with the lowest val recon
    state = torch.load(run / "last" / "trainer_state.pt", weights_only=True)
    assert state["trainer"]["world_size"] == 2 and len(state["rng"]) == 2 and state["trainer"]["finished"]
    # the optimiser state was gathered from the shards into full tensors for every parameter
    assert len(state["optimizer"]["state"]) == sum(1 for p in tok.parameters() if p.requires_grad)
