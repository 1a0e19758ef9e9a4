"""The Kronos family: which tokenizer and context length go with which model.

Two kinds of entries: the published checkpoints on the Hugging Face hub (``NeoQuasar/Kronos-*``) and the
models shipped inside this package (``kronos-open``), which load offline from the installed package data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from kronos.model.config import DEFAULT_MAX_CONTEXT, KronosConfig, TokenizerConfig

__all__ = [
    "DEFAULT_LOOKBACK",
    "DEFAULT_MODEL",
    "PUBLISHED",
    "PUBLISHED_CONFIGS",
    "SHIPPED",
    "PublishedModel",
    "resolve_model",
    "shipped_dir",
]


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


#: Models shipped as package data under ``kronos/pretrained/<name>/`` (``model/``, ``tokenizer/``,
#: ``predictor.json``, ``MODEL_CARD.md``): they need no network.
SHIPPED: tuple[str, ...] = ("kronos-open",)

#: The model every command uses unless told otherwise.
DEFAULT_MODEL = "kronos-open"

#: History bars a forecast conditions on unless told otherwise (``--lookback`` of every command): the
#: context the default model was trained with (its ``predictor.json``). More is trimmed to the model's
#: ``max_context``; fewer moves its forecasts (README, "Sensitive to the lookback length").
DEFAULT_LOOKBACK = 256


def shipped_dir(name: str) -> Path | None:
    """Directory of a model shipped in the installed package (``kronos-open``), or None for other names."""
    if str(name).lower() not in SHIPPED:
        return None
    return Path(str(resources.files("kronos") / "pretrained" / str(name).lower()))


def _shipped_entry(name: str) -> PublishedModel | None:
    root = shipped_dir(name)
    if root is None:
        return None
    if not (root / "model").is_dir() or not (root / "tokenizer").is_dir():
        raise FileNotFoundError(
            f"the shipped model {name!r} is missing from the installed package ({root}); reinstall kronos-kline"
        )
    settings = json.loads((root / "predictor.json").read_text()) if (root / "predictor.json").is_file() else {}
    return PublishedModel(
        str(root / "model"), str(root / "tokenizer"), int(settings.get("max_context", DEFAULT_MAX_CONTEXT)), "shipped"
    )


def resolve_model(name: str) -> PublishedModel | None:
    """The entry for a hub id (``NeoQuasar/Kronos-small``), a short name (``kronos-small``, ``small``) or a
    shipped model (``kronos-open``, whose ``model``/``tokenizer`` are directories inside the package)."""
    name = str(name)
    if name in PUBLISHED:
        return PUBLISHED[name]
    shipped = _shipped_entry(name)
    if shipped is not None:
        return shipped
    key = _ALIASES.get(name.lower())
    return PUBLISHED[key] if key else None


def _predictor_config(
    n_layers: int, d_model: int, n_heads: int, ff_dim: int, dropout: float, attn_dropout: float
) -> KronosConfig:
    """A published predictor's shape: 10+10 token bits, learned time embeddings, one dropout for the
    FFN and the residual stream, another for attention and the token embedding."""
    return KronosConfig(
        s1_bits=10,
        s2_bits=10,
        n_layers=n_layers,
        d_model=d_model,
        n_heads=n_heads,
        ff_dim=ff_dim,
        ffn_dropout_p=dropout,
        resid_dropout_p=dropout,
        attn_dropout_p=attn_dropout,
        token_dropout_p=attn_dropout,
        learn_te=True,
    )


# The published configurations (SPEC.md), for random-weight benchmarks and fresh pretraining.
PUBLISHED_CONFIGS: dict[str, KronosConfig | TokenizerConfig] = {
    "Kronos-Tokenizer-base": TokenizerConfig(
        d_in=6,
        d_model=256,
        n_heads=4,
        ff_dim=512,
        n_enc_layers=4,
        n_dec_layers=4,
        ffn_dropout_p=0.0,
        attn_dropout_p=0.0,
        resid_dropout_p=0.0,
        s1_bits=10,
        s2_bits=10,
        beta=0.05,
        gamma0=1.0,
        gamma=1.1,
        zeta=0.05,
        group_size=4,
    ),
    # name: layers, d_model, heads, ff_dim, ffn/residual dropout, attention/token dropout
    "Kronos-mini": _predictor_config(4, 256, 4, 512, 0.2, 0.0),
    "Kronos-small": _predictor_config(8, 512, 8, 1024, 0.25, 0.1),
    "Kronos-base": _predictor_config(12, 832, 16, 2048, 0.2, 0.0),
}
