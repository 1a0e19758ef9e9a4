"""What the predictor is trained to predict: every position (the original) or only the bars a forecast asks for."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kronos import Kronos
from kronos.bars.preprocessing import FEATURE_COLS
from kronos.training.config import parse_config
from kronos.training.objectives import make_task
from kronos.training.windows import normalize_window

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _task(tiny_reference, targets: str):
    doc = {
        "output_dir": "unused",
        "data": {"paths": ["unused.csv"], "lookback": 24, "horizon": 8},
        "model": {"init": str(tiny_reference / "model"), "tokenizer": str(tiny_reference / "tokenizer")},
        "train": {"batch_size": 3, "lr": 1e-3, "max_steps": 1, "targets": targets},
    }
    return make_task("predictor", parse_config(doc, kind="predictor"), torch.device("cpu"))


def test_forecast_targets_score_only_the_bars_after_the_normalised_part(tiny_reference, googl_bars):
    """``targets: forecast`` is the teacher-forced cross-entropy over the bars after each window's ``fitted`` ones
    (those a forecast from that many bars would generate), ``all`` over every next bar; inputs are real GOOGL
    windows normalised on their first ``fitted`` bars, as the dataset makes them."""
    fitted = [24, 10, 31]
    bars = googl_bars.assign(amount=googl_bars["volume"] * googl_bars[["open", "high", "low", "close"]].mean(axis=1))
    raw = bars[list(FEATURE_COLS)].to_numpy(np.float32)
    x = torch.from_numpy(np.stack([normalize_window(raw[100 * i : 100 * i + 32], n) for i, n in enumerate(fitted)]))
    stamp = torch.zeros(3, 32, 5, dtype=torch.int64)
    batch = {"x": x, "stamp": stamp, "fitted": torch.tensor(fitted)}
    model = Kronos.from_pretrained(tiny_reference / "model").eval()

    task = _task(tiny_reference, "forecast")
    s1, s2 = task.tokens(x)
    s1_logits, s2_logits = model(
        s1[:, :-1], s2[:, :-1], stamp[:, :-1], use_teacher_forcing=True, s1_targets=s1[:, 1:], dep_causal=True
    )
    ce1 = F.cross_entropy(s1_logits.transpose(1, 2), s1[:, 1:].long(), reduction="none")
    ce2 = F.cross_entropy(s2_logits.transpose(1, 2), s2[:, 1:].long(), reduction="none")
    scored = torch.arange(1, 32)[None, :] >= torch.tensor(fitted)[:, None]  # target bar j + 1 at position j
    assert int(scored.sum()) == 8 + 22 + 1
    with torch.no_grad():
        got = task.eval_metrics(model, batch)
        want = (ce1[scored].mean() + ce2[scored].mean()) / 2
        torch.testing.assert_close(got["loss"], want, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got["ce_s1"], ce1[scored].mean(), rtol=1e-5, atol=1e-6)
        every = _task(tiny_reference, "all").eval_metrics(model, batch)
        torch.testing.assert_close(every["loss"], (ce1.mean() + ce2.mean()) / 2, rtol=1e-5, atol=1e-6)
    assert not torch.isclose(got["loss"], every["loss"])
