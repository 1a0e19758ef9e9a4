"""Configuration dataclasses for the Kronos tokenizer and predictor.

Each dataclass's fields are exactly the keys of the published ``config.json`` files, so a checkpoint
directory round-trips through :meth:`to_dict` / :meth:`from_dict` unchanged, and the original
implementation can read what we write. Validation lives in ``__post_init__`` so that a bad value is
reported where it enters, with its name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from kronos.core.validation import number, positive_int

__all__ = ["DEFAULT_CLIP", "DEFAULT_MAX_CONTEXT", "ConfigError", "KronosConfig", "TokenizerConfig"]

#: Bars the predictor attends to when neither the caller nor the checkpoint's ``predictor.json`` says:
#: the original's default (the published small and base models' context).
DEFAULT_MAX_CONTEXT = 512
#: Normalised inputs are clipped to ``±DEFAULT_CLIP`` standard deviations, as the published models were trained.
DEFAULT_CLIP = 5.0

C = TypeVar("C", bound="_ConfigBase")


class ConfigError(ValueError):
    """A configuration (or a checkpoint's ``config.json``) is missing a key, has an unknown key or a bad value."""


class _ConfigBase:
    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` contents: constructor keyword arguments, nothing else."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any], *, source: str = "config", require_all: bool = False) -> C:
        """Build from a mapping, rejecting unknown keys by name.

        ``require_all`` (used for checkpoint ``config.json`` files, which list every key) also rejects
        missing keys instead of filling in defaults.
        """
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        required = (
            names
            if require_all
            else {
                f.name
                for f in fields(cls)  # type: ignore[arg-type]
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            }
        )
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {unknown} for {cls.__name__}; expected keys are {sorted(names)}"
            )
        missing = sorted(required - set(data))
        if missing:
            raise ConfigError(f"{source}: missing key(s) {missing} for {cls.__name__}")
        return cls(**dict(data))

    def _check_positive_int(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            positive_int(f"{type(self).__name__}.{name}", value, error=ConfigError)

    def _check_probability(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            number(f"{type(self).__name__}.{name}", value, low=0.0, high=1.0, low_open=False, error=ConfigError)

    def _check_heads(self) -> None:
        d_model, n_heads = self.d_model, self.n_heads  # type: ignore[attr-defined]
        if d_model % n_heads:
            raise ConfigError(f"{type(self).__name__}: d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        if (d_model // n_heads) % 2:
            raise ConfigError(
                f"{type(self).__name__}: head size d_model/n_heads ({d_model // n_heads}) must be even for "
                "rotary embeddings"
            )


@dataclass
class TokenizerConfig(_ConfigBase):
    """Hyper-parameters of :class:`kronos.KronosTokenizer` (keys of the tokenizer's ``config.json``).

    ``n_enc_layers`` and ``n_dec_layers`` follow the published convention: the module holds
    ``n - 1`` transformer blocks on each side (a checkpoint quirk kept for compatibility).
    """

    d_in: int = 6
    d_model: int = 256
    n_heads: int = 4
    ff_dim: int = 512
    n_enc_layers: int = 4
    n_dec_layers: int = 4
    ffn_dropout_p: float = 0.0
    attn_dropout_p: float = 0.0
    resid_dropout_p: float = 0.0
    s1_bits: int = 10
    s2_bits: int = 10
    beta: float = 0.05
    gamma0: float = 1.0
    gamma: float = 1.1
    zeta: float = 0.05
    group_size: int = 4

    def __post_init__(self) -> None:
        self._check_positive_int(
            "d_in", "d_model", "n_heads", "ff_dim", "n_enc_layers", "n_dec_layers", "s1_bits", "s2_bits", "group_size"
        )
        self._check_probability("ffn_dropout_p", "attn_dropout_p", "resid_dropout_p")
        self._check_heads()
        # The half-split decode (coarse ids, fine ids) uses codebook_dim // 2 bits per half, as the
        # original does, so the two halves must be the same size.
        if self.s1_bits != self.s2_bits:
            raise ConfigError(f"TokenizerConfig: s1_bits ({self.s1_bits}) must equal s2_bits ({self.s2_bits})")
        if (self.s1_bits + self.s2_bits) % self.group_size:
            raise ConfigError(
                f"TokenizerConfig: s1_bits + s2_bits ({self.s1_bits + self.s2_bits}) must be divisible by "
                f"group_size ({self.group_size})"
            )

    @property
    def codebook_dim(self) -> int:
        return self.s1_bits + self.s2_bits


@dataclass
class KronosConfig(_ConfigBase):
    """Hyper-parameters of the autoregressive :class:`kronos.Kronos` model (keys of its ``config.json``)."""

    s1_bits: int = 10
    s2_bits: int = 10
    n_layers: int = 8
    d_model: int = 512
    n_heads: int = 8
    ff_dim: int = 1024
    ffn_dropout_p: float = 0.0
    attn_dropout_p: float = 0.0
    resid_dropout_p: float = 0.0
    token_dropout_p: float = 0.0
    learn_te: bool = True

    def __post_init__(self) -> None:
        self._check_positive_int("s1_bits", "s2_bits", "n_layers", "d_model", "n_heads", "ff_dim")
        self._check_probability("ffn_dropout_p", "attn_dropout_p", "resid_dropout_p", "token_dropout_p")
        self._check_heads()
        if self.d_model % 4 or (self.d_model // 4) % 2:
            raise ConfigError(
                f"KronosConfig: d_model ({self.d_model}) must split into 4 heads of even size for the dependency layer"
            )
        if not isinstance(self.learn_te, bool):
            raise ConfigError(f"KronosConfig.learn_te must be a boolean, got {self.learn_te!r}")
