"""Shared flags: options that mean the same in several commands have one flag and one default."""

from __future__ import annotations

import kronos.cli.commands  # noqa: F401  (registers every command on the app)
from kronos.forecasting.prepared import AUTO, ENSEMBLE
from kronos.model.registry import DEFAULT_LOOKBACK, DEFAULT_MODEL, resolve_model
from tests.helpers import leaf_commands as _commands

SHARED = ("lookback", "pred_len", "samples", "seed", "temperature", "top_k", "top_p", "model", "device", "max_context")


def test_options_that_mean_the_same_have_the_same_flag_and_default():
    seen: dict[str, dict[tuple, tuple[str, ...]]] = {name: {} for name in SHARED}  # variant -> commands
    for words, cmd in _commands().items():
        for p in cmd.params:
            if p.name in seen:
                key = (tuple(sorted(p.opts)), p.default)
                seen[p.name][key] = seen[p.name].get(key, ()) + (" ".join(words),)
    # --lookback means two things: the windows a forecast conditions on (forecast commands: an ensemble by default),
    # and the history every forecaster gets at an origin (evaluate/backtest: auto, 512 bars)
    windows = {(("--lookback",), AUTO): ("evaluate", "backtest")}
    for key, commands in windows.items():
        assert seen["lookback"].pop(key) == commands
    for name, variants in seen.items():
        assert len(variants) <= 1, f"{name} differs between commands: {variants}"
    (lookback_default,) = [default for _, default in seen["lookback"]]
    assert lookback_default == ENSEMBLE  # windows of max_context - pred_len, 128 and 64 bars, paths pooled
    assert resolve_model(DEFAULT_MODEL).max_context == DEFAULT_LOOKBACK  # evaluate/backtest's auto window
    users = {c for v in seen["lookback"].values() for c in v}
    assert {"forecast", "forecast-dist", "demo"} <= users
