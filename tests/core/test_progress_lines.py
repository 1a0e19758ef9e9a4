"""Progress off a terminal: plain lines at a bounded rate, not a live bar that prints nothing until the end."""

from __future__ import annotations

import io

from rich.console import Console

from kronos.core.progress import LineProgress, progress_bar


def _lines(every: float, steps: int, total: int | None = None) -> list[str]:
    buf = io.StringIO()
    with LineProgress(unit="origins", every=every, console=Console(file=buf, width=200)) as bar:
        task = bar.add_task("evaluate", total=total if total is not None else steps)
        for _ in range(steps):
            bar.advance(task, 1)
    return buf.getvalue().splitlines()


def test_plain_lines_name_the_task_count_and_time():
    lines = _lines(every=0.0, steps=4)
    assert len(lines) == 4  # every advance once the interval (here 0) has passed, the last one included
    assert lines[-1].startswith("evaluate: 4/4 origins (100%), 0:00:00 elapsed")
    assert "about" in lines[0] and "left" in lines[0]  # unfinished lines say how long is left
    assert "\x1b" not in "".join(lines)  # no cursor movement, no colour codes


def test_a_quick_task_is_silent_and_lines_are_rate_limited():
    assert _lines(every=60.0, steps=50) == []  # finished within the interval: nothing to say
    assert len(_lines(every=60.0, steps=50, total=100)) == 0  # unfinished and young: still quiet


def test_off_a_terminal_the_bar_is_plain_lines():
    # under pytest standard output and error are captured, not a terminal
    assert isinstance(progress_bar(unit="origins"), LineProgress)
    assert not isinstance(progress_bar(enabled=False), LineProgress)
