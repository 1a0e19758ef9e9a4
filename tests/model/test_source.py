"""One resolver of model names: a registry name, a predictor directory, a checkpoint and a hub id resolve in
:func:`kronos.model.registry.resolve_source`, the way the predictor, training and evaluation load them."""

from __future__ import annotations

import json
import shutil

import pytest

from kronos import KronosPredictor
from kronos.model.config import DEFAULT_CLIP, DEFAULT_MAX_CONTEXT
from kronos.model.registry import (
    PREDICTOR_CONFIG,
    read_predictor_settings,
    resolve_model,
    resolve_source,
    shipped_dir,
)
from kronos.training.objectives import _resolve_init


@pytest.fixture()
def bundle(tiny_reference, tmp_path):
    out = tmp_path / "bundle"
    shutil.copytree(tiny_reference / "model", out / "model")
    shutil.copytree(tiny_reference / "tokenizer", out / "tokenizer")
    return out


def test_registry_names_resolve_to_their_pairing_and_context():
    small = resolve_source("small")
    assert (small.model, small.tokenizer) == ("NeoQuasar/Kronos-small", "NeoQuasar/Kronos-Tokenizer-base")
    assert (small.max_context, small.clip) == (512, DEFAULT_CLIP)
    assert resolve_source("NeoQuasar/Kronos-mini").max_context == 2048
    shipped = resolve_source("kronos-open")
    entry = resolve_model("kronos-open")
    declared = read_predictor_settings(shipped_dir("kronos-open") / PREDICTOR_CONFIG)
    assert (shipped.model, shipped.tokenizer) == (entry.model, entry.tokenizer)
    assert (shipped.max_context, shipped.clip) == (declared["max_context"], declared["clip"])


def test_a_predictor_directory_resolves_to_its_parts_and_predictor_json(bundle):
    plain = resolve_source(bundle)
    assert (plain.model, plain.tokenizer) == (bundle / "model", bundle / "tokenizer")
    assert (plain.max_context, plain.clip) == (DEFAULT_MAX_CONTEXT, DEFAULT_CLIP)
    (bundle / PREDICTOR_CONFIG).write_text(json.dumps({"max_context": 64, "clip": 4}))
    declared = resolve_source(str(bundle))
    assert (declared.max_context, declared.clip) == (64, 4)
    loaded = KronosPredictor.from_pretrained(bundle)
    assert (loaded.max_context, loaded.clip) == (64, 4)
    # training resolves the same name to the same parts
    assert _resolve_init(str(bundle)) == str(bundle / "model")
    assert _resolve_init(str(bundle), "tokenizer") == str(bundle / "tokenizer")


def test_a_bare_checkpoint_brings_no_tokenizer(bundle):
    source = resolve_source(bundle / "model")
    assert (source.model, source.tokenizer, dict(source.settings)) == (bundle / "model", None, {})
    assert _resolve_init(str(bundle / "tokenizer"), "tokenizer") == str(bundle / "tokenizer")
    with pytest.raises(FileNotFoundError, match="no tokenizer found"):
        KronosPredictor.from_pretrained(bundle / "model")


def test_a_hub_id_is_looked_up_on_the_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"my/own-model: no such local directory, .*offline"):
        resolve_source("my/own-model")
