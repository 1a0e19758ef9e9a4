"""The published Kronos family: which tokenizer and context length go with which model."""

from __future__ import annotations

from dataclasses import dataclass

from kronos.config import KronosConfig, TokenizerConfig

__all__ = ["PUBLISHED", "PUBLISHED_CONFIGS", "PublishedModel", "resolve_published"]


@dataclass(frozen=True)
class PublishedModel:
    """A published predictor, its tokenizer (hub ids) and the context it was trained with."""

    model: str
    tokenizer: str
    max_context: int
    params: str


PUBLISHED: dict[str, PublishedModel] = {
    "NeoQuasar/Kronos-mini": PublishedModel("NeoQuasar/Kronos-mini", "NeoQuasar/Kronos-Tokenizer-2k", 2048, "4.1M"),
    "NeoQuasar/Kronos-small": PublishedModel("NeoQuasar/Kronos-small", "NeoQuasar/Kronos-Tokenizer-base", 512, "24.7M"),
    "NeoQuasar/Kronos-base": PublishedModel("NeoQuasar/Kronos-base", "NeoQuasar/Kronos-Tokenizer-base", 512, "102.3M"),
}

_ALIASES = {key.split("/")[1].lower(): key for key in PUBLISHED} | {key.split("-")[1].lower(): key for key in PUBLISHED}


def resolve_published(name: str) -> PublishedModel | None:
    """The entry for a hub id (``NeoQuasar/Kronos-small``) or a short name (``kronos-small``, ``small``)."""
    if name in PUBLISHED:
        return PUBLISHED[name]
    key = _ALIASES.get(name.lower())
    return PUBLISHED[key] if key else None


# The published configurations (SPEC.md), for random-weight benchmarks and fresh pretraining.
PUBLISHED_CONFIGS: dict[str, KronosConfig | TokenizerConfig] = {
    "Kronos-Tokenizer-base": TokenizerConfig(
        d_in=6, d_model=256, n_heads=4, ff_dim=512, n_enc_layers=4, n_dec_layers=4, ffn_dropout_p=0.0, attn_dropout_p=0.0,
        resid_dropout_p=0.0, s1_bits=10, s2_bits=10, beta=0.05, gamma0=1.0, gamma=1.1, zeta=0.05, group_size=4,
    ),
    "Kronos-mini": KronosConfig(
        s1_bits=10, s2_bits=10, n_layers=4, d_model=256, n_heads=4, ff_dim=512, ffn_dropout_p=0.2, attn_dropout_p=0.0,
        resid_dropout_p=0.2, token_dropout_p=0.0, learn_te=True,
    ),
    "Kronos-small": KronosConfig(
        s1_bits=10, s2_bits=10, n_layers=8, d_model=512, n_heads=8, ff_dim=1024, ffn_dropout_p=0.25, attn_dropout_p=0.1,
        resid_dropout_p=0.25, token_dropout_p=0.1, learn_te=True,
    ),
    "Kronos-base": KronosConfig(
        s1_bits=10, s2_bits=10, n_layers=12, d_model=832, n_heads=16, ff_dim=2048, ffn_dropout_p=0.2, attn_dropout_p=0.0,
        resid_dropout_p=0.2, token_dropout_p=0.0, learn_te=True,
    ),
}  # fmt: skip
