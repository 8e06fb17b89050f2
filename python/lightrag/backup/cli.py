"""``lightrag-backup``: snapshot, list, show, verify, restore and delete LightRAG graph backups.

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightrag-backup",
        description="Backups of LightRAG knowledge graphs: deduplicated, compressed, verifiable.",
    )
    parser.add_argument("--repo", default=None,
                        help="repository path or URL: /path, file:///path, s3://bucket/prefix, az://container/prefix, "
                             "gs://bucket/prefix (default: $LIGHTRAG_BACKUP_STORAGE_PATH, else s3://$LIGHTRAG_BACKUP_S3_BUCKET)")
    parser.add_argument("--repo-option", "-o", action="append", default=[], metavar="KEY=VALUE",
                        help="a storage setting, e.g. endpoint=http://127.0.0.1:9000 or region=eu-west-1 (repeatable)")
    parser.add_argument("--create-bucket", action="store_true",
                        help="create the bucket or container when it does not exist (with snapshot)")
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

    sub = commands.add_parser("snapshot", help="take a snapshot of a graph")
    graph_options(sub)
    sub.add_argument("--description", "-m", help="a note stored with the snapshot")
    sub.add_argument("--tag", action="append", default=[], help="tag the snapshot (repeatable)")

    sub = commands.add_parser("list", help="list snapshots (of one graph, or all)")
    sub.add_argument("--graph-id", "-g", help="only this graph")

    sub = commands.add_parser("show", help="show one snapshot with its files")
    graph_options(sub, need_dir=False)
    sub.add_argument("snapshot_id")

    sub = commands.add_parser("verify", help="check that snapshots are whole")
    graph_options(sub, need_dir=False)
    sub.add_argument("snapshot_id", nargs="?", help="one snapshot (default: every snapshot of the graph)")
    sub.add_argument("--all-graphs", action="store_true", help="verify every snapshot in the repository")
    sub.add_argument("--no-read-data", action="store_true", help="check structure only, read no chunk")
    sub.add_argument("--read-data-subset", type=float, help="read only this fraction (0-1] of the data")

    sub = commands.add_parser("restore", help="restore a snapshot")
    graph_options(sub)
    sub.add_argument("snapshot_id")
    sub.add_argument("--target", "-t", help="restore into this folder (default: the graph's own folder)")
    sub.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    sub.add_argument("--no-safety-snapshot", action="store_true",
                     help="do not snapshot the state the restore replaces")

    sub = commands.add_parser("delete", help="forget a snapshot")
    graph_options(sub, need_dir=False)
    sub.add_argument("snapshot_id")

    sub = commands.add_parser("stats", help="storage statistics")
    sub.add_argument("--graph-id", "-g", help="only this graph")

    sub = commands.add_parser("demo", help="build a small real LightRAG graph offline and walk through backup and restore")
    sub.add_argument("--dir", help="where to put the demo graph and repository (default: a new temp folder)")
    return parser


def _graph_id(args: argparse.Namespace) -> str:
    return args.graph_id or getattr(args, "workspace", "") or os.environ.get("WORKSPACE") or "default"


def _storage(args: argparse.Namespace) -> Any:
    from .errors import InvalidInputError
    from .storage import default_location, storage_from_url

    location = args.repo or default_location()
    if not location:
        raise InvalidInputError(
            "no repository: pass --repo PATH|URL or set LIGHTRAG_BACKUP_STORAGE_PATH (or LIGHTRAG_BACKUP_S3_BUCKET)"
        )
    options: dict[str, str] = {}
    for item in args.repo_option:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--repo-option takes KEY=VALUE, got {item!r}")
        options[key.strip()] = value
    # Reading commands must not create a repository (or a bucket) where there is none.
    creating = args.command == "snapshot"
    return storage_from_url(location, create=creating, create_location=creating and args.create_bucket, **options)


def _backup(args: argparse.Namespace, storage: Any) -> Any:
    from .graph_backup import GraphBackup

    working_dir = getattr(args, "working_dir", None) or os.devnull
    return GraphBackup(_graph_id(args), storage, working_dir, getattr(args, "workspace", "") or "")


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
    if args.command == "snapshot":
        snapshot = _backup(args, storage).create_snapshot(args.description, args.tag, progress=bar)
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
        backup = _backup(args, storage)
        snapshot_id = backup.get_snapshot(args.snapshot_id).snapshot_id
        backup.delete_snapshot(snapshot_id)
        _print(args, {"deleted": snapshot_id}, f"deleted snapshot {snapshot_id} (its data is freed by a prune)")
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


def _verify(args: argparse.Namespace, storage: Any, bar: ProgressBar) -> int:
    if args.snapshot_id:
        report = _backup(args, storage).verify_snapshot(
            args.snapshot_id, not args.no_read_data, read_data_subset=args.read_data_subset, progress=bar)
    else:
        graph_id = None if args.all_graphs else _graph_id(args)
        report = storage.verify(graph_id, not args.no_read_data,
                                read_data_subset=args.read_data_subset, progress=bar)
    bar.close()
    _print(args, report.to_dict(), str(report))
    return 0 if report.ok else EXIT_DAMAGED


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
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


if __name__ == "__main__":
    sys.exit(main())
