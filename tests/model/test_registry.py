"""The model registry: published names resolve to their tokenizer and context."""

from __future__ import annotations

from kronos.model.registry import resolve_model


def test_published_family_pairs_models_with_tokenizers_and_contexts():
    assert resolve_model("NeoQuasar/Kronos-mini").tokenizer == "NeoQuasar/Kronos-Tokenizer-2k"
    assert resolve_model("kronos-mini").max_context == 2048
    assert resolve_model("small").tokenizer == "NeoQuasar/Kronos-Tokenizer-base"
    assert resolve_model("NeoQuasar/Kronos-base").max_context == 512
    assert resolve_model("my/own-model") is None
