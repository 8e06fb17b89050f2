"""The replication commands: ``target add|list|health|remove``, ``replicate``, ``replication
status|logs`` (the CLI may import ``lightrag.replication``; backup's own modules never do)."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import WITH_MANAGER, EXIT_ERROR, ProgressBar, Wanted, add_command, emit, human, manager, storage


def register(commands: Any, wanted: Wanted) -> None:
    sub = commands.add_parser("target", help="replication targets (other instances, other repositories)")
    if wanted("target"):
        actions = sub.add_subparsers(dest="target_command", metavar="ACTION", required=True)
        add = add_command(actions, "add", "register a target", target_add, defined=True, path="target add")
        add.add_argument("name", help="the target's name")
        add.add_argument("url", help="another instance (http(s)://host:port), or another repository: s3://bucket/prefix, "
                                     "az://container/prefix, gs://bucket/prefix, file:///path or a folder")
        add.add_argument("--ca-file", help="PEM file of the private CA that signed an https:// target's certificate "
                                           "(default: the system's, or $SSL_CERT_FILE)")
        add.add_argument("--target-option", "-t", action="append", default=[], metavar="KEY=VALUE",
                         help="the target store's settings (endpoint, region, ...), as -o for the repository")
        add.add_argument("--api-key", help="the target's key, or env:VARIABLE (read from the environment) or "
                                           "file:PATH (read from a file) when it is used; a key itself on the command "
                                           "line is visible to every local user in the process list")
        add.add_argument("--graph", action="append", dest="graphs", metavar="GRAPH_ID",
                         help="replicate only this graph there (repeatable; default: every graph)")
        add.add_argument("--conflict-policy", choices=("reject", "source_wins"), default="reject",
                         help="when the target's newest snapshot of a graph was not sent from here: refuse "
                              "(reject), or push anyway and keep the target's own tagged diverged (source_wins)")
        add.add_argument("--disabled", action="store_true", help="register it without replicating to it yet")
        add_command(actions, "list", "the targets, with their last health check", target_list, defined=True,
                    path="target list")
        health = add_command(actions, "health", "check that a target can take snapshots now", target_health,
                             defined=True, path="target health")
        health.add_argument("name")
        remove = add_command(actions, "remove", "forget a target (its copies stay where they are)", target_remove,
                             defined=True, path="target remove")
        remove.add_argument("name")

    sub = add_command(commands, "replicate", "copy snapshots to the targets (only what each lacks)", replicate,
                      defined=wanted("replicate"))
    if wanted("replicate"):
        sub.add_argument("--graph-id", "-g", help="only this graph (default: every graph)")
        sub.add_argument("--snapshot", help="only this snapshot (id, prefix or latest; default: every one missing)")
        sub.add_argument("--target", action="append", dest="targets", metavar="NAME", help="only this target (repeatable)")
        sub.add_argument("--dry-run", action="store_true", help="say what would be sent, send nothing")

    sub = commands.add_parser("replication", help="replication status and logs")
    if wanted("replication"):
        actions = sub.add_subparsers(dest="replication_command", metavar="ACTION", required=True)
        status = add_command(actions, "status", "per target: last replicated snapshot, lag, last error",
                             replication_status, defined=True, path="replication status")
        status.add_argument("--graph-id", "-g", required=True)
        logs = add_command(actions, "logs", "replication attempts, newest first", replication_logs, defined=True,
                           path="replication logs")
        logs.add_argument("--graph-id", "-g")
        logs.add_argument("--target")
        logs.add_argument("--status", choices=("completed", "failed"))
        logs.add_argument("--limit", type=int, default=50)
        for name, help_text, handler in (
            ("apply", "on a standby: restore each replicated snapshot of a graph into the graph it serves (or stop)",
             replication_apply),
            ("continuous", "on a primary: snapshot and push each change of a graph within seconds (or stop)",
             replication_continuous),
        ):
            switch = add_command(actions, name, help_text, handler, defined=True, path=f"replication {name}")
            switch.add_argument("--graph-id", "-g", required=True)
            choice = switch.add_mutually_exclusive_group()
            choice.add_argument("--on", dest="enabled", action="store_const", const=True, help="from now on")
            choice.add_argument("--off", dest="enabled", action="store_const", const=False, help="stop")


def _replication(args: argparse.Namespace) -> Any:
    from lightrag.replication import ReplicationManager

    return ReplicationManager(manager(args, storage(args, then=WITH_MANAGER)))


def target_add(args: argparse.Namespace, bar: ProgressBar) -> int:
    from lightrag.replication import ReplicationTarget

    from ..storage import parse_repo_options

    target = ReplicationTarget(args.name, args.url, api_key=args.api_key, enabled=not args.disabled,
                               graphs=args.graphs, conflict_policy=args.conflict_policy, ca_file=args.ca_file,
                               options=parse_repo_options(args.target_option))
    _replication(args).register_target(target)
    emit(args, target.to_dict(), f"target {target.name} ({target.base_url}) registered as {target.target_id}")
    return 0


def target_list(args: argparse.Namespace, bar: ProgressBar) -> int:
    replication = _replication(args)
    rows = []
    for target in replication.targets():
        view = target.to_dict()
        view["last_health"] = next((t["last_health"] for t in replication.catalog.targets()
                                    if t["target_id"] == target.target_id), None)
        rows.append(view)
    lines = [f"{'name':<16} {'enabled':<8} {'health':<10} url" if rows else "no targets"]
    for row in rows:
        health = row["last_health"]
        state = "-" if not health else ("ok" if health["healthy"] else "UNHEALTHY")
        lines.append(f"{row['name']:<16} {str(row['enabled']).lower():<8} {state:<10} {row['base_url']}")
    emit(args, rows, "\n".join(lines))
    return 0


def target_health(args: argparse.Namespace, bar: ProgressBar) -> int:
    health = _replication(args).check_target_health(args.name)
    text = (f"{args.name}: healthy ({health['latency_ms']} ms)" if health["healthy"]
            else f"{args.name}: UNHEALTHY: {health['error']}")
    emit(args, health, text)
    return 0 if health["healthy"] else EXIT_ERROR


def target_remove(args: argparse.Namespace, bar: ProgressBar) -> int:
    _replication(args).remove_target(args.name)
    emit(args, {"removed": args.name}, f"target {args.name} removed (its copies stay where they are)")
    return 0


def replicate(args: argparse.Namespace, bar: ProgressBar) -> int:
    replication = _replication(args)
    graphs = [args.graph_id] if args.graph_id else replication.backup.storage.list_graphs()
    results = {g: replication.replicate_graph(g, args.snapshot, targets=args.targets, progress=bar,
                                              dry_run=args.dry_run) for g in graphs}
    lines = []
    for graph_id, per_target in results.items():
        for name, result in per_target.items():
            if result["status"] != "completed":
                lines.append(f"{graph_id} -> {name}: FAILED: {result['error']}")
                continue
            sent = [s for s in result["snapshots"] if s["status"] != "present"]
            verb = "would send" if args.dry_run else "sent"
            lines.append(f"{graph_id} -> {name}: {len(sent)} snapshot(s), {verb} {result['chunks_sent']} chunks "
                         f"({human(result['bytes_sent'])}) in {result['duration_ms']} ms; "
                         f"{len(result['snapshots']) - len(sent)} already there")
    emit(args, results, "\n".join(lines) or "nothing to replicate (no graphs or no targets)", bar)
    failed = any(r["status"] != "completed" for per in results.values() for r in per.values())
    return EXIT_ERROR if failed else 0


def replication_status(args: argparse.Namespace, bar: ProgressBar) -> int:
    status = _replication(args).get_replication_status(args.graph_id)
    lines = [f"graph {status['graph_id']}: newest snapshot {status['newest_snapshot'] or '-'}"]
    for name, target in status["targets"].items():
        state = "up to date" if target["holds_newest"] else f"behind by {target['lag_seconds']:.0f} s"
        lines.append(f"  {name:<16} {state:<20} last {target['last_replicated_snapshot'] or '-'}"
                     + (f"  last error: {target['last_error']}" if target["last_error"] else ""))
    emit(args, status, "\n".join(lines))
    return 0


def replication_logs(args: argparse.Namespace, bar: ProgressBar) -> int:
    logs = _replication(args).logs(args.graph_id, target=args.target, status=args.status, limit=args.limit)
    rows = [{**vars(log), "status": log.status.value} for log in logs]
    lines = [f"{r['attempted_at'][:19]}  {r['graph_id']:<16} {r['backup_id'][:8] or '-':<8} {r['status']:<9} "
             f"{human(r['bytes_sent'] or 0):>10}  {r['error_message'] or ''}".rstrip() for r in rows]
    emit(args, rows, "\n".join(lines) or "no replication attempts")
    return 0


def replication_apply(args: argparse.Namespace, bar: ProgressBar) -> int:
    """Show or set the graph's apply switch (kept in the repository: a running standby follows
    it from its next received snapshot)."""
    from lightrag.replication.apply import StandbyApplier

    applier = StandbyApplier(manager(args, storage(args, then=WITH_MANAGER)))
    if args.enabled is not None:
        applier.set_enabled(args.graph_id, args.enabled, require_served=False)
    status = applier.status(args.graph_id)
    last = status["last"] or {}
    text = (f"graph {args.graph_id}: applying {'on' if status['enabled'] else 'off'}; last applied "
            f"{last.get('snapshot_id') or '-'}" + (f" (error: {last['error']})" if last.get("error") else ""))
    emit(args, status, text)
    return 0


def replication_continuous(args: argparse.Namespace, bar: ProgressBar) -> int:
    """Show or set the graph's continuous switch (kept in the repository: a running server
    follows it within 15 s)."""
    from lightrag.replication.continuous import CONTINUOUS_ENV, CONTINUOUS_SETTINGS
    from lightrag.replication.switches import GraphSwitch

    switch = GraphSwitch(storage(args), CONTINUOUS_SETTINGS, CONTINUOUS_ENV)
    if args.enabled is not None:
        switch.set(args.graph_id, args.enabled)
    status = {"graph_id": args.graph_id, "enabled": switch.enabled(args.graph_id)}
    emit(args, status, f"graph {args.graph_id}: continuous replication {'on' if status['enabled'] else 'off'}")
    return 0
