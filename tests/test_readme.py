"""The README's Python examples run as written, in order, in a bare clone (bundled samples, shipped model)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_examples_run(tmp_path):
    text = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2, "README should show the drop-in API and the probabilistic forecast"
    work = tmp_path / "repo"  # a stand-in checkout, so the examples' files land in tmp_path
    work.mkdir()
    cwd = os.getcwd()
    os.chdir(work)
    namespaces = []
    try:
        for i, block in enumerate(blocks):
            namespace: dict = {}
            exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
            namespaces.append(namespace)
    finally:
        os.chdir(cwd)
    first, second = namespaces[0], namespaces[1]
    assert first["pred"].shape == (10, 6)  # the shipped model on the bundled sample
    assert list(first["pred"].columns) == ["open", "high", "low", "close", "volume", "amount"]
    assert first["fc"].paths.shape == (50, 10, 6)
    assert second["fc"].is_calibrated
    assert (work / "forecast.png").stat().st_size > 0 and (work / "forecast.html").stat().st_size > 0
