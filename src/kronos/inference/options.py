"""How paths are sampled: one frozen, validated :class:`SamplingOptions` from the public API down to the sampler.

Why: ``forecast``, ``forecast_batch``, ``forecast_df``, the panel and synthesis each took the same
dozen keywords with their own defaults and checked them again on every call. Now the settings are
checked once, when the object is made (the error names the parameter and the value), and passed down
unchanged: the predictor, :mod:`kronos.inference.generation` and :mod:`kronos.forecasting.calibration` trust them.

The defaults are the forecasting defaults (every sample of the distribution: ``top_p=1.0``, 100
paths). The original ``predict``/``predict_batch`` keep their own signature and defaults
(``top_p=0.9``, one path) and build an object from them.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from kronos.core.errors import InputError
from kronos.core.validation import integer, number, one_of, positive_int, probability

__all__ = ["DRAWS", "WINDOW_MODES", "SamplingOptions", "WindowMode", "derive_origin_seed", "derive_seed"]

WindowMode = Literal["exact", "block"]
#: ``exact`` recomputes the last ``max_context`` bars once the window slides (the original);
#: ``block`` drops ``block`` bars at once and runs cached until full again (faster, approximate).
WINDOW_MODES: tuple[str, ...] = ("exact", "block")
#: How a token is drawn without per-series seeds: ``uniform`` inverts each row's distribution at a uniform from the
#: generator (one ``torch.rand`` per run); ``multinomial`` is the original's ``torch.multinomial`` stream, which
#: costs an exponential draw per vocabulary entry and row (about 4x the time for hundreds of paths).
DRAWS: tuple[str, ...] = ("uniform", "multinomial")


@dataclass(frozen=True)
class SamplingOptions:
    """Sampling and generation settings of a forecast, validated once on construction.

    Attributes:
        temperature: logits are divided by it before sampling (> 0; ``T`` in the original API).
        top_k: keep the ``k`` most likely tokens (0 disables it; when > 0, ``top_p`` is ignored).
        top_p: keep the smallest set of tokens whose probability reaches it, in (0, 1] (1 keeps all).
        sample_count: sample paths per series (>= 1).
        use_cache: generate with a key/value cache (``False`` runs the original algorithm).
        window: ``"exact"`` or ``"block"``, how the context slides past ``max_context``.
        block: tokens dropped at once in ``"block"`` mode (None: ``max_context // 4``).
        batch_size: series generated at once (None: all of them, or as many as fit a ~2 GiB key/value
            cache when every series has its own seed).
        share_prefix: the sample paths of a series read one copy of its history's keys and values
            (cascade attention, :mod:`kronos.model.cascade`); False gives every path its own copy, the
            previous implementation (the same tokens up to floating-point rounding; for benchmarks).
        draws: without per-series seeds, ``"uniform"`` (default: every token the inverse CDF of a uniform drawn
            from the generator, as seeded forecasts draw) or ``"multinomial"`` (``torch.multinomial``: the
            original's random stream, which the original-compatible ``predict``/``predict_batch`` keep so that
            ``torch.manual_seed`` gives the original's numbers). Per-series seeds always draw uniforms.
        anchor: paths start from the last bar as given (default): the tokenizer's reconstruction error of the last
            history bar is added to every generated bar. Generated bars are decoded reconstructions, and without
            it every path continues from the reconstruction of the last bar, a jump of about half a bar's typical
            move in normalised units at the first step (kronos-open: CRPS of 5-bar close returns 2.4% lower with
            it on the validation period, ``docs/probabilistic.md``). ``False``: the original's paths, as
            ``predict``/``predict_batch`` keep.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    sample_count: int = 100
    use_cache: bool = True
    window: str = "exact"
    block: int | None = None
    batch_size: int | None = None
    share_prefix: bool = True
    draws: str = "uniform"
    anchor: bool = True

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise numpy scalars to plain Python once
        set_(self, "temperature", number("T (temperature)", self.temperature, low=0.0))
        set_(self, "top_k", integer("top_k", self.top_k, minimum=0))
        set_(self, "top_p", probability("top_p", self.top_p))
        set_(self, "sample_count", positive_int("sample_count", self.sample_count))
        for flag in ("use_cache", "share_prefix", "anchor"):
            value = getattr(self, flag)
            if not isinstance(value, (bool, np.bool_)):
                raise InputError(f"{flag} must be True or False, got {value!r}")
            set_(self, flag, bool(value))
        one_of("window", self.window, WINDOW_MODES)
        one_of("draws", self.draws, DRAWS)
        if self.block is not None:
            set_(self, "block", positive_int("block", self.block))
        if self.batch_size is not None:
            set_(self, "batch_size", positive_int("batch_size", self.batch_size))

    @classmethod
    def resolve(cls, options: SamplingOptions | None = None, /, **overrides: Any) -> SamplingOptions:
        """``options`` (default: ``SamplingOptions()``) with ``overrides`` replaced, validated.

        Keywords are the field names; ``T`` is accepted for ``temperature`` (the original's name).
        An unknown keyword is an :class:`InputError` listing the known ones.
        """
        if options is not None and not isinstance(options, SamplingOptions):
            raise InputError(f"options must be a SamplingOptions, got {type(options).__name__}")
        if "T" in overrides:
            if "temperature" in overrides:
                raise InputError("give the temperature once: T or temperature, not both")
            overrides["temperature"] = overrides.pop("T")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise InputError(f"unknown sampling option(s) {unknown}; the options are {names} (and T)")
        base = cls() if options is None else options
        return dataclasses.replace(base, **overrides) if overrides else base

    def info(self) -> dict[str, Any]:
        """The settings a :class:`~kronos.forecasting.forecast.Forecast` records (``T``, ``top_k``, ``top_p``,
        ``sample_count``, ``anchor``)."""
        return {
            "T": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "sample_count": self.sample_count,
            "anchor": self.anchor,
        }


def derive_seed(seed: int, key: Any) -> int:
    """A stable 63-bit seed from a parent ``seed`` and a ``key`` (its string form): a series, an origin.

    Independent streams for every key, the same on every machine and process.
    """
    hi, lo = _seed_words([int(seed) & 0xFFFFFFFF, (int(seed) >> 32) & 0xFFFFFFFF, _key_word(key)], 2)
    return (int(hi) << 31) ^ int(lo)


def derive_origin_seed(seed: int, series: str, origin_ns: int) -> int:
    """The 32-bit seed of one forecast origin of a rolling evaluation: (run ``seed``, ``series``, origin time).

    ``origin_ns`` is the origin's time in nanoseconds (``pd.Timestamp.value``). The seed depends on nothing
    after the origin, which is what makes rolling evaluation free of look-ahead. It is :func:`derive_seed`'s
    mixing with another key layout (the origin time as its own word, the low 32 bits of ``seed`` only, one
    32-bit word out): the evaluation's published numbers were drawn from these seeds, so the layout is kept.
    """
    stamp = int(origin_ns) & 0xFFFFFFFFFFFFFFFF
    return int(_seed_words([int(seed) & 0xFFFFFFFF, _key_word(series), stamp], 1)[0])


def _key_word(key: Any) -> int:
    """A key as one 32-bit word: the CRC-32 of its UTF-8 string form."""
    return zlib.crc32(str(key).encode("utf-8"))


def _seed_words(entropy: list[int], count: int) -> np.ndarray:
    """``count`` 32-bit words mixed from ``entropy`` by NumPy's ``SeedSequence``: the one derivation of every seed."""
    return np.random.SeedSequence(entropy).generate_state(count, dtype=np.uint32)
