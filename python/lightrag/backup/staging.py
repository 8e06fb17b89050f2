"""Staging folders beside a graph, owned by the process that uses them.

A snapshot of a live instance stages the graph in a folder beside it (its files hard-linked, or
every record of a database-backed graph), and a records restore stages what it writes. A
process killed in the middle (SIGKILL, the OOM killer, a power cut) cannot remove its folder:
the hard links keep a replaced version of every graph file on disk, and a database graph's
records are a full copy of the graph. Nothing else would ever remove them.

So each folder holds a lock file that its process keeps locked (``flock``) for as long as the
folder is in use. The kernel drops the lock when the process ends, however it ends, so a
folder whose lock is free belongs to nobody: making a new staging folder removes those beside
it. A folder still being set up (no lock file yet) is left alone unless it is older than
:data:`UNLOCKED_GRACE_SECONDS`. The lock also excludes other staging folders of the same
process (each holds its own open file), so concurrent backups never remove each other's.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import threading
import time
import uuid
from pathlib import Path

log = logging.getLogger("lightrag.backup.staging")

#: The name every staging folder starts with (a dot: LightRAG and the engine skip it).
PREFIX = ".lightrag-backup-stage-"
#: The lock file inside a staging folder.
OWNER_FILE = ".owner"
#: How old a staging folder without a lock file must be before it counts as abandoned.
UNLOCKED_GRACE_SECONDS = 600.0

_held: dict[str, int] = {}
_held_lock = threading.Lock()


def new(base: Path) -> Path:
    """A new, empty staging folder in ``base``, locked by this process until :func:`remove`;
    abandoned staging folders in ``base`` are removed first."""
    base.mkdir(parents=True, exist_ok=True)
    sweep(base)
    path = base / f"{PREFIX}{uuid.uuid4().hex}"
    path.mkdir()
    fd = os.open(path / OWNER_FILE, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    with _held_lock:
        _held[str(path)] = fd
    return path


def remove(path: Path) -> None:
    """Remove a staging folder made by :func:`new` and release its lock."""
    shutil.rmtree(path, ignore_errors=True)
    with _held_lock:
        fd = _held.pop(str(path), None)
    if fd is not None:
        os.close(fd)


def sweep(base: Path) -> list[Path]:
    """Remove the staging folders in ``base`` that no live process holds; returns them."""
    removed: list[Path] = []
    try:
        entries = [entry for entry in base.iterdir() if entry.name.startswith(PREFIX)]
    except FileNotFoundError:
        return removed
    for entry in entries:
        with _held_lock:
            if str(entry) in _held:
                continue
        if not entry.is_dir() or entry.is_symlink():
            continue
        try:
            fd = os.open(entry / OWNER_FILE, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            try:
                age = time.time() - entry.stat().st_mtime
            except FileNotFoundError:
                continue
            if age > UNLOCKED_GRACE_SECONDS:
                _remove_abandoned(entry, removed)
            continue
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # in use by a live process
            continue
        try:
            _remove_abandoned(entry, removed)
        finally:
            os.close(fd)
    return removed


def _remove_abandoned(entry: Path, removed: list[Path]) -> None:
    shutil.rmtree(entry, ignore_errors=True)
    if not entry.exists():
        removed.append(entry)
        log.info("removed %s: a staging folder left by a process that was stopped before it finished", entry)


__all__ = ["OWNER_FILE", "PREFIX", "UNLOCKED_GRACE_SECONDS", "new", "remove", "sweep"]
