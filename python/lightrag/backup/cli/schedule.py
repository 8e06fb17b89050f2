"""The ``schedule`` commands: set, show, remove, run."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional

from ._common import (
    WITH_MANAGER,
    EXIT_ERROR,
    ProgressBar,
    Wanted,
    add_command,
    emit,
    graph_folder,
    graph_id,
    graph_options,
    has_policy,
    manager,
    policy,
    retention_options,
    storage,
)


def register(commands: Any, wanted: Wanted) -> None:
    sub = commands.add_parser("schedule", help="scheduled backups")
    if not wanted("schedule"):
        return
    actions = sub.add_subparsers(dest="schedule_command", metavar="ACTION", required=True)
    set_ = add_command(actions, "set", "back a graph up on a schedule", set_schedule, defined=True, path="schedule set")
    graph_options(set_)
    when = set_.add_mutually_exclusive_group()
    when.add_argument("--every", metavar="INTERVAL", help="an interval: 6h, 30m, 1d, or hours")
    when.add_argument("--cron", metavar="EXPRESSION", help="a cron expression, e.g. '0 3 * * *' (UTC)")
    retention_options(set_)
    show = add_command(actions, "show", "a graph's schedule, or every schedule", show_schedules, defined=True,
                       path="schedule show")
    show.add_argument("--graph-id", "-g", help="only this graph")
    remove = add_command(actions, "remove", "remove a graph's schedule", remove_schedule, defined=True,
                         path="schedule remove")
    remove.add_argument("--graph-id", "-g", required=True)
    run_ = add_command(actions, "run", "run the scheduler in the foreground (Ctrl-C stops it)", run_schedules,
                       defined=True, path="schedule run")
    run_.add_argument("--once", action="store_true", help="run the schedules that are due now, then exit")
    run_.add_argument("--poll", type=float, default=30.0, metavar="SECONDS", help="how often to look at the schedules")


def set_schedule(args: argparse.Namespace, bar: ProgressBar) -> int:
    """Create a schedule, or change only what is given of an existing one."""
    from ..schedule import CronExpression, parse_interval

    graph_folder(args)  # checked first: bad input changes nothing, leaves no repository behind
    when: Any = None
    if args.every:
        when = parse_interval(args.every, cron=False)
        when = f"{when}s"
    elif args.cron:
        when = CronExpression(args.cron).text
    owner = manager(args, storage(args, then=WITH_MANAGER))
    name = graph_id(args)
    if when is None and owner.get_schedule(name) is None:
        from ..errors import InvalidInputError

        raise InvalidInputError(f"graph {name!r} has no schedule yet: give --every INTERVAL or --cron EXPRESSION")
    owner.register_graph(name, args.working_dir, args.workspace or "")
    view = owner.update_schedule(name, when, retention=policy(args) if has_policy(args) else None)
    emit(args, view, f"scheduled {view['graph_id']}: next run {view['next_run']}")
    return 0


def show_schedules(args: argparse.Namespace, bar: ProgressBar) -> int:
    owner = manager(args, storage(args, then=WITH_MANAGER))
    views = [owner.get_schedule(args.graph_id)] if args.graph_id else owner.list_schedules()
    views = [v for v in views if v]
    lines = [
        f"{v['graph_id']:<24} {v['cron'] or every(v['interval_seconds']):<14} next {v['next_run'][:19]}  "
        f"last {v['last_result'] or '-'} {(v['last_run'] or '')[:19]} {v['last_error'] or ''}".rstrip()
        for v in views
    ]
    emit(args, views, "\n".join(lines) or "no schedules")
    return 0


def remove_schedule(args: argparse.Namespace, bar: ProgressBar) -> int:
    removed = manager(args, storage(args, then=WITH_MANAGER)).unschedule_backup(args.graph_id)
    emit(args, {"removed": removed}, "removed" if removed else f"{args.graph_id} had no schedule")
    return 0 if removed else EXIT_ERROR


def run_schedules(args: argparse.Namespace, bar: ProgressBar) -> int:
    import asyncio

    owner = manager(args, storage(args, then=WITH_MANAGER))
    if args.once:
        results = asyncio.run(_run_due(owner))
        emit(args, [vars(r) for r in results],
             "\n".join(f"{r.graph_id}: {r.result} {r.snapshot_id or ''} {r.error or ''}".rstrip() for r in results)
             or "nothing due")
        return EXIT_ERROR if any(r.result == "failed" for r in results) else 0
    owner.scheduler.poll_seconds = args.poll

    async def forever() -> None:
        async with owner:
            await asyncio.Event().wait()

    print(f"lightrag-backup: running {len(owner.list_schedules())} schedule(s); Ctrl-C stops", file=sys.stderr)
    asyncio.run(forever())
    return 0


async def _run_due(owner: Any) -> list[Any]:
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    due = [v["graph_id"] for v in owner.list_schedules() if v["enabled"] and datetime.fromisoformat(v["next_run"]) <= now]
    return [await owner.run_scheduled_backup(name) for name in due]


def every(seconds: Optional[float]) -> str:
    if not seconds:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"every {int(seconds // size)}{unit}"
    return f"every {seconds:g}s"
