"""The training run configuration: a YAML file, read and validated into :mod:`kronos.training.schema`.

Every key is checked when the file is read: an unknown key (with a "did you mean" hint), a value of
the wrong type or out of range, or a missing required key is a :class:`TrainConfigError` naming the
file and the key path, e.g. ``run.yaml: train.lr: expected a number, got 'fast'``. Types, unknown and
missing keys are checked by pydantic against the schema's dataclasses (the ``train`` extra installs it);
its first error becomes that one message (:func:`_message`). Ranges and combinations are the schema's
``check`` methods. Relative paths are kept as written and resolved against the working directory when
used (run from the project root).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from kronos.core.extras import require
from kronos.training.schema import (
    Kind,
    RunConfig,
    TrainConfigError,
    check_sections,
)

__all__ = [
    "apply_overrides",
    "load_config",
    "parse_config",
]

# -- pydantic's errors as one message naming the key -----------------------------------------------------


@functools.cache
def _adapter() -> Any:
    pydantic = require("train", "pydantic", purpose="training configs")
    return pydantic.TypeAdapter(RunConfig)


def _validate(doc: Mapping[str, Any]) -> RunConfig:
    """The :class:`RunConfig` of a document, or a :class:`TrainConfigError` for its first mistake.

    First in the schema's order, a section's unknown keys before its fields (a misspelt key also makes
    the right one missing), as a reader going through the file top-down would meet them.
    """
    pydantic = require("train", "pydantic", purpose="training configs")
    try:
        return _adapter().validate_python(doc)
    except pydantic.ValidationError as exc:
        first = min(exc.errors(), key=lambda e: _locate(e["loc"]).order)
        raise TrainConfigError(_message(first)) from None


def _optional_inner(tp: Any) -> Any:
    """``X`` for ``X | None``; any other type unchanged."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        return next(a for a in args if a is not type(None))
    return tp


class _Place(typing.NamedTuple):
    where: str  # the dotted key path, with [i] for list items
    schema_type: Any  # the schema's type there (None for an unknown key)
    known: list[str]  # for an unknown key: the keys its section has
    order: tuple[int, ...]  # field positions from the root (-1: an unknown key, before its section's fields)


def _locate(loc: Sequence[Any]) -> _Place:
    """Where a pydantic error location is in the schema.

    The walk stops at a union member or a key inside a mapping: the value is then reported as a whole.
    """
    where, tp, order = "", RunConfig, ()
    for part in loc:
        tp = _optional_inner(tp)
        if isinstance(part, int) and typing.get_origin(tp) is list:
            where, tp, order = f"{where}[{part}]", typing.get_args(tp)[0], (*order, part)
        elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
            names = [f.name for f in dataclasses.fields(tp)]
            where = f"{where}.{part}" if where else str(part)
            if part not in names:
                return _Place(where, None, names, (*order, -1))
            tp, order = typing.get_type_hints(tp)[part], (*order, names.index(part))
        else:
            break
    return _Place(where, _optional_inner(tp), [], order)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a mapping"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _message(error: Mapping[str, Any]) -> str:
    """One pydantic error (``loc``, ``type``, ``input``) in the words of a config file: ``train.lr: ...``."""
    where, tp, known, _ = _locate(error["loc"])
    value = error["input"]
    if error["type"] == "unexpected_keyword_argument":
        close = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {sorted(known)}"
        return f"{where}: unknown key{hint}"
    if error["type"] == "missing":
        return f"{where}: required key is missing"
    if typing.get_origin(tp) is Literal:
        return f"{where}: must be one of {list(typing.get_args(tp))}, got {value!r}"
    if dataclasses.is_dataclass(tp):
        return f"{where or 'config'}: expected a mapping of keys, got {value!r}"
    return f"{where}: expected {_type_name(tp)}, got {value!r}"


# -- reading a file -------------------------------------------------------------------------------------


KIND_SECTIONS: tuple[str, ...] = ("tokenizer", "predictor")


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and key != "config":
            out[key] = _deep_merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def resolve_kind_sections(data: Mapping[str, Any], kind: Kind | None, source: str = "config") -> dict[str, Any]:
    """Merge a top-level ``tokenizer:`` or ``predictor:`` section over the rest of the document.

    One file can then describe a tokenizer/predictor pair that shares its ``data`` section: each kind
    section may hold ``output_dir``, ``model``, ``train`` (or any other top-level key) for that run.
    """
    doc = dict(data)
    sections = {k: doc.pop(k) for k in KIND_SECTIONS if k in doc}
    for name, section in sections.items():
        if not isinstance(section, Mapping):
            raise TrainConfigError(f"{source}: {name}: expected a mapping of keys for {name} training, got {section!r}")
    if not sections:
        return doc
    if kind is None:
        raise TrainConfigError(
            f"{source}: the config has {sorted(sections)} section(s); say which run it is for (the kind: "
            "tokenizer or predictor)"
        )
    if kind not in sections:
        raise TrainConfigError(f"{source}: the config has sections for {sorted(sections)} but not for {kind} training")
    return _deep_merge(doc, sections[kind])


def parse_config(data: Mapping[str, Any], *, kind: Kind | None = None, source: str = "config") -> RunConfig:
    """Validate a mapping (a parsed YAML document) into a :class:`RunConfig`.

    Top-level ``tokenizer:`` / ``predictor:`` sections are merged for ``kind`` first
    (see :func:`resolve_kind_sections`).
    """
    if not isinstance(data, Mapping):
        raise TrainConfigError(f"{source}: the top level must be a mapping with output_dir, data, model and train")
    data = resolve_kind_sections(data, kind, source)
    try:
        cfg = _validate(data)
        check_sections(cfg)
    except TrainConfigError as exc:
        raise TrainConfigError(f"{source}: {exc}") from None
    if kind is not None:
        try:
            cfg.for_kind(kind)
        except TrainConfigError as exc:
            raise TrainConfigError(f"{source}: {exc}") from None
    return cfg


def _set_path(doc: dict[str, Any], dotted: str, value: Any) -> None:
    node = doc
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise TrainConfigError(f"override {dotted}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def apply_overrides(doc: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` strings (values parsed as YAML) to a raw config mapping."""
    yaml = require("train", "yaml", purpose="training configs")

    for item in overrides:
        if "=" not in item:
            raise TrainConfigError(f"override {item!r}: expected KEY=VALUE, e.g. train.max_steps=100")
        key, raw = item.split("=", 1)
        _set_path(doc, key.strip(), yaml.safe_load(raw) if raw.strip() else None)
    return doc


def load_config(path: str | os.PathLike[str], *, kind: Kind | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """Read and validate a YAML run configuration (``overrides`` are ``key.path=value`` strings)."""
    yaml = require("train", "yaml", purpose="training configs")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrainConfigError(f"{path}: cannot read the config ({exc.strerror or exc})") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TrainConfigError(f"{path}: not valid YAML ({exc})") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise TrainConfigError(f"{path}: the top level must be a mapping with output_dir, data, model and train")
    doc = resolve_kind_sections(doc, kind, str(path))
    # Overrides apply after the kind section is merged, so `--set output_dir=...` wins over it.
    doc = apply_overrides(doc, overrides)
    return parse_config(doc, kind=kind, source=str(path))


def dump_config(cfg: RunConfig) -> str:
    """The run configuration as YAML text (what a run saves beside its results)."""
    yaml = require("train", "yaml", purpose="training configs")

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
