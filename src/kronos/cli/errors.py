"""One way every ``kronos`` command reports a failure.

A user error (bad input file, column, flag value, config, device, missing optional dependency, a file
that cannot be read or written) prints exactly one line, ``error: <message>``, on stderr and exits with
status 2, whatever the command. ``kronos --debug ...`` re-raises it instead, with its traceback. Any
other exception is a bug and keeps its traceback (exit status 1).

Library errors name library parameters (:class:`kronos.core.errors.ParameterError`); here they are reworded
with the flag of the command that was run (``benchmark: ...`` becomes ``--benchmark: ...``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer
import typer.core

from kronos.core.device import DeviceError
from kronos.core.errors import InputError, ParameterError
from kronos.model.config import ConfigError

__all__ = ["EXIT_USER_ERROR", "KronosGroup", "user_error_types"]

EXIT_USER_ERROR = 2
DEBUG_FLAG = "--debug"

# Errors of modules that only some commands import; they count once their module is loaded.
_LAZY_ERRORS = (
    ("kronos.training.errors", "TrainingError"),
    ("kronos.training.checkpoint", "CheckpointError"),
)


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exception classes reported as one ``error:`` line (exit 2) rather than with a traceback."""
    found: list[type[BaseException]] = [InputError, ConfigError, DeviceError, OSError]
    for module, name in _LAZY_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _flag_of(command: Any, param: str) -> str | None:
    """The long option of ``command`` whose parameter is called ``param`` (``forecasts_path`` -> ``--forecasts``)."""
    for p in getattr(command, "params", []):
        if p.name == param:
            longs = [o for o in p.opts if o.startswith("--")]
            return longs[0] if longs else (p.opts[0] if p.opts else None)
    return None


def _subcommand(group: Any, args: Sequence[str]) -> Any:
    """The (sub)command that ``args`` run, found by its name(s); None when there is none."""
    command = group
    for token in args:
        if token.startswith("-"):
            continue
        commands = getattr(command, "commands", None)
        if not isinstance(commands, dict) or token not in commands:
            break
        command = commands[token]
    return None if command is group else command


def message_of(exc: BaseException, command: Any = None) -> str:
    """The one-line message of a user error, with library parameter names turned into ``command``'s flags."""
    if isinstance(exc, typer.TyperException) and hasattr(exc, "format_message"):
        return _one_line(exc.format_message())
    if isinstance(exc, ParameterError):
        flag = _flag_of(command, exc.param)
        if flag is not None:
            return _one_line(exc.reworded(flag))
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in str(exc):
        return _one_line(f"{exc.filename}: {exc.strerror or exc}")
    return _one_line(str(exc))


class KronosGroup(typer.core.TyperGroup):
    """The app's top-level group: runs the command and reports failures as described in the module docstring."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        debug = DEBUG_FLAG in argv[: argv.index("--")] if "--" in argv else DEBUG_FLAG in argv
        from kronos.cli.notices import notes

        try:
            with notes(lambda param: _flag_of(_subcommand(self, argv), param)):
                result = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        except typer.TyperException as exc:  # typer's own: bad or missing option, unknown command
            if debug:
                raise
            if type(exc).__name__ == "NoArgsIsHelpError" or not hasattr(exc, "format_message"):
                exc.show()  # type: ignore[attr-defined]
                sys.exit(getattr(exc, "exit_code", EXIT_USER_ERROR))
            typer.echo(f"error: {message_of(exc)}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except user_error_types() as exc:
            if debug:
                raise
            typer.echo(f"error: {message_of(exc, _subcommand(self, argv))}", err=True)
            sys.exit(EXIT_USER_ERROR)
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)
