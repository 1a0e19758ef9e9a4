"""Atomic files: stale temporary folders of dead processes are removed, live ones kept."""

from __future__ import annotations

import os

from kronos.cli import (
    commands,  # noqa: F401  (registers the commands)
)
from kronos.core.files import remove_stale_temp_dirs


def test_stale_temp_folders_are_removed_and_live_ones_kept(tmp_path):
    dead = tmp_path / ".last.tmp-999999999-0123abcd"
    live = tmp_path / f".best.tmp-{os.getpid()}-89abcdef"
    other = tmp_path / ".last.tmp-notapid"
    for d in (dead, live, other):
        (d / "model").mkdir(parents=True)
    assert remove_stale_temp_dirs(tmp_path) == [dead]
    assert not dead.exists() and live.exists() and other.exists()
