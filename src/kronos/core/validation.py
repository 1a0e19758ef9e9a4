"""Checks of scalar arguments, each raising an error that names the parameter and the value it got.

Why one module: the same "an integer, not a bool, at least 1" test was written out by hand wherever
an argument arrived; here it is written once, so every entry point refuses ``True``, ``2.5`` or
``-1`` the same way and says so in the same words. Model code may import it (numpy only, no pandas).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

from kronos.core.errors import InputError

__all__ = ["InputError", "integer", "number", "one_of", "positive_int", "probability"]

T = TypeVar("T")


def integer(name: str, value: Any, *, minimum: int = 1, error: type[Exception] = InputError) -> int:
    """``value`` as an ``int`` if it is an integer (not a bool) ``>= minimum``; else ``error`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise error(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def positive_int(name: str, value: Any, *, error: type[Exception] = InputError) -> int:
    """An integer ``>= 1`` (the common case of :func:`integer`)."""
    return integer(name, value, minimum=1, error=error)


def number(
    name: str,
    value: Any,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = True,
    high_open: bool = True,
    error: type[Exception] = InputError,
) -> float:
    """``value`` as a finite ``float`` (not a bool) inside ``low .. high``, each end open unless told.

    The message states the interval, e.g. ``top_p must be in (0, 1], got 1.5``.
    """
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        if math.isinf(low) and math.isinf(high):
            where = "a finite number"
        elif math.isinf(high):
            where = f"{'>' if low_open else '>='} {low:g}"
        elif math.isinf(low):
            where = f"{'<' if high_open else '<='} {high:g}"
        else:
            where = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise error(f"{name} must be {where}, got {value!r}")
    return float(value)


def probability(name: str, value: Any, *, error: type[Exception] = InputError) -> float:
    """A number in ``(0, 1]`` (``top_p``, a nucleus mass)."""
    return number(name, value, low=0.0, high=1.0, high_open=False, error=error)


def one_of(name: str, value: T, choices: Sequence[T], *, error: type[Exception] = InputError) -> T:
    """``value`` if it is one of ``choices``; else ``error`` listing them."""
    if value not in choices:
        raise error(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value
