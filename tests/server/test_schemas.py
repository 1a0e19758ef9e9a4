"""The request schema: a request that names no sampling setting samples with the library's defaults."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")


def test_api_defaults_are_the_library_defaults():
    """A request that names no sampling setting samples as forecast() and every command do."""
    from kronos.forecasting.panel import DEFAULT_QUANTILES
    from kronos.inference.options import SamplingOptions
    from kronos.server.schemas import ForecastRequest

    req = ForecastRequest(bars=[], pred_len=1)
    lib = SamplingOptions()
    assert (req.sample_count, req.T, req.top_p) == (lib.sample_count, lib.temperature, lib.top_p)
    assert req.quantiles == list(DEFAULT_QUANTILES)
