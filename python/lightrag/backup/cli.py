"""``lightrag-backup``: snapshot, list, show, verify, restore, delete, forget and prune LightRAG
graph backups, schedule them, and keep the catalog.

The repository comes from ``--repo`` or ``LIGHTRAG_BACKUP_STORAGE_PATH``; the graph from
``--working-dir``/``--workspace`` or LightRAG's own ``WORKING_DIR``/``WORKSPACE``. Errors print
one clear line and exit non-zero; ``--json`` prints machine-readable results.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Optional, Sequence

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_DAMAGED = 3


class ProgressBar:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.phase = ""
        self.started = time.monotonic()

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if phase != self.phase:
            if self.phase:
                sys.stderr.write("\n")
            self.phase, self.started = phase, time.monotonic()
        width = 30
        fraction = done / total if total else 1.0
        filled = int(width * min(fraction, 1.0))
        rate = done / max(time.monotonic() - self.started, 1e-6) / 1e6
        sys.stderr.write(
            f"\r{phase:<9} [{'#' * filled}{'.' * (width - filled)}] {fraction:6.1%} "
            f"{done / 1e6:8.1f}/{total / 1e6:.1f} MB {rate:7.1f} MB/s"
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.phase:
            sys.stderr.write("\n")
            self.phase = ""


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size} B"


# Global options that take a value: the command is the first other word of the command line.
_GLOBAL_VALUE_OPTIONS = frozenset({"--repo", "--repo-option", "-o", "--catalog"})


def _command_word(argv: Sequence[str]) -> Optional[str]:
    words = iter(argv)
    for word in words:
        if word in _GLOBAL_VALUE_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _parser(argv: Optional[Sequence[str]] = None, *, full: bool = False) -> argparse.ArgumentParser:
    """The command line parser. Only the command being run gets its options defined (argparse
    spends about a millisecond per option here, a fifth of a quick command's run); every
    command is defined in full (``full``) when the command word is not a known one (help,
    typos)."""
    command = _command_word(sys.argv[1:] if argv is None else argv)

    def wanted(name: str) -> bool:
        return full or command == name

    parser = argparse.ArgumentParser(
        prog="lightrag-backup",
        allow_abbrev=False,
        description="Backups of LightRAG knowledge graphs: deduplicated, compressed, verifiable.",
    )
    parser.add_argument("--repo", default=None,
                        help="repository path or URL: /path, file:///path, s3://bucket/prefix, az://container/prefix, "
                             "gs://bucket/prefix (default: $LIGHTRAG_BACKUP_STORAGE_PATH, else s3://$LIGHTRAG_BACKUP_S3_BUCKET)")
    parser.add_argument("--repo-option", "-o", action="append", default=[], metavar="KEY=VALUE",
                        help="a storage setting, e.g. endpoint=http://127.0.0.1:9000 or region=eu-west-1 (repeatable)")
    parser.add_argument("--create-bucket", action="store_true",
                        help="create the bucket or container when it does not exist (with snapshot)")
    parser.add_argument("--catalog", default=None, metavar="PATH",
                        help="the SQLite catalog (default: $LIGHTRAG_BACKUP_CATALOG_PATH, else catalog.sqlite3 in a local "
                             "repository folder, else ~/.local/state/lightrag-backup)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--no-progress", action="store_true", help="do not draw progress bars")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def graph_options(sub: argparse.ArgumentParser, need_dir: bool = True) -> None:
        sub.add_argument("--graph-id", "-g", default=os.environ.get("LIGHTRAG_GRAPH_ID"),
                         help="graph id in the repository (default: $LIGHTRAG_GRAPH_ID, else the workspace, else 'default')")
        if need_dir:
            sub.add_argument("--working-dir", "-w", default=os.environ.get("WORKING_DIR", "./rag_storage"),
                             help="LightRAG working_dir (default: $WORKING_DIR or ./rag_storage)")
            sub.add_argument("--workspace", default=os.environ.get("WORKSPACE", ""),
                             help="LightRAG workspace (default: $WORKSPACE)")

    commands.add_parser("init", help="create the repository (with --create-bucket, its bucket or container too)")

    sub = commands.add_parser("snapshot", help="take a snapshot of a graph")
    if wanted("snapshot"):
        graph_options(sub)
        sub.add_argument("--description", "-m", help="a note stored with the snapshot")
        sub.add_argument("--tag", action="append", default=[], help="tag the snapshot (repeatable)")

    sub = commands.add_parser("list", help="list snapshots (of one graph, or all)")
    if wanted("list"):
        sub.add_argument("--graph-id", "-g", help="only this graph")

    sub = commands.add_parser("show", help="show one snapshot with its files")
    if wanted("show"):
        graph_options(sub, need_dir=False)
        sub.add_argument("snapshot_id")

    sub = commands.add_parser("verify", help="check that snapshots are whole")
    if wanted("verify"):
        graph_options(sub, need_dir=False)
        sub.add_argument("snapshot_id", nargs="?", help="one snapshot (default: every snapshot of the graph)")
        sub.add_argument("--all-graphs", action="store_true", help="verify every snapshot in the repository")
        sub.add_argument("--no-read-data", action="store_true", help="check structure only, read no chunk")
        sub.add_argument("--read-data-subset", type=float, help="read only this fraction (0-1] of the data")

    sub = commands.add_parser("restore", help="restore a snapshot")
    if wanted("restore"):
        graph_options(sub)
        sub.add_argument("snapshot_id")
        sub.add_argument("--target", "-t", help="restore into this folder (default: the graph's own folder)")
        sub.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
        sub.add_argument("--no-safety-snapshot", action="store_true",
                         help="do not snapshot the state the restore replaces")

    sub = commands.add_parser("delete", help="forget a snapshot")
    if wanted("delete"):
        graph_options(sub, need_dir=False)
        sub.add_argument("snapshot_id")

    sub = commands.add_parser("stats", help="storage statistics (per graph with --per-graph)")
    if wanted("stats"):
        sub.add_argument("--graph-id", "-g", help="only this graph")
        sub.add_argument("--per-graph", action="store_true",
                         help="every graph's numbers, last verify and schedule, and the overall ones")

    def retention_options(sub: argparse.ArgumentParser) -> None:
        periods = {"last": "the N newest snapshots", "hourly": "the newest of each of the last N hours",
                   "daily": "the newest of each of the last N days", "weekly": "the newest of each of the last N weeks",
                   "monthly": "the newest of each of the last N months", "yearly": "the newest of each of the last N years"}
        for period, meaning in periods.items():
            sub.add_argument(f"--keep-{period}", type=int, metavar="N", help=f"keep {meaning}")
        sub.add_argument("--keep-within", metavar="DURATION", help="keep everything younger than this (30d, 12h, 2w, 1y)")
        sub.add_argument("--keep-tag", action="append", default=[], metavar="TAG", help="keep snapshots with this tag (repeatable)")

    for name in ("forget", "retention"):
        sub = commands.add_parser(name, help="remove the snapshots a retention policy does not keep"
                                  + (" (same as forget)" if name == "retention" else ""))
        if not wanted(name):
            continue
        sub.add_argument("--graph-id", "-g", help="only this graph (default: every graph)")
        retention_options(sub)
        sub.add_argument("--dry-run", action="store_true", help="print the plan, remove nothing")
        sub.add_argument("--prune", action="store_true", help="prune afterwards (with the default grace period)")

    sub = commands.add_parser("prune", help="free data no snapshot references (two phases, with a grace period)")
    if wanted("prune"):
        sub.add_argument("--grace", default="1h", metavar="DURATION",
                         help="how long marked data waits before deletion (default 1h; 0 only when no backup runs)")
        sub.add_argument("--repack-threshold", type=float, default=0.25, metavar="SHARE",
                         help="repack packs with at least this share unused (default 0.25)")
        sub.add_argument("--dry-run", action="store_true", help="print what would happen, change nothing")

    sub = commands.add_parser("catalog", help="the SQLite catalog")
    if wanted("catalog"):
        catalog = sub.add_subparsers(dest="catalog_command", metavar="ACTION")
        catalog.add_parser("rebuild", help="recreate the catalog's snapshot list from the repository alone")
        catalog.add_parser("show", help="the catalog's path, schema version, graphs and schedules")

    sub = commands.add_parser("schedule", help="scheduled backups")
    if wanted("schedule"):
        schedule = sub.add_subparsers(dest="schedule_command", metavar="ACTION")
        set_ = schedule.add_parser("set", help="back a graph up on a schedule")
        graph_options(set_)
        when = set_.add_mutually_exclusive_group(required=True)
        when.add_argument("--every", metavar="INTERVAL", help="an interval: 6h, 30m, 1d, or hours")
        when.add_argument("--cron", metavar="EXPRESSION", help="a cron expression, e.g. '0 3 * * *' (UTC)")
        retention_options(set_)
        show = schedule.add_parser("show", help="a graph's schedule, or every schedule")
        show.add_argument("--graph-id", "-g", help="only this graph")
        remove = schedule.add_parser("remove", help="remove a graph's schedule")
        remove.add_argument("--graph-id", "-g", required=True)
        run_ = schedule.add_parser("run", help="run the scheduler in the foreground (Ctrl-C stops it)")
        run_.add_argument("--once", action="store_true", help="run the schedules that are due now, then exit")
        run_.add_argument("--poll", type=float, default=30.0, metavar="SECONDS", help="how often to look at the schedules")

    sub = commands.add_parser("serve", help="a REST server over a folder of graphs (needs the [server] extra)")
    if wanted("serve"):
        sub.add_argument("--graphs-dir", required=True, help="each subfolder is a graph; its name is the graph id")
        sub.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        sub.add_argument("--port", type=int, default=9721, help="port (default 9721)")
        sub.add_argument("--api-key", default=None, help="required X-API-Key (default: $LIGHTRAG_API_KEY; none: open)")
        sub.add_argument("--no-scheduler", action="store_true", help="do not run the schedules in this server")

    sub = commands.add_parser("demo", help="build a small real LightRAG graph offline and walk through backup and restore")
    if wanted("demo"):
        sub.add_argument("--dir", help="where to put the demo graph and repository (default: a new temp folder)")
    if not full and command not in commands.choices:
        return _parser(argv, full=True)
    return parser




def _graph_id(args: argparse.Namespace) -> str:
    return args.graph_id or getattr(args, "workspace", "") or os.environ.get("WORKSPACE") or "default"


def _storage(args: argparse.Namespace) -> Any:
    from .errors import InvalidInputError
    from .storage import default_location, parse_repo_options, storage_from_url

    location = args.repo or default_location()
    if not location:
        raise InvalidInputError(
            "no repository: pass --repo PATH|URL or set LIGHTRAG_BACKUP_STORAGE_PATH (or LIGHTRAG_BACKUP_S3_BUCKET)"
        )
    options = parse_repo_options(args.repo_option)
    # Reading commands must not create a repository (or a bucket) where there is none.
    creating = args.command in ("init", "snapshot", "serve") or (args.command == "schedule" and args.schedule_command == "set")
    return storage_from_url(location, create=creating, create_location=creating and args.create_bucket, **options)


def _manager(args: argparse.Namespace, storage: Any) -> Any:
    from .manager import BackupManager

    return BackupManager(storage, args.catalog)


def _backup(args: argparse.Namespace, storage: Any, manager: Any = None) -> Any:
    from .graph_backup import GraphBackup

    working_dir = getattr(args, "working_dir", None) or os.devnull
    backup = GraphBackup(_graph_id(args), storage, working_dir, getattr(args, "workspace", "") or "")
    if manager is not None:
        backup.catalog = manager.catalog
    return backup


def _policy(args: argparse.Namespace) -> Any:
    from .retention import RetentionPolicy

    return RetentionPolicy(
        keep_last=args.keep_last, keep_hourly=args.keep_hourly, keep_daily=args.keep_daily,
        keep_weekly=args.keep_weekly, keep_monthly=args.keep_monthly, keep_yearly=args.keep_yearly,
        keep_within=args.keep_within, keep_tags=tuple(args.keep_tag),
    )


def _has_policy(args: argparse.Namespace) -> bool:
    return any(getattr(args, f"keep_{p}") is not None for p in ("last", "hourly", "daily", "weekly", "monthly", "yearly", "within")) or bool(args.keep_tag)


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text)


def _snapshot_line(s: Any) -> str:
    counts = s.metadata
    return (
        f"{s.snapshot_id}  {s.timestamp:%Y-%m-%d %H:%M:%S}Z  {s.graph_id:<16} {_human(s.size_bytes):>10} "
        f"(+{_human(s.stored_bytes)} stored)  entities={counts.get('entities', '?')} "
        f"relations={counts.get('relations', '?')}  {','.join(s.tags)} {s.description or ''}"
    ).rstrip()


def run(args: argparse.Namespace, bar: ProgressBar) -> int:
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(args.dir, as_json=args.json, progress=bar)
    storage = _storage(args)
    if args.command in ("forget", "retention", "prune", "catalog", "schedule"):
        return _maintenance(args, storage, bar)
    if args.command == "serve":
        return _serve(args, storage)
    if args.command == "init":
        config = storage.config
        _print(args, {"url": storage.url, "location": storage.location, "config": config},
               f"repository {storage.url} (format {config['format_version']}, id {config['repository_id']}) is ready")
    elif args.command == "snapshot":
        snapshot = _backup(args, storage, _manager(args, storage)).create_snapshot(args.description, args.tag, progress=bar)
        bar.close()
        _print(args, snapshot.to_dict(), "snapshot " + _snapshot_line(snapshot))
    elif args.command == "list":
        from .graph_backup import GraphBackup

        graphs = [args.graph_id] if args.graph_id else storage.list_graphs()
        snapshots = [s for g in graphs for s in GraphBackup(g, storage, os.devnull).list_snapshots()]
        text = "\n".join(_snapshot_line(s) for s in snapshots) or "no snapshots"
        _print(args, [s.to_dict() for s in snapshots], text)
    elif args.command == "show":
        snapshot = _backup(args, storage).get_snapshot(args.snapshot_id)
        files = "\n".join(f"  {f.path:<45} {_human(f.size):>10}  {f.chunks} chunks" for f in snapshot.files)
        data = snapshot.to_dict() | {"files": [vars(f) for f in snapshot.files]}
        _print(args, data, _snapshot_line(snapshot) + f"\n  data hash {snapshot.data_hash}\n" + files)
    elif args.command == "verify":
        return _verify(args, storage, bar)
    elif args.command == "restore":
        backup = _backup(args, storage)
        if args.dry_run:
            plan = backup.plan_restore(args.snapshot_id, args.target)
            lines = [f"would restore snapshot {plan['snapshot_id']} into {plan['target']}:"]
            lines += [f"  write  {f['path']} ({_human(f['size'])})" for f in plan["files"]]
            lines += [f"  remove {name}" for name in plan["remove"]]
            _print(args, plan, "\n".join(lines))
            return 0
        backup.restore_snapshot(args.snapshot_id, args.target,
                                safety_snapshot=not args.no_safety_snapshot, progress=bar)
        bar.close()
        result = backup.last_restore
        safety = result.get("safety_snapshot")
        text = (f"restored snapshot {result['snapshot_id']} into {result['target']}: "
                f"{result['files_written']} files, {_human(result['bytes_written'])}")
        if safety:
            text += f"\nthe replaced state was kept as snapshot {safety['snapshot_id']}"
        _print(args, result, text)
    elif args.command == "delete":
        backup = _backup(args, storage, _manager(args, storage))
        snapshot_id = backup.get_snapshot(args.snapshot_id).snapshot_id
        backup.delete_snapshot(snapshot_id)
        _print(args, {"deleted": snapshot_id}, f"deleted snapshot {snapshot_id} (its data is freed by a prune)")
    elif args.command == "stats" and args.per_graph:
        stats = _manager(args, storage).get_backup_stats()
        lines = [f"{'graph':<24} {'snapshots':>9} {'logical':>10} {'stored':>10} {'dedup':>6}  newest                      last verify"]
        for graph_id, g in stats["graphs"].items():
            verify = g["last_verify"]
            verified = ("ok " if verify["ok"] else "DAMAGED ") + verify["verified_at"][:19] if verify else "never"
            lines.append(f"{graph_id:<24} {g['snapshot_count']:>9} {_human(g['logical_bytes']):>10} "
                         f"{_human(g['stored_bytes']):>10} {g['dedup_ratio']:>5.1f}x  {g['newest'] or '-':<27} {verified}")
        o = stats["overall"]
        lines.append(f"overall: {o['snapshot_count']} snapshots, {_human(o['logical_bytes'])} logical, "
                     f"{_human(o['repository_bytes'] or 0)} in the repository, storage efficiency {o['storage_efficiency']:.1%}")
        _print(args, stats, "\n".join(lines))
    elif args.command == "stats":
        stats = _backup(args, storage).get_backup_stats() if args.graph_id else storage.get_storage_stats()
        text = "\n".join(
            [
                f"snapshots       {stats['snapshot_count']}",
                f"logical size    {_human(stats['logical_bytes'])}",
                f"unique data     {_human(stats['unique_bytes'])} in {stats['unique_chunks']} chunks",
                f"stored          {_human(stats['stored_bytes'])}",
                f"dedup ratio     {stats['dedup_ratio']:.2f}x",
                f"compression     {stats['compression_ratio']:.2f}x",
                f"space saving    {stats['space_saving']:.1%}",
                f"oldest/newest   {stats['oldest']} / {stats['newest']}",
            ]
        )
        _print(args, stats, text)
    return 0


def _maintenance(args: argparse.Namespace, storage: Any, bar: ProgressBar) -> int:
    from .errors import InvalidInputError
    from .retention import parse_duration

    manager = _manager(args, storage)
    if args.command in ("forget", "retention"):
        if not _has_policy(args):
            raise InvalidInputError("say what to keep: --keep-last, --keep-daily, ..., --keep-within or --keep-tag")
        report = manager.apply_retention(_policy(args), graph_id=args.graph_id, dry_run=args.dry_run)
        lines = []
        for graph_id, decisions in report["graphs"].items():
            lines.append(f"graph {graph_id}:")
            for d in decisions:
                verdict = "keep  " if d["keep"] else ("would remove" if args.dry_run else "remove")
                lines.append(f"  {verdict} {d['snapshot_id']}  {d['time'][:19]}  {', '.join(d['reasons'])}")
        verb = "would remove" if args.dry_run else "removed"
        lines.append(f"{verb} {len(report['removed'])} snapshot(s)")
        if args.prune and not args.dry_run:
            report["prune"] = manager.prune(progress=bar)
            bar.close()
            lines.append(_prune_text(report["prune"]))
        _print(args, report, "\n".join(lines))
    elif args.command == "prune":
        grace = parse_duration(args.grace, default_unit="s").total_seconds()
        report = manager.prune(grace, dry_run=args.dry_run, repack_threshold=args.repack_threshold, progress=bar)
        bar.close()
        _print(args, report, _prune_text(report))
    elif args.command == "catalog":
        if args.catalog_command == "rebuild":
            count = manager.rebuild_catalog()
            _print(args, {"catalog": str(manager.catalog.path), "snapshots": count},
                   f"rebuilt {manager.catalog.path} from {storage.url}: {count} snapshots")
        elif args.catalog_command == "show":
            data = {"catalog": str(manager.catalog.path), "schema_version": manager.catalog.schema_version,
                    "graphs": manager.catalog.graphs(), "schedules": manager.list_schedules(),
                    "snapshots": len(manager.catalog.snapshots())}
            _print(args, data, json.dumps(data, indent=2, default=str))
        else:
            raise InvalidInputError("catalog takes an action: rebuild or show")
    elif args.command == "schedule":
        return _schedule(args, manager)
    return 0


def _serve(args: argparse.Namespace, storage: Any) -> int:
    from pathlib import Path

    from .errors import InvalidInputError

    graphs_dir = Path(args.graphs_dir).expanduser().absolute()
    if not graphs_dir.is_dir():
        raise InvalidInputError(f"--graphs-dir {graphs_dir} is not a folder")
    try:
        import uvicorn

        from .api import create_app
    except ImportError as error:
        raise InvalidInputError(f"serve needs FastAPI and uvicorn: pip install 'lightrag-backup[server]' ({error})") from None
    app = create_app(_manager(args, storage), api_key=args.api_key, graphs_dir=graphs_dir,
                     run_scheduler=not args.no_scheduler)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _prune_text(report: dict[str, Any]) -> str:
    verb = "would" if report["dry_run"] else "did"
    return (f"prune ({verb}): {report['snapshots']} snapshots, {report['packs_total']} packs; "
            f"marked {report['packs_marked']} ({_human(report['bytes_marked'])}), repacked {report['packs_repacked']} "
            f"({_human(report['bytes_repacked'])} copied), deleted {report['packs_deleted']} "
            f"({_human(report['bytes_deleted'])}), {report['packs_waiting']} waiting out their grace period, "
            f"{report['packs_spared']} spared")


def _schedule(args: argparse.Namespace, manager: Any) -> int:
    import asyncio

    from .errors import InvalidInputError

    action = args.schedule_command
    if action == "set":
        manager.register_graph(_graph_id(args), args.working_dir, args.workspace or "")
        retention = _policy(args) if _has_policy(args) else None
        manager.schedule_backup(_graph_id(args), args.every if args.every else args.cron, retention=retention)
        view = manager.get_schedule(_graph_id(args))
        _print(args, view, f"scheduled {view['graph_id']}: next run {view['next_run']}")
    elif action == "show":
        views = [manager.get_schedule(args.graph_id)] if args.graph_id else manager.list_schedules()
        views = [v for v in views if v]
        lines = [
            f"{v['graph_id']:<24} {v['cron'] or _every(v['interval_seconds']):<14} next {v['next_run'][:19]}  "
            f"last {v['last_result'] or '-'} {(v['last_run'] or '')[:19]} {v['last_error'] or ''}".rstrip()
            for v in views
        ]
        _print(args, views, "\n".join(lines) or "no schedules")
    elif action == "remove":
        removed = manager.unschedule_backup(args.graph_id)
        _print(args, {"removed": removed}, "removed" if removed else f"{args.graph_id} had no schedule")
        return 0 if removed else EXIT_ERROR
    elif action == "run":
        if args.once:
            results = asyncio.run(_run_due(manager))
            _print(args, [vars(r) for r in results],
                   "\n".join(f"{r.graph_id}: {r.result} {r.snapshot_id or ''} {r.error or ''}".rstrip() for r in results)
                   or "nothing due")
            return EXIT_ERROR if any(r.result == "failed" for r in results) else 0
        manager.scheduler.poll_seconds = args.poll

        async def forever() -> None:
            async with manager:
                await asyncio.Event().wait()

        print(f"lightrag-backup: running {len(manager.list_schedules())} schedule(s); Ctrl-C stops", file=sys.stderr)
        asyncio.run(forever())
    else:
        raise InvalidInputError("schedule takes an action: set, show, remove or run")
    return 0


async def _run_due(manager: Any) -> list[Any]:
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    due = [v["graph_id"] for v in manager.list_schedules() if v["enabled"] and datetime.fromisoformat(v["next_run"]) <= now]
    return [await manager.run_scheduled_backup(graph_id) for graph_id in due]


def _every(seconds: Optional[float]) -> str:
    if not seconds:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"every {int(seconds // size)}{unit}"
    return f"every {seconds:g}s"


def _verify(args: argparse.Namespace, storage: Any, bar: ProgressBar) -> int:
    if args.snapshot_id:
        report = _backup(args, storage, _manager(args, storage)).verify_snapshot(
            args.snapshot_id, not args.no_read_data, read_data_subset=args.read_data_subset, progress=bar)
    else:
        graph_id = None if args.all_graphs else _graph_id(args)
        report = storage.verify(graph_id, not args.no_read_data,
                                read_data_subset=args.read_data_subset, progress=bar)
    bar.close()
    _print(args, report.to_dict(), str(report))
    return 0 if report.ok else EXIT_DAMAGED


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser(argv)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    bar = ProgressBar(enabled=not args.no_progress and not args.json)
    from .errors import BackupError, OperationCancelledError

    try:
        return run(args, bar)
    except (KeyboardInterrupt, OperationCancelledError):
        bar.close()
        print("lightrag-backup: interrupted; nothing was committed and the repository is valid", file=sys.stderr)
        return 130
    except BackupError as error:
        bar.close()
        if args.json:
            print(json.dumps({"error": {"kind": error.kind, "message": str(error)}}))
        print(f"lightrag-backup: error: {error}", file=sys.stderr)
        return EXIT_ERROR


def console() -> None:
    """The ``lightrag-backup`` command: :func:`main`, then exit without tearing the interpreter
    down. Every result is written and flushed by then and nothing runs in the background (the
    server drains its jobs before it returns), so the only work skipped is freeing objects one
    by one: about 20 ms of every command here."""
    code = main()
    from . import _native

    _native._drain(5.0)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    console()
