"""The HTML report: the PIT histogram keeps values equal to one, and every page shares one local plotly.js."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kronos.evaluation import report


def test_html_pit_histogram_keeps_values_equal_to_one(tmp_path):
    pit = np.r_[np.ones(57), np.linspace(0.0, 0.95, 43)]
    forecasts = pd.DataFrame({"forecaster": "persistence", "pit": pit})
    metrics = pd.DataFrame(columns=["forecaster", "series", "step", "mae_ret", "crps_ret"])
    figs = report.evaluation_plotly(forecasts, metrics)
    bars = [t for f in figs for t in f.data if t.type == "bar"]
    assert len(bars) == 1
    density = np.asarray(bars[0].y)
    assert density.sum() * 0.1 == pytest.approx(1.0)  # nothing dropped, nothing renormalised
    assert density[-1] == pytest.approx((57 + np.sum(pit[57:] >= 0.9)) / 100 * 10)


def test_html_reports_share_one_local_plotly_js(tmp_path):
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 2]))
    a = report.write_html(tmp_path / "a.html", "A", [("plots", [fig])])
    b = report.write_html(tmp_path / "b.html", "B", [("plots", [fig, pd.DataFrame({"x": [1]})])])
    scripts = list(tmp_path.glob("plotly-*.min.js"))
    assert len(scripts) == 1 and scripts[0].stat().st_size > 1_000_000
    for page in (a, b):
        text = page.read_text()
        assert page.stat().st_size < 50_000 and f"<script src='{scripts[0].name}'></script>" in text
