"""The training run configuration: a YAML file validated on load into dataclasses.

Sections (see ``docs/training.md`` for every key)::

    output_dir: runs/my-run
    seed: 42
    data:  {paths | qlib, lookback, horizon, val_fraction, ...}
    model: {init | config, tokenizer, max_context}
    train: {batch_size, lr, epochs | max_steps, ...}

Every key is checked when the file is read: an unknown key (with a "did you mean" hint), a value of
the wrong type or out of range, or a missing required key is a :class:`TrainConfigError` naming the
key path, e.g. ``train.lr: must be a positive number, got 'fast'``. Relative paths are kept as
written and resolved against the working directory when used (run from the project root).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kronos.core.extras import require
from kronos.model.config import DEFAULT_CLIP, DEFAULT_MAX_CONTEXT, ConfigError, KronosConfig, TokenizerConfig

__all__ = [
    "DataConfig",
    "ModelConfig",
    "QlibConfig",
    "RunConfig",
    "TrainConfig",
    "TrainConfigError",
    "apply_overrides",
    "load_config",
    "parse_config",
]

Kind = Literal["tokenizer", "predictor"]


class TrainConfigError(ConfigError):
    """The training configuration has an unknown key, a missing key or a bad value (named in the message)."""


# -- generic checking of dataclass sections ----------------------------------------------------------


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, Sequence, tuple):
        args = typing.get_args(tp)
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if origin in (dict, Mapping):
        return "a mapping"
    if tp is type(None):
        return "null"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it in canonical form (raise if it does not fit)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except TrainConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise TrainConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise TrainConfigError(f"{where}: must be one of {list(typing.get_args(tp))}, got {value!r}")
        return value
    if origin in (list, Sequence, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise TrainConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
        (arg,) = typing.get_args(tp)[:1] or (Any,)
        return [_coerce(v, arg, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise TrainConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return _section(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise TrainConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise TrainConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            # YAML 1.1 reads "1e-4" (no dot) as a string; accept numeric strings explicitly.
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            raise TrainConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
            raise TrainConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise TrainConfigError(f"{where}: unsupported type {tp!r}")  # pragma: no cover - schema bug


def _section(cls: type, data: Any, where: str) -> Any:
    """Build the dataclass ``cls`` from ``data``, rejecting unknown keys with a suggestion."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise TrainConfigError(f"{where or 'config'}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    flds = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{where}." if where else ""
    for key in data:
        if key not in flds:
            close = difflib.get_close_matches(str(key), list(flds), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {sorted(flds)}"
            raise TrainConfigError(f"{prefix}{key}: unknown key{hint}")
    kwargs = {}
    for name, f in flds.items():
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], f"{prefix}{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise TrainConfigError(f"{prefix}{name}: required key is missing")
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if check is not None:
        check(where)
    return obj


