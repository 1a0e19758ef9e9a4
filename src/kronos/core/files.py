"""Atomic file and folder writes: a crash or an error never leaves a half-written result behind.

A result is first written under a temporary name in the same folder (so the final rename stays on
one file system) and only then renamed into place. Replacing a folder takes two renames; if the
process dies between them, :func:`recover_dir` finds the previous version under its ``.old`` name.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_writable",
    "new_temp_dir",
    "recover_dir",
    "remove_empty_tree",
    "remove_stale_temp_dirs",
    "replace_dir",
]


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None] | bytes | str) -> Path:
    """Write ``path`` atomically: ``write(tmp_path)`` (or the given bytes / UTF-8 text), then ``os.replace``.

    The temporary file sits in the same folder and keeps the target's suffix (writers such as
    ``to_parquet`` or ``savefig`` look at it); it gets the usual permissions, is synced before the
    rename, and is removed if writing fails.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if isinstance(write, bytes):
            tmp.write_bytes(write)
        elif isinstance(write, str):
            tmp.write_text(write, encoding="utf-8")
        else:
            write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Check, before any long computation, that a file can later be written at ``path``.

    Refuses a path that is a directory, whose parent is a file, or whose folder (the nearest existing
    ancestor, since :func:`atomic_write` creates missing folders) is not writable. Raises
    ``FileNotFoundError`` / ``IsADirectoryError`` / ``PermissionError`` naming the path; creates nothing.
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a directory; give a file name to write")
    if target.exists() and not os.access(target, os.W_OK):
        raise PermissionError(f"{target} exists and is not writable")
    folder = target.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {target}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {target}: folder {folder} is not writable")
    return target


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write(path, text)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def new_temp_dir(target: str | os.PathLike[str]) -> Path:
    """A fresh empty folder beside ``target`` (hidden, unique name) to build its next version in."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


_TEMP_DIR = re.compile(r"\.(?P<name>.+)\.tmp-(?P<pid>\d+)-[0-9a-f]{8}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def remove_stale_temp_dirs(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the half-built folders that :func:`new_temp_dir` left in ``folder`` for processes now dead.

    A process killed while writing a checkpoint leaves ``.NAME.tmp-PID-XXXXXXXX``; the next run in the
    same folder calls this. Folders of a live process (this one included) are kept. Returns what was removed.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in sorted(folder.iterdir()):
        m = _TEMP_DIR.fullmatch(entry.name)
        if m and entry.is_dir() and not entry.is_symlink() and not _pid_alive(int(m.group("pid"))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def remove_empty_tree(folder: str | os.PathLike[str]) -> bool:
    """Remove ``folder`` if it holds no file at any depth (only empty sub-folders); True if removed."""
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return False
    if any(not p.is_dir() or p.is_symlink() for p in folder.rglob("*")):
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return not folder.exists()


def _old_name(target: Path) -> Path:
    return target.parent / f".{target.name}.old"


def recover_dir(target: str | os.PathLike[str]) -> Path | None:
    """Return ``target`` if it exists, else restore a previous version left by an interrupted replace."""
    target = Path(target)
    if target.exists():
        return target
    old = _old_name(target)
    if old.exists():
        os.replace(old, target)
        return target
    return None


def replace_dir(tmp: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Move the finished folder ``tmp`` to ``target``, replacing any previous version.

    The previous version is renamed aside first and deleted only after the new one is in place.
    """
    tmp, target = Path(tmp), Path(target)
    old = _old_name(target)
    if old.exists():
        if target.exists():
            shutil.rmtree(old)
        else:
            os.replace(old, target)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target
