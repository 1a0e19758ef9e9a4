"""The published Kronos family: which tokenizer and context length go with which model."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PUBLISHED", "PublishedModel", "resolve_published"]


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
