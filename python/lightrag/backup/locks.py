"""One operation per graph at a time: the lock set every entry point of a process shares.

The manager owns one :class:`GraphLocks`; the scheduler, the REST jobs and the CLI's
``schedule run`` all take a graph's lock through it before they snapshot, restore, verify or
delete, so a scheduled backup and a REST restore of the same graph can never overlap. A caller
either waits its turn (the scheduler) or is refused at once with
:class:`~lightrag.backup.errors.OperationRunningError` (the REST API, which answers 409).
"""

from __future__ import annotations

import threading
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Iterator, Optional

from .errors import OperationRunningError

# How often a waiting caller looks again. Locks are held for seconds to minutes, so polling
# costs nothing and keeps the set usable from any event loop and any thread.
_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class Holder:
    """Who holds a graph's lock: the operation and, for REST jobs, the job id."""

    graph_id: str
    operation: str
    job_id: Optional[str] = None


class GraphLocks:
    """Per-graph exclusive locks, safe across threads and event loops."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._holders: dict[str, Holder] = {}

    def try_acquire(self, graph_id: str, operation: str, job_id: Optional[str] = None) -> Holder:
        """Take the graph's lock now, or raise :class:`OperationRunningError` naming who has it."""
        with self._mutex:
            current = self._holders.get(graph_id)
            if current is not None:
                raise OperationRunningError(graph_id, current.operation, current.job_id)
            holder = Holder(graph_id, operation, job_id)
            self._holders[graph_id] = holder
            return holder

    def release(self, holder: Holder) -> None:
        with self._mutex:
            if self._holders.get(holder.graph_id) is holder:
                del self._holders[holder.graph_id]

    def holder(self, graph_id: str) -> Optional[Holder]:
        """Who holds the graph's lock now, if anyone."""
        with self._mutex:
            return self._holders.get(graph_id)

    def held(self) -> list[Holder]:
        with self._mutex:
            return list(self._holders.values())

    @contextmanager
    def hold(self, graph_id: str, operation: str, job_id: Optional[str] = None) -> Iterator[Holder]:
        """Hold the graph's lock for a block, refusing at once when it is taken."""
        holder = self.try_acquire(graph_id, operation, job_id)
        try:
            yield holder
        finally:
            self.release(holder)

    @asynccontextmanager
    async def wait_hold(
        self, graph_id: str, operation: str, *, give_up: Optional[Callable[[], bool]] = None
    ) -> AsyncIterator[Holder]:
        """Hold the graph's lock for a block, waiting for the operation that has it to end.

        Raises :class:`OperationRunningError` if ``give_up()`` turns true while waiting."""
        import asyncio

        while True:
            try:
                holder = self.try_acquire(graph_id, operation)
                break
            except OperationRunningError:
                if give_up is not None and give_up():
                    raise
                await asyncio.sleep(_POLL_SECONDS)
        try:
            yield holder
        finally:
            self.release(holder)


__all__ = ["GraphLocks", "Holder"]
