"""Sampling filters: each one unit-tested, none edits the caller's tensor."""

from __future__ import annotations

import pytest
import torch

from kronos.inference.sampling import (
    logits_to_probs,
    sample,
    sample_from_uniform,
    top_k_filter,
    top_p_filter,
)


def test_top_k_keeps_exactly_the_k_largest():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]])
    before = logits.clone()
    out = top_k_filter(logits, 2)
    assert torch.isfinite(out).tolist() == [[False, True, False, True, False]]
    assert torch.equal(logits, before)


def test_top_p_keeps_smallest_set_reaching_p_and_always_the_top_token():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    logits = probs.log()
    assert torch.isfinite(top_p_filter(logits, 0.7)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(top_p_filter(logits, 0.81)).tolist() == [[True, True, True, False]]
    assert torch.isfinite(top_p_filter(logits, 0.01)).tolist() == [[True, False, False, False]]


def test_top_k_takes_precedence_over_top_p():
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    probs = logits_to_probs(logits, top_k=3, top_p=0.1)
    assert (probs > 0).sum().item() == 3


def test_temperature_sharpens_and_greedy_is_deterministic():
    logits = torch.tensor([[0.0, 1.0, 2.0]])
    assert logits_to_probs(logits, 0.5)[0, 2] > logits_to_probs(logits, 1.0)[0, 2]
    g = torch.Generator().manual_seed(0)
    draws = {sample(logits, top_k=1, generator=g).item() for _ in range(20)}
    assert draws == {2}


def test_generator_makes_draws_reproducible():
    logits = torch.randn(4, 50)
    a = sample(logits, generator=torch.Generator().manual_seed(3))
    b = sample(logits, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.usefixtures("one_torch_thread")  # as in its former module, tests/test_panel.py
def test_sample_from_uniform_follows_the_filtered_distribution():
    torch.manual_seed(0)
    logits = torch.randn(3, 12)
    probs = logits_to_probs(logits, 1.0, 0, 0.8)
    u = torch.rand(20000)
    draws = torch.cat(
        [sample_from_uniform(logits[i : i + 1].expand(len(u), -1), u, 1.0, 0, 0.8) for i in range(3)], dim=1
    )
    for i in range(3):
        freq = torch.bincount(draws[:, i], minlength=12).double() / len(u)
        assert torch.all(freq[probs[i] == 0] == 0)  # filtered tokens are never drawn
        assert torch.allclose(freq, probs[i].double(), atol=0.015)
    # a row's draw depends on its own logits and uniform only
    assert sample_from_uniform(logits, u[:3])[1].item() == sample_from_uniform(logits[1:2], u[1:2]).item()
