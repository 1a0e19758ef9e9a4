"""Cascade (shared-prefix) attention computes plain attention over each row's own copy of the prefix."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kronos.model.cache import KVCache
from kronos.model.cascade import attention_with_lse, shared_prefix_attention


def _reference(q, prefix_k, prefix_v, k, v, prefix_valid=None):
    """Attention over [the row's copy of the prefix, its own keys]; the queries are the last T keys (causal)."""
    group = q.shape[0] // prefix_k.shape[0]
    keys = torch.cat([prefix_k.repeat_interleave(group, 0), k], dim=2)
    values = torch.cat([prefix_v.repeat_interleave(group, 0), v], dim=2)
    t, n, p = q.shape[-2], keys.shape[-2], prefix_k.shape[-2]
    mask = (torch.arange(n).unsqueeze(0) <= torch.arange(n - t, n).unsqueeze(-1)).expand(q.shape[0], 1, t, n).clone()
    if prefix_valid is not None:
        mask[:, :, :, :p] &= prefix_valid.repeat_interleave(group, 0)[:, None, None, :]
    return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)


def _inputs(series, group, t, prefix, own, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    heads, hd = 4, 16
    rows = series * group
    return (
        r(rows, heads, t, hd),
        r(series, heads, prefix, hd),
        r(series, heads, prefix, hd),
        r(rows, heads, own, hd),
        r(rows, heads, own, hd),
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fused-cpu-kernel", "matmul"])
@pytest.mark.parametrize(
    "t, own", [(1, 0), (1, 1), (1, 7), (5, 5), (3, 8)], ids=["prefix-only", "first", "step", "block", "tail"]
)
def test_equals_attention_over_per_row_copies(dtype, t, own):
    q, pk, pv, k, v = _inputs(3, 5, t, 17, own, dtype)
    out = shared_prefix_attention(q, pk, pv, k, v)
    ref = _reference(q, pk, pv, k, v)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_padded_prefix_positions_are_masked_per_series():
    q, pk, pv, k, v = _inputs(3, 4, 1, 12, 3)
    valid = torch.ones(3, 12, dtype=torch.bool)
    valid[1, :5] = False  # series 1 is left-padded by 5
    valid[2, :11] = False  # series 2 has one real prefix position
    out = shared_prefix_attention(q, pk, pv, k, v, prefix_valid=valid)
    torch.testing.assert_close(out, _reference(q, pk, pv, k, v, valid), rtol=1e-5, atol=1e-6)
    # changing what padding holds changes nothing
    pk2 = pk.clone()
    pk2[1, :, :5] = 1e3
    torch.testing.assert_close(shared_prefix_attention(q, pk2, pv, k, v, prefix_valid=valid), out)


def test_log_sum_exp_is_that_of_the_scores():
    q, k, v = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 8)
    out, lse = attention_with_lse(q, k, v)
    scores = q @ k.transpose(-1, -2) / 8**0.5
    torch.testing.assert_close(lse, torch.logsumexp(scores, -1, keepdim=True), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="at least one key"):
        attention_with_lse(q, k[:, :, :0], v[:, :, :0])


def test_expanded_cache_shares_the_prefix_instead_of_copying_it():
    cache = KVCache(n_layers=2, batch_size=3, n_heads=2, head_dim=4, dep_heads=1, dep_head_dim=8, max_len=20)
    cache.k.normal_()
    cache.advance(15)
    shared = cache.expand(50)
    copied = cache.expand(50, share=False)
    assert shared.prefix is not None and shared.prefix.k.data_ptr() == cache.k.data_ptr()
    assert shared.k.shape == (2, 150, 2, 5, 4)  # each path holds only the positions after the prefix
    assert copied.k.shape == (2, 150, 2, 20, 4)
    assert shared.k.numel() * 4 == copied.k.numel()
    with pytest.raises(RuntimeError, match="already has a shared prefix"):
        shared.expand(2)


def test_the_decode_steps_fused_feed_forward_gives_the_same_numbers_and_follows_weight_updates():
    from kronos.model.blocks import FeedForward

    torch.manual_seed(0)
    ffn = FeedForward(32, 96)
    x = torch.randn(300, 1, 32)

    def separate() -> torch.Tensor:
        return ffn.w2(torch.nn.functional.silu(ffn.w1(x)) * ffn.w3(x)).detach()

    with torch.no_grad():
        np.testing.assert_array_equal(ffn(x).numpy(), separate().numpy())  # one product for w1 and w3: same numbers
        ffn.w3.weight.mul_(-2.0)  # an in-place update (an optimiser step, a loaded state dict) rebuilds the fusion
        np.testing.assert_array_equal(ffn(x).numpy(), separate().numpy())
    ffn.load_state_dict({k: torch.randn_like(v) for k, v in ffn.state_dict().items()})
    with torch.no_grad():
        np.testing.assert_array_equal(ffn(x).numpy(), separate().numpy())
