"""The Kronos family: which tokenizer and context length go with which model, and what a model name loads.

Two kinds of entries: the published checkpoints on the Hugging Face hub (``NeoQuasar/Kronos-*``) and the
models shipped inside this package (``kronos-open``), which load offline from the installed package data.

:func:`resolve_source` is the one place a model name becomes something to load: a predictor directory
(``model/``, ``tokenizer/``, ``predictor.json``), a registry name, or any other checkpoint directory or hub
id. :func:`read_predictor_settings` is the one reader of ``predictor.json``. The predictor, training and
evaluation all go through them, so a name means the same thing everywhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from kronos.core.files import atomic_write_text
from kronos.core.validation import number, positive_int
from kronos.model.config import DEFAULT_CLIP, DEFAULT_MAX_CONTEXT, ConfigError, KronosConfig, TokenizerConfig
from kronos.model.hub import CONFIG_NAME, resolve_file

__all__ = [
    "DEFAULT_LOOKBACK",
    "DEFAULT_MODEL",
    "PREDICTOR_CONFIG",
    "PUBLISHED",
    "PUBLISHED_CONFIGS",
    "SHIPPED",
    "ModelSource",
    "PublishedModel",
    "read_predictor_settings",
    "write_predictor_settings",
    "resolve_model",
    "resolve_source",
    "shipped_dir",
]

#: The file beside ``model/`` and ``tokenizer/`` that declares a predictor's ``max_context`` and ``clip``.
PREDICTOR_CONFIG = "predictor.json"


@dataclass(frozen=True)
class PublishedModel:
    """A published predictor, its tokenizer (hub ids), the context it was trained with and the clip of its inputs."""

    model: str
    tokenizer: str
    max_context: int
    params: str
    clip: float = DEFAULT_CLIP


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


def read_predictor_settings(path: str | os.PathLike) -> dict[str, Any]:
    """The validated ``max_context`` and ``clip`` of a ``predictor.json`` (only the keys it declares).

    The one reader of the file, so a shipped model, a saved predictor and a hub checkpoint are held to the
    same rules; a malformed file is a :class:`ConfigError` naming it.
    """
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object with max_context and clip, got {type(raw).__name__}")
    unknown = sorted(set(raw) - {"max_context", "clip"})
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; allowed are max_context and clip")
    positive_int(f"{path}: max_context", raw.get("max_context", DEFAULT_MAX_CONTEXT), error=ConfigError)
    number(f"{path}: clip", raw.get("clip", DEFAULT_CLIP), low=0.0, error=ConfigError)
    return raw


def write_predictor_settings(directory: str | os.PathLike, *, max_context: int, clip: float) -> Path:
    """Write ``<directory>/predictor.json`` atomically: the one writer, the counterpart of
    :func:`read_predictor_settings` (a saved predictor and a training run's bundle write the same file)."""
    path = Path(directory) / PREDICTOR_CONFIG
    atomic_write_text(path, json.dumps({"max_context": max_context, "clip": clip}, indent=2) + "\n")
    return path


def _shipped_entry(name: str) -> PublishedModel | None:
    root = shipped_dir(name)
    if root is None:
        return None
    if not (root / "model").is_dir() or not (root / "tokenizer").is_dir():
        raise FileNotFoundError(
            f"the shipped model {name!r} is missing from the installed package ({root}); reinstall kronos-kline"
        )
    settings = read_predictor_settings(root / PREDICTOR_CONFIG) if (root / PREDICTOR_CONFIG).is_file() else {}
    return PublishedModel(
        str(root / "model"),
        str(root / "tokenizer"),
        int(settings.get("max_context", DEFAULT_MAX_CONTEXT)),
        "shipped",
        settings.get("clip", DEFAULT_CLIP),
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


@dataclass(frozen=True)
class ModelSource:
    """What a model name loads: where the weights and their tokenizer are, and the settings declared with them.

    ``tokenizer`` is None when the name brings none (a bare checkpoint or hub id); ``settings`` holds the
    validated ``max_context``/``clip`` the source declares (a registry entry its context, a predictor
    directory or checkpoint its ``predictor.json``), and is empty when it declares nothing.
    """

    model: str | os.PathLike
    tokenizer: str | os.PathLike | None
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def max_context(self) -> int:
        """The declared context, else the original's :data:`~kronos.model.config.DEFAULT_MAX_CONTEXT`."""
        return int(self.settings.get("max_context", DEFAULT_MAX_CONTEXT))

    @property
    def clip(self) -> float:
        """The declared clip of normalised inputs, else the original's :data:`~kronos.model.config.DEFAULT_CLIP`."""
        return self.settings.get("clip", DEFAULT_CLIP)


def resolve_source(name_or_path: str | os.PathLike, **hub_kwargs: Any) -> ModelSource:
    """The one resolver of model names: what ``name_or_path`` loads, checked in this order.

    1. A local predictor directory holding ``model/`` (and usually ``tokenizer/`` and ``predictor.json``),
       as ``KronosPredictor.save_pretrained`` and training write it: loads offline.
    2. A registry name (:func:`resolve_model`): a published hub id or short name paired with its tokenizer
       and context, or a model shipped in the package.
    3. Any other checkpoint directory or hub id (``config.json`` + ``model.safetensors``): a missing path or
       an unreachable hub fails here, once, with the reason; its ``predictor.json`` is read when it has one.

    ``hub_kwargs`` (``revision``, ``cache_dir``, ``local_files_only``, ``token``, ``subfolder``) apply to 3.
    """
    local = Path(name_or_path)
    if local.is_dir() and (local / "model").is_dir():
        settings = read_predictor_settings(local / PREDICTOR_CONFIG) if (local / PREDICTOR_CONFIG).is_file() else {}
        tokenizer = local / "tokenizer" if (local / "tokenizer").is_dir() else None
        return ModelSource(local / "model", tokenizer, settings)
    entry = resolve_model(str(name_or_path))
    if entry is not None:
        return ModelSource(entry.model, entry.tokenizer, {"max_context": entry.max_context, "clip": entry.clip})
    resolve_file(name_or_path, CONFIG_NAME, **hub_kwargs)
    try:
        settings_path = resolve_file(name_or_path, PREDICTOR_CONFIG, **hub_kwargs)
    except FileNotFoundError:  # optional: a bare model has none
        return ModelSource(name_or_path, None)
    return ModelSource(name_or_path, None, read_predictor_settings(settings_path))


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
