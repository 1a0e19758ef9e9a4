"""Shared test fixtures: where ``../shared`` lives, and skipping rules for it.

Tests that need the shared market data or reference fixtures skip with a reason when the folder is
absent, except under CI (``CI=true``), where its absence is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KRONOS_SHARED", REPO_ROOT.parent / "shared"))


def _require(path: Path) -> Path:
    if not path.exists():
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{path} is missing; CI needs ../shared beside the repository")
        pytest.skip(f"{path} is absent (it lives in ../shared beside the repository)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: real market bars (read in place, never copied)."""
    return _require(SHARED / "data")


#: A copy of ``../shared/reference/kronos_tiny`` (1.4 MB), so the parity and core tests run in a bare clone;
#: tests/test_parity.py checks that it still equals the shared original when that is present.
TINY_FIXTURE = REPO_ROOT / "tests" / "fixtures" / "kronos_tiny"


@pytest.fixture(scope="session")
def shared_root() -> Path:
    """Where ``../shared`` is expected (it may be absent)."""
    return SHARED


@pytest.fixture(scope="session")
def tiny_reference() -> Path:
    """``kronos_tiny``: random-weight checkpoints and the original's outputs (the committed copy)."""
    return _require(TINY_FIXTURE)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module of tiny-model tests, restored afterwards.

    Tiny models gain nothing from intra-op threads, and on a busy 2-core machine the threads thrash
    (a module's runtime grew tenfold under load). Opt in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
