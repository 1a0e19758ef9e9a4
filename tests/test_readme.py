"""The README's Python example runs as written (from the repository root, with ../shared beside it)."""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(tiny_reference, shared_data, capsys):
    text = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no Python example"
    cwd = os.getcwd()
    os.chdir(REPO_ROOT)
    try:
        namespace: dict = {}
        exec(compile(blocks[0], "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    pred = namespace["pred"]
    assert pred.shape == (24, 6)
    assert list(pred.columns) == ["open", "high", "low", "close", "volume", "amount"]
    assert namespace["fc"].paths.shape == (50, 24, 6)
