"""The recovery schedules of the process that owns the graphs, beside the backup scheduler:

- a recovery point every ``LIGHTRAG_RECOVERY_CHECKPOINT_INTERVAL_HOURS`` (6; 0 turns it off),
  taken when the newest point in the repository is older than that (so a restart neither
  skips nor doubles one; without any point, one interval after the start), on a primary
  only: a standby receives its points with the snapshots;
- the live health checks every ``LIGHTRAG_RECOVERY_HEALTH_CHECK_INTERVAL_MINUTES`` (5; 0
  turns them off): :meth:`HealthValidator.avalidate_all_graphs`, whose results go to the
  status, the logs and the catalog.

One asyncio task; ``await start()`` / ``await stop()`` (a point or check in progress finishes).
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

from lightrag.backup.background import BackgroundTask
from lightrag.backup.environment import env_number
from lightrag.backup.errors import BackupError

if TYPE_CHECKING:
    from .disaster_recovery import DisasterRecoveryManager

logger = logging.getLogger("lightrag.recovery.scheduler")


def _interval(name: str, default: float) -> float:
    """A positive number of the environment, or 0 (off)."""
    if os.environ.get(name, "").strip() in ("0", "0.0"):
        return 0.0
    return env_number(name, default)


def checkpoint_interval_seconds() -> float:
    return _interval("LIGHTRAG_RECOVERY_CHECKPOINT_INTERVAL_HOURS", 6.0) * 3600


def health_check_interval_seconds() -> float:
    return _interval("LIGHTRAG_RECOVERY_HEALTH_CHECK_INTERVAL_MINUTES", 5.0) * 60


class RecoveryScheduler(BackgroundTask):
    """Takes recovery points and runs health checks on their intervals."""

    def __init__(self, recovery: "DisasterRecoveryManager", *, checkpoint_interval: Optional[float] = None,
                 health_interval: Optional[float] = None) -> None:
        self.recovery = recovery
        self.checkpoint_interval = (float(checkpoint_interval) if checkpoint_interval is not None
                                    else checkpoint_interval_seconds())
        self.health_interval = float(health_interval) if health_interval is not None else health_check_interval_seconds()
        self._stop: Optional[asyncio.Event] = None
        self._started = datetime.now(timezone.utc)
        #: The outcome of the last scheduled point and health check.
        self.last: dict[str, Any] = {}

    async def start(self) -> None:
        if self.running or (self.checkpoint_interval <= 0 and self.health_interval <= 0):
            return
        self._stop = asyncio.Event()
        self._started = datetime.now(timezone.utc)
        self._launch(self._run(), "lightrag-recovery-scheduler")

    async def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
        await self._join()

    async def _run(self) -> None:
        assert self._stop is not None
        loop = asyncio.get_running_loop()
        next_health = loop.time() + self.health_interval if self.health_interval > 0 else None
        tick = min([i for i in (self.checkpoint_interval, self.health_interval) if i > 0] + [60.0])
        while not self._stop.is_set():
            if self.checkpoint_interval > 0:
                await self._checkpoint_if_due()
            if next_health is not None and loop.time() >= next_health:
                next_health = loop.time() + self.health_interval
                await self._health_check()
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=tick)
            except asyncio.TimeoutError:
                pass

    async def _checkpoint_if_due(self) -> None:
        recovery = self.recovery
        try:
            status = await asyncio.to_thread(recovery.instance_now)
            if status["acting_as"] != "primary" or not recovery.manager.graph_ids:
                return
            points = await recovery.alist_recovery_points()
            # Due an interval after the newest point, or (without any) after this start.
            since = points[0].timestamp if points else self._started
            if (datetime.now(timezone.utc) - since).total_seconds() < self.checkpoint_interval:
                return
            point = await recovery.acreate_recovery_point(description="scheduled recovery point",
                                                          created_by="scheduler")
            self.last["checkpoint"] = {"checkpoint_id": point.checkpoint_id, "at": point.timestamp.isoformat()}
        except BackupError as error:
            self.last["checkpoint"] = {"error": f"{type(error).__name__}: {error}"}
            logger.warning("scheduled recovery point failed (the next tick retries): %s", error)

    async def _health_check(self) -> None:
        try:
            results = await self.recovery.validator.avalidate_all_graphs()
            self.last["health"] = {"at": datetime.now(timezone.utc).isoformat(),
                                   "graphs": {g: r.status for g, r in results.items()}}
        except BackupError as error:
            self.last["health"] = {"error": f"{type(error).__name__}: {error}"}
            logger.warning("scheduled health check failed: %s", error)


__all__ = ["RecoveryScheduler", "checkpoint_interval_seconds", "health_check_interval_seconds"]
