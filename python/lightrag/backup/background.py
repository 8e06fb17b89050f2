"""The one asyncio task a server service (backup scheduler, recovery scheduler, lease keeper,
replicator) runs between its ``start()`` and ``stop()``."""

from __future__ import annotations

import asyncio
from typing import Any, Coroutine, Optional


class BackgroundTask:
    """A service's loop task: :meth:`_launch` it from ``start()``, ask the loop to end (an event
    or a flag of the service's own), then :meth:`_join` it from ``stop()``."""

    _task: Optional["asyncio.Task[None]"] = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _launch(self, loop: Coroutine[Any, Any, None], name: str) -> None:
        self._task = asyncio.create_task(loop, name=name)

    async def _join(self) -> None:
        """Wait for the loop to end by itself, never cutting it off half-way. A cancelled
        ``stop()`` cancels the loop too rather than leaving it behind; the loop is not
        cancelled otherwise, since on Python < 3.12 ``asyncio.wait_for`` can swallow a
        cancellation that arrives as its inner wait completes (CPython gh-86296) and a loop
        that swallowed one would go on forever."""
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()
            raise

    async def _cancel(self) -> None:
        """End a loop whose work may be cut off anywhere (it waits, or reads): cancelled, then
        waited for. A cancelled ``stop()`` is cancelled as it would be in :meth:`_join`."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
