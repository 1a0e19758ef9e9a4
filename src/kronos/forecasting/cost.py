"""What a forecast costs before it runs: model work and peak memory, and the memory limit every API checks.

Why: one request with many paths, a long horizon or a huge batch can hold the machine for minutes or push
it into swap. The estimate is cheap (arithmetic on the model's configuration), so every API can check it
before generating: the predictor (and so the CLI) refuses a run whose memory estimate exceeds
:func:`memory_limit`, and the server prices each request in seconds of model time (``work / rate``).

The model (cached generation, :mod:`kronos.inference.generation`): every sample path evaluates one token per
forecast bar; once the history plus the generated bars exceed ``max_context``, each further bar recomputes
the whole ``max_context`` window (``window="exact"``), which costs :data:`RECOMPUTE_WEIGHT` of an
incremental step per token (measured: a full-window recompute runs ~8x more tokens per second than one-token
steps, which read the whole key/value cache). Work is in parameter-token evaluations (tokens x parameters).
Memory counts the key/value cache of every row, the attention scores of a full-window recompute, the logits,
the token sequences and the paths.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from kronos.core.errors import InputError
from kronos.model.config import KronosConfig

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "MEMORY_LIMIT_ENV",
    "MEMORY_MARGIN",
    "RECOMPUTE_WEIGHT",
    "RunCost",
    "cached_positions",
    "check_config_size",
    "estimate_run",
    "format_bytes",
    "kv_bytes_per_position",
    "memory_limit",
    "parse_bytes",
]

#: A token of a full-window recompute costs this share of a one-token cached step (measured, see above).
RECOMPUTE_WEIGHT = 0.125
#: What the terms above leave out (the tokenizer decoding every path's window, allocator slack): measured with
#: kronos-open, the terms alone came to 70-90% of the growth in resident memory, so they are scaled by 1.5.
MEMORY_MARGIN = 1.5
#: The environment variable that overrides the memory limit (bytes, or with a unit: ``16G``, ``512MiB``).
MEMORY_LIMIT_ENV = "KRONOS_MEMORY_LIMIT"
#: The default limit: 8 GiB, or half the machine's physical memory if that is less.
DEFAULT_MEMORY_LIMIT = 8 << 30

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


@dataclass(frozen=True)
class RunCost:
    """The estimate of one generation run: ``work`` in parameter-token evaluations, ``memory`` in bytes."""

    work: float
    memory: int
    rows: int  # series x sample paths generated together


def cached_positions(window: int, pred_len: int, shared_prefix: bool) -> tuple[int, int]:
    """``(per path, per series)`` key/value cache positions of one series over a ``window``-bar context.

    With a shared prefix the series holds its window once and each path only its generated positions;
    without, every path holds the whole window.
    """
    if shared_prefix:
        return min(pred_len, window), window
    return window, 0


def kv_bytes_per_position(config: KronosConfig, itemsize: int) -> int:
    """Bytes of one cached position: a key and a value per layer, plus the dependency layer's."""
    return config.d_model * itemsize * 2 * (config.n_layers + 1)


def estimate_run(
    config: KronosConfig,
    parameters: int,
    max_context: int,
    history: int,
    pred_len: int,
    rows: int,
    itemsize: int = 4,
    *,
    shared_prefix: bool = False,
    series: int = 1,
) -> RunCost:
    """Work and peak memory of generating ``pred_len`` bars for ``rows`` paths from ``history`` bars.

    ``history`` is the number of bars the model conditions on (after the lookback is applied); it is
    the longest one when series of different lengths share a run. With ``shared_prefix`` (the default of
    :class:`~kronos.inference.options.SamplingOptions`) the ``series`` keep one copy of their window's
    keys and values and each path only its generated positions.
    """
    hist = min(history, max_context)
    slid = max(0, hist + pred_len - max_context)  # steps that recompute the whole window
    window = min(max_context, history + pred_len)
    per_row_tokens = pred_len + slid * max_context * RECOMPUTE_WEIGHT
    work = rows * per_row_tokens * parameters + hist * RECOMPUTE_WEIGHT * parameters
    d = config.d_model
    per_path, per_series = cached_positions(window, pred_len, shared_prefix)
    kv = kv_bytes_per_position(config, itemsize) * per_path
    shared = kv_bytes_per_position(config, itemsize) * per_series * series
    # one layer's attention scores and feed-forward activations live at once when the window is recomputed
    recompute = (config.n_heads * window * window * 2 + window * (config.ff_dim + 4 * d)) * itemsize if slid else 0
    logits = ((1 << config.s1_bits) + (1 << config.s2_bits)) * itemsize * 2
    tokens = (history + pred_len) * 8 * 2
    paths = pred_len * (2 * 4 + 6 * 8 * 3)  # uniforms; float paths, de-normalised and repaired copies
    per_row = kv + recompute + logits + tokens + paths
    return RunCost(work=float(work), memory=int(MEMORY_MARGIN * (rows * per_row + shared)), rows=rows)


