"""Loading the predictor a program runs: a shipped model, a checkpoint, a hub id, or the random tiny model.

:func:`load_predictor` is what the ``kronos`` commands, the benchmarks and the server load through, so
a model name means the same thing everywhere (:meth:`KronosPredictor.from_pretrained` resolves it with
:func:`kronos.model.registry.resolve_source`, as training does). :func:`random_tiny_predictor` is a randomly
initialised tiny model: it runs the whole pipeline in tests and benchmarks in milliseconds, and forecasts nothing
real.
"""

from __future__ import annotations

import torch

from kronos.forecasting.predictor import KronosPredictor
from kronos.model.kronos import Kronos
from kronos.model.registry import DEFAULT_MODEL
from kronos.model.tokenizer import KronosTokenizer

__all__ = ["load_predictor", "random_tiny_predictor"]


def random_tiny_predictor(seed: int = 0) -> KronosPredictor:
    """A randomly initialised tiny predictor: exercises the pipeline in tests, forecasts nothing real."""
    torch.manual_seed(seed)
    tokenizer = KronosTokenizer(d_model=32, n_heads=2, ff_dim=64, n_enc_layers=2, n_dec_layers=2, s1_bits=4, s2_bits=4)
    model = Kronos(s1_bits=4, s2_bits=4, n_layers=2, d_model=32, n_heads=2, ff_dim=64)
    return KronosPredictor(model, tokenizer, device="cpu", max_context=256)


def load_predictor(
    model: str = DEFAULT_MODEL,
    *,
    tokenizer: str | None = None,
    max_context: int | None = None,
    device: str | None = None,
    random_tiny: bool = False,
) -> KronosPredictor:
    """The predictor for ``model``: a checkpoint directory, hub id or registry name (default ``kronos-open``,
    shipped in the package), or :func:`random_tiny_predictor` when ``random_tiny`` is asked for explicitly."""
    if random_tiny:
        return random_tiny_predictor()
    return KronosPredictor.from_pretrained(model, tokenizer=tokenizer, max_context=max_context, device=device)
