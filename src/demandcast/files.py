"""Atomic file writes: an output either appears whole or not at all.

Temporary entries (``.<name>.<pid>.<random>.tmp`` beside a file, a stage's staging folders)
carry the id of the process that made them. A run that is killed leaves them behind; the next
write of the same output removes the ones whose process is gone (:func:`remove_leftovers`), so
a concurrent writer's entries are never touched. Git ignores them (``.gitignore``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("demandcast")

# Entries named without a pid (made before pids were in the names) count as leftovers when they
# are older than this process.
_STARTED = time.time()
# Whatever the name says, a temporary entry untouched for this long is a leftover (a pid can be
# reused by an unrelated long-running process).
_MAX_AGE = 24 * 3600.0
_RANDOM = r"[a-z0-9_]{8}"  # the random part of tempfile's names, and of ours


def private_prefix(prefix: str) -> str:
    """``prefix`` + this process's id: the start of a temporary name that :func:`leftovers`
    recognises, e.g. ``tempfile.mkdtemp(prefix=private_prefix(".models."))``."""
    return f"{prefix}{os.getpid()}."


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name != "posix":  # no harmless liveness probe there: assume it runs
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's process
        return True
    return True


def leftovers(directory: Path | str, prefix: str, suffix: str = "") -> list[Path]:
    """Entries of ``directory`` named ``prefix [pid.] random suffix`` (see
    :func:`private_prefix`) whose process is no longer running (or untouched for a day);
    without a pid in the name, those older than this process."""
    directory = Path(directory)
    pattern = re.compile(rf"{re.escape(prefix)}(?:(\d+)\.)?{_RANDOM}{re.escape(suffix)}")
    found = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        try:
            modified = entry.lstat().st_mtime
        except OSError:
            continue
        if match[1] is not None:
            stale = not _alive(int(match[1])) or modified < time.time() - _MAX_AGE
        else:
            stale = modified < _STARTED
        if stale:
            found.append(entry)
    return sorted(found)


def remove_leftovers(directory: Path | str, prefix: str, suffix: str = "") -> list[Path]:
    """Delete the :func:`leftovers` (files or folders) and return them."""
    removed = []
    for entry in leftovers(directory, prefix, suffix):
        with contextlib.suppress(FileNotFoundError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
            log.info("removed %s, left by an interrupted run", entry)
    return removed


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    Temporary files of earlier, interrupted writes of ``path`` are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path.parent, f".{path.name}.", ".tmp")
    fd, tmp = tempfile.mkstemp(
        prefix=private_prefix(f".{path.name}."), suffix=".tmp", dir=path.parent
    )
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def aside_prefix(target: Path) -> str:
    """The name prefix of ``target``'s previous version while :func:`replace_dir` swaps it."""
    return f".{target.name}.old."


def replace_dir(new: Path | str, target: Path | str) -> None:
    """Move the complete folder ``new`` to ``target``, as close to atomically as a filesystem
    allows: the old ``target`` is renamed aside, ``new`` renamed in, then the old one removed.
    If ``new`` cannot be moved in, the old ``target`` is put back. Both must be on one
    filesystem (make ``new`` beside ``target``)."""
    new, target = Path(new), Path(target)
    if not target.exists() and not target.is_symlink():
        os.rename(new, target)
        return
    aside = target.parent / f"{private_prefix(aside_prefix(target))}{secrets.token_hex(4)}"
    os.rename(target, aside)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(aside, target)
        raise
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.unlink()


def write_json(path: Path | str, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_text(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_bytes(path: Path | str, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
