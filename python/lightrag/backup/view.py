"""What a long-running server answers its read endpoints from: the answers it computed last,
kept until something changed, so a Prometheus scrape or a status page makes no request to the
object store.

An answer (``/metrics``' backup families, ``/backup/stats``, ``/backup/graphs``, a graph's
snapshot list) is computed once, from the repository (through this host's cache) and the
catalog, and kept with a token of what it was computed from:

- what this process wrote to the repository (its writes and deletes, counted by the engine:
  a snapshot, a forget or a prune here shows at the next request),
- what anyone wrote to the catalog (this connection's changes and other connections' commits),
- a generation that the refresh raises when the repository's listings changed: every
  ``LIGHTRAG_BACKUP_REFRESH_SECONDS`` (default 30) a background task lists the prefixes that
  answers depend on (``snapshots/``, ``index/``, ``recovery/``, ``keys/``, ``graphs/``,
  ``damaged/``, ``settings/``, ``prune/``; one listing each) and compares a digest of the names.

A request whose token matches is answered from memory: no request to the store. Another
process's snapshot appears within one refresh period. Outside a server (the Python API, the
CLI) nothing is kept: every call reads the repository.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import threading
from typing import TYPE_CHECKING, Any, Callable, Hashable, Optional, TypeVar

from .background import BackgroundTask

if TYPE_CHECKING:
    from .catalog import Catalog
    from .storage import BackupStorageBackend

logger = logging.getLogger("lightrag.backup.view")

T = TypeVar("T")

#: The repository prefixes a kept answer depends on.
WATCHED = ["snapshots", "index", "recovery", "keys", "graphs", "damaged", "settings", "prune"]

#: Seconds between two refreshes of the repository's listings.
DEFAULT_REFRESH_SECONDS = 30.0


def refresh_seconds_from_env() -> float:
    """``LIGHTRAG_BACKUP_REFRESH_SECONDS`` (default 30, at least 1)."""
    from .errors import InvalidInputError

    raw = os.environ.get("LIGHTRAG_BACKUP_REFRESH_SECONDS", "").strip()
    if not raw:
        return DEFAULT_REFRESH_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        raise InvalidInputError(f"LIGHTRAG_BACKUP_REFRESH_SECONDS must be a number of seconds, not {raw!r}") from None
    if not seconds >= 1:
        raise InvalidInputError(f"LIGHTRAG_BACKUP_REFRESH_SECONDS must be at least 1, not {raw!r}")
    return seconds


class RepositoryView(BackgroundTask):
    """Answers kept until what they were computed from changed (see the module)."""

    def __init__(self, storage: "BackupStorageBackend", catalog: "Catalog",
                 refresh_seconds: float = DEFAULT_REFRESH_SECONDS) -> None:
        self.storage = storage
        self.catalog = catalog
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._answers: dict[Hashable, tuple[tuple[Any, ...], Any]] = {}
        self._generation = 0
        self._fingerprint: Optional[str] = None

    def _token(self) -> tuple[Any, ...]:
        counts = json.loads(self.storage.engine.request_counts_json())
        return counts["puts"], counts["deletes"], self.catalog.generation(), self._generation

    def answer(self, key: Hashable, compute: Callable[[], T], *, shared: bool = False) -> T:
        """The kept answer for ``key`` while nothing changed, else ``compute()`` (kept).

        An answer is a copy of the kept one, which the caller may change; a ``shared`` one is
        the kept object itself, for callers that only read it (an internal summary read on
        every request, where copying thousands of snapshots would cost more than the rest)."""
        with self._lock:
            kept = self._answers.get(key)
        if kept is not None and kept[0] == self._token():
            return kept[1] if shared else copy.deepcopy(kept[1])  # type: ignore[no-any-return]
        value = compute()
        # The token after computing: what the computation wrote itself (a catalog row it
        # brought up to date) does not make the next request compute again.
        with self._lock:
            self._answers[key] = (self._token(), value if shared else copy.deepcopy(value))
        return value

    def refresh(self) -> bool:
        """List the watched prefixes; when anything changed since the last refresh, the kept
        answers are computed again at their next request. Returns whether it changed."""
        fingerprint = self.storage.engine.listing_fingerprint(WATCHED)
        changed = self._fingerprint is not None and fingerprint != self._fingerprint
        self._fingerprint = fingerprint
        if changed:
            with self._lock:
                self._generation += 1
        return changed

    async def start(self) -> None:
        """Refresh now, then every ``refresh_seconds`` in the background."""
        try:
            await asyncio.to_thread(self.refresh)
        except Exception as error:  # noqa: BLE001 - a server starts while its store is away
            logger.warning("listing the repository for the view failed (retried every %s s): %s",
                           self.refresh_seconds, error)
        self._launch(self._run(), "lightrag-backup-view-refresh")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception as error:  # noqa: BLE001 - a store outage must not end the refreshes
                # The kept answers stay: computing them again would fail the same way.
                logger.warning("refreshing the repository view failed (kept answers stay): %s", error)

    async def stop(self) -> None:
        """End the refreshes (a listing under way is left to finish on its thread, unread)."""
        await self._cancel()


__all__ = ["RepositoryView", "WATCHED", "refresh_seconds_from_env"]
