"""Checkpoint I/O: the hub layout round-trips, bad directories fail with the reason."""

from __future__ import annotations

import json
import time

import pytest
import torch
from safetensors.torch import load_file, save_file

from kronos import ConfigError, Kronos, KronosPredictor, KronosTokenizer
from kronos.model import hub as hub_module


def test_save_then_load_reproduces_state_and_config(tiny_reference, tmp_path):
    model = Kronos.from_pretrained(tiny_reference / "model")
    model.save_pretrained(tmp_path / "m")
    original = load_file(str(tiny_reference / "model" / "model.safetensors"))
    saved = load_file(str(tmp_path / "m" / "model.safetensors"))
    assert saved.keys() == original.keys()  # exactly the published keys: the original loads it strictly
    for key in original:
        assert torch.equal(saved[key], original[key]), key
    assert json.loads((tmp_path / "m" / "config.json").read_text()) == json.loads(
        (tiny_reference / "model" / "config.json").read_text()
    )


def test_tokenizer_round_trip_keeps_saved_buffers(tiny_reference, tmp_path):
    tok = KronosTokenizer.from_pretrained(tiny_reference / "tokenizer")
    tok.save_pretrained(tmp_path / "t")
    saved = load_file(str(tmp_path / "t" / "model.safetensors"))
    assert "tokenizer.bsq.basis" in saved and "tokenizer.bsq.group_basis" in saved
    assert "tokenizer.bsq.group_codebook" not in saved
    again = KronosTokenizer.from_pretrained(tmp_path / "t")
    x = torch.randn(1, 16, 6)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(tok.encode(x, half=True), again.encode(x, half=True)))


def test_predictor_save_pretrained_loads_offline_with_its_settings(tiny_reference, tmp_path):
    p = KronosPredictor.from_pretrained(tiny_reference, device="cpu", max_context=64, clip=4)
    p.save_pretrained(tmp_path / "pred")
    again = KronosPredictor.from_pretrained(tmp_path / "pred", device="cpu")
    assert (again.max_context, again.clip) == (64, 4)


def _copy_checkpoint(src, dst, edit):
    dst.mkdir()
    (dst / "model.safetensors").write_bytes((src / "model.safetensors").read_bytes())
    config = json.loads((src / "config.json").read_text())
    edit(config)
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def test_missing_config_key_is_named(tiny_reference, tmp_path):
    d = _copy_checkpoint(tiny_reference / "model", tmp_path / "m", lambda c: c.pop("n_heads"))
    with pytest.raises(ConfigError, match=r"missing key\(s\) \['n_heads'\]"):
        Kronos.from_pretrained(d)


def test_unknown_config_key_is_named(tiny_reference, tmp_path):
    d = _copy_checkpoint(tiny_reference / "model", tmp_path / "m", lambda c: c.update(n_expertz=3))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['n_expertz'\]"):
        Kronos.from_pretrained(d)


def test_weights_that_do_not_fit_the_config_are_reported(tiny_reference, tmp_path):
    d = _copy_checkpoint(tiny_reference / "model", tmp_path / "m", lambda c: c.update(n_layers=3))
    with pytest.raises(ConfigError, match="missing keys"):
        Kronos.from_pretrained(d)


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a checkpoint directory nor a hub id"):
        Kronos.from_pretrained(tmp_path / "nope" / "deeper")


def test_tokenizer_with_other_bits_than_model_is_rejected(tiny_reference):
    model = Kronos.from_pretrained(tiny_reference / "model")
    tok = KronosTokenizer(d_model=32, n_heads=2, ff_dim=64, n_enc_layers=2, n_dec_layers=2, s1_bits=4, s2_bits=4)
    with pytest.raises(ConfigError, match="s1_bits=4.*s1_bits=6"):
        KronosPredictor(model, tok, device="cpu")


@pytest.fixture()
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture()
def unreachable_hub(monkeypatch):
    """A hub endpoint nothing listens on: connection refused at once, as with no network."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(hub_module, "_PROBED", {})


@pytest.mark.parametrize(
    "env,why",
    [("offline", r"the hub is offline \(HF_HUB_OFFLINE is set\)"), ("unreachable_hub", "the hub could not be reached")],
)
def test_missing_local_path_fails_fast_with_one_message(env, why, request, tmp_path, monkeypatch):
    request.getfixturevalue(env)
    monkeypatch.chdir(tmp_path)
    for load in (
        lambda: KronosPredictor.from_pretrained("runs/mymodel"),
        lambda: Kronos.from_pretrained("runs/mymodel"),
    ):
        start = time.perf_counter()
        with pytest.raises(FileNotFoundError, match=rf"runs/mymodel: no such local directory, .*{why}"):
            load()
        assert time.perf_counter() - start < 8


def test_truncated_weights_name_the_file(bundle):
    weights = bundle / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ConfigError, match=rf"{weights}: not a readable safetensors file .*truncated"):
        KronosPredictor.from_pretrained(bundle)


def test_nan_weights_are_refused_at_load_time(bundle):
    weights = bundle / "tokenizer" / "model.safetensors"
    state = load_file(str(weights))
    key = sorted(k for k, v in state.items() if v.is_floating_point())[3]
    state[key] = state[key].clone()
    state[key].view(-1)[0] = float("nan")
    save_file(state, str(weights), metadata={"format": "pt"})
    with pytest.raises(ConfigError, match=rf"{weights}: tensor '{key}' has 1 NaN or infinite value"):
        KronosPredictor.from_pretrained(bundle)
