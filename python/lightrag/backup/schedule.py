"""Backup schedules: intervals and cron expressions, and the scheduler that runs them.

A schedule is an interval (a :class:`~datetime.timedelta`, hours as a number, or text such as
``"6h"``, ``"30m"``, ``"1d"``) or a five-field cron expression (``"0 3 * * *"``; also
``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``). Times are UTC.

The :class:`BackupScheduler` runs inside the process that owns the graphs, as one asyncio
task. Schedules live in the catalog, so they survive restarts. After a restart a missed run is
taken once (the next run is counted from now, not from the missed one); two backups of one
graph never run at once; a run that finds nothing changed since the last snapshot is recorded
as ``skipped`` and stores nothing; after a successful run the schedule's retention policy is
applied to that graph.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, Union

from .background import BackgroundTask
from .errors import InvalidInputError

if TYPE_CHECKING:
    import asyncio

    from .catalog import Catalog

logger = logging.getLogger("lightrag.backup.schedule")

Interval = Union[timedelta, int, float, str]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTHS = {name: i for i, name in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}
_DAYS = {name: i for i, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# The shortest interval accepted: backups more often than this are a configuration mistake.
MIN_INTERVAL_SECONDS = 1.0
# The longest: ten years (longer ones are typos, and overflow date arithmetic).
MAX_INTERVAL_SECONDS = 10 * 366 * 86400.0


class CronExpression:
    """A standard five-field cron expression: minute, hour, day of month, month, day of week
    (0 or 7 = Sunday). Fields take ``*``, numbers, names (``jan``, ``mon``), ranges ``a-b``,
    steps ``*/n`` and ``a-b/n``, and lists. As in cron, when both day fields are restricted a
    time matches either of them."""

    _FIELDS = [("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}), ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS)]

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise InvalidInputError("a cron expression must be a string")
        self.text = text.strip()
        expanded = _MACROS.get(self.text.lower(), self.text)
        parts = expanded.split()
        if len(parts) != 5:
            raise InvalidInputError(
                f"cron expression {text!r} must have 5 fields (minute hour day-of-month month day-of-week)"
            )
        sets = [self._parse(part, *field) for part, field in zip(parts, self._FIELDS)]
        self.minutes, self.hours, self.days, self.months, weekdays = sets
        self.weekdays = {0 if d == 7 else d for d in weekdays}
        self.day_restricted = parts[2] != "*"
        self.weekday_restricted = parts[4] != "*"

    @staticmethod
    def _parse(part: str, name: str, low: int, high: int, names: dict[str, int]) -> set[int]:
        values: set[int] = set()

        def number(token: str) -> int:
            token = token.lower()
            if token in names:
                return names[token]
            if not token.isdigit():
                raise InvalidInputError(f"cron {name} field: {token!r} is not a number")
            value = int(token)
            if not low <= value <= high:
                raise InvalidInputError(f"cron {name} field: {value} is outside {low}-{high}")
            return value

        for item in part.split(","):
            if not item:
                raise InvalidInputError(f"cron {name} field {part!r} has an empty list item")
            range_part, _, step_text = item.partition("/")
            step = 1
            if step_text:
                if not step_text.isdigit() or int(step_text) == 0:
                    raise InvalidInputError(f"cron {name} field: step {step_text!r} must be a positive number")
                step = int(step_text)
            if range_part == "*":
                start, end = low, high
            elif "-" in range_part:
                a, _, b = range_part.partition("-")
                start, end = number(a), number(b)
                if start > end:
                    raise InvalidInputError(f"cron {name} field: range {range_part!r} runs backwards")
            else:
                start = number(range_part)
                end = high if step_text else start
            values.update(range(start, end + 1, step))
        return values

    def _day_matches(self, moment: datetime) -> bool:
        in_days = moment.day in self.days
        in_weekdays = (moment.isoweekday() % 7) in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    def next_after(self, moment: datetime) -> datetime:
        """The first matching minute strictly after ``moment`` (UTC)."""
        moment = moment.astimezone(timezone.utc).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = moment + timedelta(days=366 * 5)
        while moment < limit:
            if moment.month not in self.months:
                year = moment.year + (moment.month == 12)
                month = moment.month % 12 + 1
                moment = moment.replace(year=year, month=month, day=1, hour=0, minute=0)
                continue
            if not self._day_matches(moment):
                moment = (moment + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if moment.hour not in self.hours:
                moment = (moment + timedelta(hours=1)).replace(minute=0)
                continue
            if moment.minute not in self.minutes:
                moment += timedelta(minutes=1)
                continue
            return moment
        raise InvalidInputError(f"cron expression {self.text!r} never matches (for example 30 February)")

    def __repr__(self) -> str:
        return f"CronExpression({self.text!r})"


def parse_interval(interval: Interval, *, cron: bool = True) -> Union[float, CronExpression]:
    """Seconds for an interval, or a :class:`CronExpression` (unless ``cron=False``: then text
    that is not an interval is an error about intervals, not about cron fields)."""
    if isinstance(interval, bool):
        raise InvalidInputError("the interval must be a timedelta, hours, text like '6h', or a cron expression")
    if isinstance(interval, timedelta):
        seconds = interval.total_seconds()
    elif isinstance(interval, (int, float)):
        seconds = float(interval) * 3600
    elif isinstance(interval, str):
        text = interval.strip().lower()
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", text)
        if match:
            seconds = float(match.group(1)) * _UNITS[match.group(2)]
        elif re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text) * 3600
        elif cron:
            return CronExpression(interval)
        else:
            raise InvalidInputError(
                f"{interval!r} is not an interval: use a number and a unit, as in 30m, 6h, 1d or 2w "
                "(s, m, h, d, w), or hours as a plain number"
            )
    else:
        raise InvalidInputError("the interval must be a timedelta, hours, text like '6h', or a cron expression")
    if not MIN_INTERVAL_SECONDS <= seconds <= MAX_INTERVAL_SECONDS:
        raise InvalidInputError(
            f"the interval must be between {MIN_INTERVAL_SECONDS:g} s and {MAX_INTERVAL_SECONDS // 86400:.0f} days, got {interval!r}"
        )
    return seconds


def next_run(schedule: Union[float, CronExpression], after: datetime) -> datetime:
    if isinstance(schedule, CronExpression):
        return schedule.next_after(after)
    return after + timedelta(seconds=schedule)


@dataclass
class RunResult:
    """One scheduled run: ``created``, ``skipped`` (nothing changed) or ``failed``."""

    graph_id: str
    result: str
    snapshot_id: Optional[str] = None
    error: Optional[str] = None
    forgotten: int = 0


ScheduledRun = Callable[[str, Optional[dict[str, Any]]], Awaitable[RunResult]]
"""``run(graph_id, schedule)``: one scheduled backup of a graph (and its retention)."""


class BackupScheduler(BackgroundTask):
    """Runs the schedules kept in ``catalog`` as one asyncio task: ``await scheduler.start()``
    / ``await scheduler.stop()``, or ``async with``. ``run`` does each due backup (the
    manager's, which takes the graph's lock); the scheduler only decides when."""

    def __init__(self, catalog: "Catalog", run: ScheduledRun, *, poll_seconds: float = 60.0) -> None:
        self.catalog = catalog
        self._run = run
        self.poll_seconds = float(poll_seconds)
        self._wake: Optional["asyncio.Event"] = None
        self._running: dict[str, "asyncio.Task[RunResult]"] = {}
        self._stopping = False
        self.history: list[RunResult] = []

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called (a run waiting for a graph's lock gives up)."""
        return self._stopping

    async def start(self) -> None:
        import asyncio

        if self.running:
            return
        self._stopping = False
        self._wake = asyncio.Event()
        self._launch(self._loop(), "lightrag-backup-scheduler")

    async def stop(self) -> None:
        """Stop scheduling; a backup already running is allowed to finish (it is never cut
        off half-way): the loop is asked to stop and wakes up, rather than being cancelled
        (see :meth:`BackgroundTask._join`)."""
        import asyncio

        if self._task is not None:
            self._stopping = True
            self.wake()
            await self._join()
        running = list(self._running.values())
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    def wake(self) -> None:
        """Look at the schedules again now (called when one changes)."""
        if self._wake is not None:
            self._wake.set()

    async def __aenter__(self) -> "BackupScheduler":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def _loop(self) -> None:
        import asyncio

        wake = self._wake
        assert wake is not None
        loop = asyncio.get_running_loop()
        while not self._stopping:
            wake.clear()
            now = datetime.now(timezone.utc)
            wait = self.poll_seconds
            for schedule in self.catalog.schedules():
                if not schedule["enabled"]:
                    continue
                due = datetime.fromisoformat(schedule["next_run"])
                graph_id = schedule["graph_id"]
                if due <= now:
                    if graph_id not in self._running:
                        task = asyncio.create_task(self.run_now(graph_id))
                        self._running[graph_id] = task
                        task.add_done_callback(self._forget_run)
                else:
                    wait = min(wait, (due - now).total_seconds())
            if self._stopping:
                break
            timer = loop.call_later(max(wait, 0.05), wake.set)
            try:
                await wake.wait()
            finally:
                timer.cancel()

    def _forget_run(self, task: "asyncio.Task[RunResult]") -> None:
        for graph_id, running in list(self._running.items()):
            if running is task:
                del self._running[graph_id]

    async def run_now(self, graph_id: str) -> RunResult:
        """Run the scheduled backup of one graph now (and its retention), record the outcome,
        and set the next run from now."""
        schedule = self.catalog.schedule(graph_id)
        result = await self._run(graph_id, schedule)
        self.history.append(result)
        if schedule is not None:
            spec: Union[float, CronExpression]
            if schedule["cron"]:
                spec = CronExpression(schedule["cron"])
            else:
                spec = float(schedule["interval_seconds"])
            following = next_run(spec, datetime.now(timezone.utc))
            self.catalog.record_run(
                graph_id, result=result.result, next_run=following.isoformat(), error=result.error, snapshot_id=result.snapshot_id
            )
        if result.result == "failed":
            logger.warning("scheduled backup of %s failed: %s", graph_id, result.error)
        else:
            logger.info("scheduled backup of %s: %s %s", graph_id, result.result, result.snapshot_id or "")
        self.wake()
        return result


__all__ = [
    "BackupScheduler",
    "CronExpression",
    "Interval",
    "RunResult",
    "ScheduledRun",
    "next_run",
    "parse_interval",
]
