"""Atomic file and folder writes: a crash or an error never leaves a half-written result behind.

A result is first written under a temporary name in the same folder (so the final rename stays on
one file system) and only then renamed into place. Replacing a folder takes two renames; if the
process dies between them, :func:`recover_dir` finds the previous version under its ``.old`` name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "new_temp_dir", "recover_dir", "replace_dir"]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def new_temp_dir(target: str | os.PathLike[str]) -> Path:
    """A fresh empty folder beside ``target`` (hidden, unique name) to build its next version in."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


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
