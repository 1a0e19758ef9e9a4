"""The training run's schema: one dataclass per section of the YAML file, with the checks of its values.

Sections (see ``docs/training.md`` for every key)::

    output_dir: runs/my-run
    seed: 42
    data:  {paths | qlib, lookback, horizon, val_fraction, ...}
    model: {init | config, tokenizer, max_context}
    train: {batch_size, lr, epochs | max_steps, ...}

The field types say how strictly a YAML value is read (:class:`YamlValue`): ``true`` is not a number and
``1`` is not a switch, while the conversions YAML makes necessary are allowed (``lr: 1e-4``, which YAML 1.1
reads as a string; ``max_steps: 1.0e+4``; a number where text is expected). Reading a file into these
classes, and turning a mistake into one message naming the key, is :mod:`kronos.training.config`; the
``check`` methods here say which values are out of range or do not fit together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

from kronos.model.config import DEFAULT_CLIP, DEFAULT_MAX_CONTEXT, ConfigError, KronosConfig, TokenizerConfig
from kronos.training.corpus import FREQUENCY_GROUPS
from kronos.training.splits import CorpusError, GapRule, SplitSpec

__all__ = ["DataConfig", "Kind", "ModelConfig", "QlibConfig", "RunConfig", "TrainConfig", "TrainConfigError"]

Kind = Literal["tokenizer", "predictor"]


class TrainConfigError(ConfigError):
    """The training configuration has an unknown key, a missing key or a bad value (named in the message)."""


# -- how YAML values become field values --------------------------------------------------------------


def _unchanged(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class YamlValue:
    """``Annotated`` metadata: convert a YAML value with ``convert``, then accept only the field's own type.

    Pydantic (which :mod:`kronos.training.config` validates with) reads this through
    ``__get_pydantic_core_schema__``; this module itself never imports it, so the schema is there
    without the ``train`` extra. ``strict=False`` leaves the inner type's own rules (for sections).
    """

    convert: Callable[[Any], Any] = _unchanged
    strict: bool = True

    def __get_pydantic_core_schema__(self, source: Any, handler: Callable[[Any], Any]) -> Any:
        from pydantic_core import core_schema

        inner = handler(source)
        if self.strict:
            inner = {**inner, "strict": True}
        return core_schema.no_info_before_validator_function(self.convert, inner)


def _whole_number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _numeric_text(value: Any) -> Any:
    if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    return value


def _number_as_text(value: Any) -> Any:
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _empty_if_none(value: Any) -> Any:
    return {} if value is None else value  # `train:` with nothing under it is the section's defaults


T = TypeVar("T")
Int = Annotated[int, YamlValue(_whole_number)]
Number = Annotated[float, YamlValue(_numeric_text)]
Flag = Annotated[bool, YamlValue()]
Text = Annotated[str, YamlValue(_number_as_text)]
Section = Annotated[T, YamlValue(_empty_if_none, strict=False)]

#: Each section's pydantic configuration: a key that is not a field is an error, not ignored.
UNKNOWN_KEYS_FORBIDDEN: dict[str, Any] = {"extra": "forbid"}


def _positive(value: Any, where: str, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if (value < 0) if allow_zero else (value <= 0):
        raise TrainConfigError(f"{where}: must be {'non-negative' if allow_zero else 'positive'}, got {value!r}")


# -- the sections -----------------------------------------------------------------------------------


@dataclass
class QlibConfig:
    """``data.qlib``: read bars from a Qlib provider directory instead of files."""

    __pydantic_config__ = UNKNOWN_KEYS_FORBIDDEN

    provider_uri: Text
    instruments: Text | list[Text] = "all"
    freq: Text = "day"
    start_time: Text | None = None
    end_time: Text | None = None
    region: Text = "cn"
    use_pyqlib: Flag | None = False

    def check(self, where: str) -> None:
        """Raise :class:`TrainConfigError` (naming the key under ``where``) when the values do not fit together."""
        if not self.provider_uri:
            raise TrainConfigError(f"{where}.provider_uri: must name a Qlib provider directory")


@dataclass
class DataConfig:
    """``data``: where the bars come from, window geometry, time split and gap rule."""

    __pydantic_config__ = UNKNOWN_KEYS_FORBIDDEN

    paths: list[Text] = field(default_factory=list)
    glob: Text | None = None
    qlib: QlibConfig | None = None
    symbol_column: Text = "symbol"
    timestamp_column: Text | None = None
    symbols: list[Text] | None = None
    lookback: Int = 90
    horizon: Int = 10
    val_fraction: Number = 0.1
    test_fraction: Number = 0.0
    val_start: Text | None = None
    test_start: Text | None = None
    max_gap: Text | None = "auto"
    clip: Number = DEFAULT_CLIP
    corpus_dir: Text | None = None
    min_rows: Int = 1

    def check(self, where: str) -> None:
        """Raise :class:`TrainConfigError` (naming the key under ``where``) when the values do not fit together."""
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
        try:
            GapRule(max_gap=self.max_gap)
        except CorpusError as exc:
            raise TrainConfigError(f"{where}.max_gap: {exc}") from None
        try:
            self.split_spec()
        except CorpusError as exc:
            raise TrainConfigError(f"{where}: {exc}") from None

    def split_spec(self) -> SplitSpec:
        """The :class:`~kronos.training.splits.SplitSpec` these keys describe (dates win over fractions)."""
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

    __pydantic_config__ = UNKNOWN_KEYS_FORBIDDEN

    init: Text | None = None
    config: dict[str, Any] | None = None
    tokenizer: Text | None = None
    max_context: Int = DEFAULT_MAX_CONTEXT

    def check(self, where: str) -> None:
        """Raise :class:`TrainConfigError` (naming the key under ``where``) when the values do not fit together."""
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
    one-cycle schedule (3% warm-up, start at lr/10), gradient-norm clipping, windows drawn uniformly.

    ``schedule: wsd`` is warm-up / stable / decay instead: linear warm-up over ``pct_start``, the full rate
    until the last ``decay_fraction`` of the steps, then a linear fall to ``lr / final_div_factor``; a run
    can be continued from its stable phase and decayed again. ``sampling: frequency`` draws windows so
    that each frequency group (daily, hourly, intraday; ``group_weights``, equal by default) gets its
    share of the draws however many bars it has, and validates on an equal number from each.
    ``targets: forecast`` (predictor) scores only the bars after each window's normalised part, its first ``L``
    bars (``data.lookback``, or drawn per window down to ``min_lookback``): why, in ``docs/training.md``.
    """

    __pydantic_config__ = UNKNOWN_KEYS_FORBIDDEN

    batch_size: Int = 50
    lr: Number = 4e-5
    epochs: Int | None = None
    max_steps: Int | None = None
    steps_per_epoch: Int | None = None
    accumulation_steps: Int = 1
    weight_decay: Number = 0.1
    betas: list[Number] = field(default_factory=lambda: [0.9, 0.95])
    eps: Number = 1e-8
    schedule: Literal["onecycle", "wsd"] = "onecycle"
    pct_start: Number = 0.03
    div_factor: Number = 10.0
    final_div_factor: Number = 1e4
    decay_fraction: Number = 0.2
    sampling: Literal["uniform", "frequency"] = "uniform"
    group_weights: dict[str, Number] | None = None
    grad_clip: Number | None = 3.0
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    teacher_forcing: Flag = False
    targets: Literal["all", "forecast"] = "all"
    min_lookback: Int | None = None
    val_samples: Int = 2048
    val_batch_size: Int | None = None
    validate_at_start: Flag = True
    early_stopping_patience: Int | None = None
    early_stopping_min_delta: Number = 0.0
    num_workers: Int = 0
    log_every: Int = 10
    checkpoint_every: Int | None = None
    resume: Text = "auto"
    device: Text = "auto"
    cpu_threads: Int | None = None
    distributed: Literal["ddp", "fsdp"] = "ddp"
    progress: Flag = True
    tensorboard: Flag = True

    def check(self, where: str) -> None:
        """Raise :class:`TrainConfigError` (naming the key under ``where``) when the values do not fit together."""
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
            "min_lookback",
        ):
            _positive(getattr(self, name), f"{where}.{name}")
        for name in ("lr", "eps", "div_factor", "final_div_factor", "grad_clip"):
            _positive(getattr(self, name), f"{where}.{name}")
        for name in ("weight_decay", "early_stopping_min_delta", "num_workers"):
            _positive(getattr(self, name), f"{where}.{name}", allow_zero=True)
        if not 0.0 < self.pct_start < 1.0:
            raise TrainConfigError(f"{where}.pct_start: must be in (0, 1), got {self.pct_start!r}")
        if not 0.0 < self.decay_fraction <= 1.0 - self.pct_start:
            raise TrainConfigError(
                f"{where}.decay_fraction: must be in (0, 1 - pct_start], got {self.decay_fraction!r}"
            )
        if self.group_weights is not None:
            if self.sampling != "frequency":
                raise TrainConfigError(f"{where}.group_weights: only used with sampling: frequency")
            unknown = sorted(set(self.group_weights) - set(FREQUENCY_GROUPS))
            if unknown:
                raise TrainConfigError(
                    f"{where}.group_weights: unknown group {unknown[0]!r}; the groups are {list(FREQUENCY_GROUPS)}"
                )
            for name, value in self.group_weights.items():
                _positive(value, f"{where}.group_weights.{name}", allow_zero=True)
            if not any(v > 0 for v in self.group_weights.values()):
                raise TrainConfigError(f"{where}.group_weights: at least one group needs a positive weight")
        if self.min_lookback is not None and self.targets != "forecast":
            raise TrainConfigError(f"{where}.min_lookback: only used with targets: forecast")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise TrainConfigError(f"{where}.betas: must be two numbers in [0, 1), got {self.betas!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise TrainConfigError(f"{where}.device: must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")

    def group_shares(self) -> list[float] | None:
        """Per group of ``FREQUENCY_GROUPS``, its share of the training draws (None: uniform over windows)."""
        if self.sampling == "uniform":
            return None
        weights = self.group_weights or dict.fromkeys(FREQUENCY_GROUPS, 1.0)
        return [float(weights.get(g, 0.0)) for g in FREQUENCY_GROUPS]


@dataclass
class RunConfig:
    """A whole training run: ``output_dir``, ``seed`` and the three sections."""

    __pydantic_config__ = UNKNOWN_KEYS_FORBIDDEN

    output_dir: Text
    data: Section[DataConfig]
    model: Section[ModelConfig]
    train: Section[TrainConfig]
    seed: Int = 42
    kind: Text | None = None

    def check(self, where: str) -> None:
        """Raise :class:`TrainConfigError` (naming the key under ``where``) when the values do not fit together."""
        if not self.output_dir:
            raise TrainConfigError("output_dir: must name the folder for checkpoints and metrics")
        if self.kind is not None and self.kind not in ("tokenizer", "predictor"):
            raise TrainConfigError(f"kind: must be 'tokenizer' or 'predictor', got {self.kind!r}")
        low, lookback = self.train.min_lookback, self.data.lookback
        if low is not None and low > lookback:
            raise TrainConfigError(f"train.min_lookback: must be at most data.lookback ({lookback}), got {low}")

    def for_kind(self, kind: Kind) -> RunConfig:
        """Check the parts that depend on what is trained; returns self for chaining."""
        if self.kind is not None and self.kind != kind:
            raise TrainConfigError(f"kind: this config is for {self.kind} training, not {kind}")
        m = self.model
        if kind == "tokenizer":
            if self.train.targets != "all":
                raise TrainConfigError("train.targets: only predictor training chooses its targets")
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


def _in_model_config(exc: Exception) -> str:
    msg = str(exc)
    return msg if msg.startswith("model.config") else f"model.config: {msg}"


def check_sections(cfg: RunConfig) -> None:
    """Run every section's ``check`` (inner sections first, in field order), then the run's own."""

    def visit(section: Any, where: str) -> None:
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if dataclasses.is_dataclass(value):
                visit(value, f"{where}.{f.name}" if where else f.name)
        section.check(where)

    visit(cfg, "")