def parse_bytes(text: str | int) -> int:
    """``"16G"``, ``"512MiB"``, ``"1.5g"`` or a plain number of bytes, as bytes; an error names the value."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgtb]?)(?:i?b)?\s*", str(text), re.IGNORECASE)
        if match is None:
            raise InputError(f"cannot read {text!r} as a size in bytes (e.g. 8G, 512MiB, 1000000)")
        value = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if value <= 0:
        raise InputError(f"a memory limit must be positive, got {text!r}")
    return value


def format_bytes(n: float) -> str:
    """Bytes in the largest binary unit that keeps a number >= 1: ``3.2 GiB``."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def memory_limit() -> int:
    """The most memory one generation run may need: ``$KRONOS_MEMORY_LIMIT`` if set, else the default.

    The default is :data:`DEFAULT_MEMORY_LIMIT` or half of the physical memory, whichever is less, so a
    run that would swap is refused rather than started.
    """
    given = os.environ.get(MEMORY_LIMIT_ENV)
    if given:
        try:
            return parse_bytes(given)
        except InputError as exc:
            raise InputError(f"{MEMORY_LIMIT_ENV}: {exc}") from None
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not every platform has these
        return DEFAULT_MEMORY_LIMIT
    return min(DEFAULT_MEMORY_LIMIT, physical // 2)


def _weights_bytes(cfg: dict) -> float:
    """Bytes of float32 weights a model or tokenizer ``config.json`` asks for (blocks and embeddings)."""
    d = float(cfg.get("d_model", 0) or 0)
    ff = float(cfg.get("ff_dim", 0) or 0)
    layers = float(cfg.get("n_layers", 0) or 0) + float(cfg.get("n_enc_layers", 0) or 0)
    layers += float(cfg.get("n_dec_layers", 0) or 0)
    vocab = 2.0 ** min(float(cfg.get("s1_bits", 0) or 0), 40) + 2.0 ** min(float(cfg.get("s2_bits", 0) or 0), 40)
    return 4.0 * (layers * (4 * d * d + 3 * d * ff) + 2 * vocab * d)


def check_config_size(directory: str | os.PathLike) -> None:
    """Refuse a local checkpoint whose ``config.json`` asks for weights over :func:`memory_limit`, naming the file.

    Why: building a model with ``d_model`` 65536 would otherwise end in an allocator error that names no
    file (or in swap). A directory without ``config.json`` (a hub id) or an unreadable one is left to the loader.
    """
    path = Path(directory) / "config.json"
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(cfg, dict):
        return
    try:
        need = 2 * _weights_bytes(cfg)  # the initialised model and the loaded weights
    except (TypeError, ValueError, OverflowError):
        return  # a malformed value: the config's own checks name it
    limit = memory_limit()
    if need > limit:
        sizes = ", ".join(f"{k}={cfg[k]}" for k in ("d_model", "n_layers", "ff_dim", "s1_bits", "s2_bits") if k in cfg)
        raise InputError(
            f"{path}: {sizes} need an estimated {format_bytes(need)} to load, over the memory limit of "
            f"{format_bytes(limit)} (raise it with {MEMORY_LIMIT_ENV}=...)"
        )