def _positive(value: Any, where: str, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if (value < 0) if allow_zero else (value <= 0):
        raise TrainConfigError(f"{where}: must be {'non-negative' if allow_zero else 'positive'}, got {value!r}")


# -- the sections -----------------------------------------------------------------------------------


@dataclass
class QlibConfig:
    """``data.qlib``: read bars from a Qlib provider directory instead of files."""

    provider_uri: str
    instruments: str | list[str] = "all"
    freq: str = "day"
    start_time: str | None = None
    end_time: str | None = None
    region: str = "cn"
    use_pyqlib: bool | None = False

    def check(self, where: str) -> None:
        if not self.provider_uri:
            raise TrainConfigError(f"{where}.provider_uri: must name a Qlib provider directory")


@dataclass
class DataConfig:
    """``data``: where the bars come from, window geometry, time split and gap rule."""

    paths: list[str] = field(default_factory=list)
    glob: str | None = None
    qlib: QlibConfig | None = None
    symbol_column: str = "symbol"
    timestamp_column: str | None = None
    symbols: list[str] | None = None
    lookback: int = 90
    horizon: int = 10
    val_fraction: float = 0.1
    test_fraction: float = 0.0
    val_start: str | None = None
    test_start: str | None = None
    max_gap: str | None = "auto"
    clip: float = DEFAULT_CLIP
    corpus_dir: str | None = None
    min_rows: int = 1

    def check(self, where: str) -> None:
        if not self.paths and self.qlib is None:
            raise TrainConfigError(f"{where}: give data.paths (CSV/Parquet files or folders) or a data.qlib section")
        if self.paths and self.qlib is not None:
            raise TrainConfigError(f"{where}: give either data.paths or data.qlib, not both")
        for name in ("lookback", "horizon", "min_rows"):
            _positive(getattr(self, name), f"{where}.{name}")
        _positive(self.clip, f"{where}.clip")
        for name in ("val_fraction", "test_fraction"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise TrainConfigError(f"{where}.{name}: must be in [0, 1), got {v!r}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise TrainConfigError(f"{where}: val_fraction + test_fraction must be below 1")
        from kronos.training.corpus import CorpusError, GapRule

        try:
            GapRule(max_gap=self.max_gap)
        except CorpusError as exc:
            raise TrainConfigError(f"{where}.max_gap: {exc}") from None
        try:
            self.split_spec()
        except CorpusError as exc:
            raise TrainConfigError(f"{where}: {exc}") from None

    def split_spec(self) -> Any:
        """The :class:`~kronos.training.corpus.SplitSpec` these keys describe (dates win over fractions)."""
        from kronos.training.corpus import SplitSpec

        if self.val_start is not None or self.test_start is not None:
            return SplitSpec(val_fraction=0.0, test_fraction=0.0, val_start=self.val_start, test_start=self.test_start)
        return SplitSpec(val_fraction=self.val_fraction, test_fraction=self.test_fraction)


@dataclass
class ModelConfig:
    """``model``: what to train and, for the predictor, which frozen tokenizer makes its tokens.

    ``init`` is a checkpoint directory or hub id to fine-tune (published short names such as
    ``kronos-small`` work too); ``config`` is the ``config.json`` mapping of a fresh model. Exactly one
    of them. ``tokenizer`` (predictor runs only) defaults to the published pairing of ``init``.
    """

    init: str | None = None
    config: dict[str, Any] | None = None
    tokenizer: str | None = None
    max_context: int = DEFAULT_MAX_CONTEXT

    def check(self, where: str) -> None:
        if (self.init is None) == (self.config is None):
            raise TrainConfigError(
                f"{where}: give exactly one of model.init (a checkpoint path or hub id) and model.config (a "
                "fresh model's settings)"
            )
        _positive(self.max_context, f"{where}.max_context")


@dataclass
class TrainConfig:
    """``train``: optimisation, schedule, validation, checkpointing and logging.

    Defaults follow the original Kronos fine-tuning: AdamW (betas 0.9/0.95, weight decay 0.1), a
    one-cycle schedule (3% warm-up, start at lr/10), gradient-norm clipping.
    """

    batch_size: int = 50
    lr: float = 4e-5
    epochs: int | None = None
    max_steps: int | None = None
    steps_per_epoch: int | None = None
    accumulation_steps: int = 1
    weight_decay: float = 0.1
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    pct_start: float = 0.03
    div_factor: float = 10.0
    final_div_factor: float = 1e4
    grad_clip: float | None = 3.0
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    teacher_forcing: bool = False
    val_samples: int = 2048
    val_batch_size: int | None = None
    validate_at_start: bool = True
    early_stopping_patience: int | None = None
    early_stopping_min_delta: float = 0.0
    num_workers: int = 0
    log_every: int = 10
    checkpoint_every: int | None = None
    resume: str = "auto"
    device: str = "auto"
    cpu_threads: int | None = None
    distributed: Literal["ddp", "fsdp"] = "ddp"
    progress: bool = True
    tensorboard: bool = True

    def check(self, where: str) -> None:
        if self.epochs is None and self.max_steps is None:
            raise TrainConfigError(f"{where}: give train.epochs or train.max_steps (or both: whichever ends first)")
        for name in (
            "batch_size",
            "epochs",
            "max_steps",
            "steps_per_epoch",
            "accumulation_steps",
            "val_samples",
            "val_batch_size",
            "log_every",
            "checkpoint_every",
            "early_stopping_patience",
            "cpu_threads",
        ):
            _positive(getattr(self, name), f"{where}.{name}")
        for name in ("lr", "eps", "div_factor", "final_div_factor", "grad_clip"):
            _positive(getattr(self, name), f"{where}.{name}")
        for name in ("weight_decay", "early_stopping_min_delta", "num_workers"):
            _positive(getattr(self, name), f"{where}.{name}", allow_zero=True)
        if not 0.0 < self.pct_start < 1.0:
            raise TrainConfigError(f"{where}.pct_start: must be in (0, 1), got {self.pct_start!r}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise TrainConfigError(f"{where}.betas: must be two numbers in [0, 1), got {self.betas!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise TrainConfigError(f"{where}.device: must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")


@dataclass
class RunConfig:
    """A whole training run: ``output_dir``, ``seed`` and the three sections."""

    output_dir: str
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    seed: int = 42
    kind: str | None = None

    def check(self, where: str) -> None:
        if not self.output_dir:
            raise TrainConfigError("output_dir: must name the folder for checkpoints and metrics")
        if self.kind is not None and self.kind not in ("tokenizer", "predictor"):
            raise TrainConfigError(f"kind: must be 'tokenizer' or 'predictor', got {self.kind!r}")

    def for_kind(self, kind: Kind) -> RunConfig:
        """Check the parts that depend on what is trained; returns self for chaining."""
        if self.kind is not None and self.kind != kind:
            raise TrainConfigError(f"kind: this config is for {self.kind} training, not {kind}")
        m = self.model
        if kind == "tokenizer":
            if m.tokenizer is not None:
                raise TrainConfigError(
                    "model.tokenizer: only predictor training uses a tokenizer; remove it for tokenizer training"
                )
            if m.config is not None:
                try:
                    TokenizerConfig.from_dict(m.config, source="model.config")
                except ConfigError as exc:
                    raise TrainConfigError(_in_model_config(exc)) from None
        else:
            if m.config is not None:
                try:
                    KronosConfig.from_dict(m.config, source="model.config")
                except ConfigError as exc:
                    raise TrainConfigError(_in_model_config(exc)) from None
                if m.tokenizer is None:
                    raise TrainConfigError(
                        "model.tokenizer: predictor training needs the tokenizer (checkpoint path or hub id) "
                        "that makes its tokens"
                    )
            elif m.tokenizer is None:
                from kronos.model.registry import resolve_model

                if resolve_model(str(m.init)) is None:
                    raise TrainConfigError(
                        f"model.tokenizer: {m.init!r} is not a published model, so name its tokenizer "
                        "(checkpoint path or hub id)"
                    )
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for writing back to YAML and storing with checkpoints)."""
        return dataclasses.asdict(self)


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


def _in_model_config(exc: Exception) -> str:
    msg = str(exc)
    return msg if msg.startswith("model.config") else f"model.config: {msg}"


def parse_config(data: Mapping[str, Any], *, kind: Kind | None = None, source: str = "config") -> RunConfig:
    """Validate a mapping (a parsed YAML document) into a :class:`RunConfig`.

    Top-level ``tokenizer:`` / ``predictor:`` sections are merged for ``kind`` first
    (see :func:`resolve_kind_sections`).
    """
    if not isinstance(data, Mapping):
        raise TrainConfigError(f"{source}: the top level must be a mapping with output_dir, data, model and train")
    data = resolve_kind_sections(data, kind, source)
    try:
        cfg = _section(RunConfig, data, "")
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
