"""Every ``kronos`` command line the README and the docs show names a real command and real flags, so a renamed or
removed option cannot leave the documentation telling users to type something that fails."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.helpers import leaf_commands

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


def _command_lines(text: str) -> list[str]:
    """The ``kronos ...`` invocations of a page's bash blocks (continuations joined, comments dropped)."""
    lines = []
    for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            match = re.search(r"(?:^|&&\s*|-m\s+)kronos\s+(.*)$", line)
            if match:
                lines.append(match.group(1))
    return lines


def _cases() -> list[tuple[str, str]]:
    return [(page.name, line) for page in PAGES for line in _command_lines(page.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("page,line", _cases())
def test_documented_command_lines_use_real_commands_and_flags(page, line):
    commands = leaf_commands()
    words = shlex.split(line.replace("|", " "), comments=True)
    path: tuple[str, ...] = ()
    for word in words:
        if word.startswith("-"):
            break
        if any(key[: len(path) + 1] == (*path, word) for key in commands):
            path = (*path, word)
        elif path in commands:
            break
    assert path in commands, f"{page}: 'kronos {line}' names no command"
    params = commands[path].params
    flags = {opt for p in params for opt in (*p.opts, *p.secondary_opts)}
    for word in words:
        if word.startswith("-") and word not in ("-", "--"):
            name = word.split("=")[0]
            assert name in flags, f"{page}: 'kronos {line}': {' '.join(path)} has no option {name}"
