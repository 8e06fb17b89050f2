"""The maintenance commands: forget (also ``retention``), prune, compact, repair, catalog rebuild/show."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ._common import (
    WITH_MANAGER,
    EXIT_DAMAGED,
    ProgressBar,
    Wanted,
    add_command,
    emit,
    has_policy,
    human,
    manager,
    policy,
    retention_options,
    storage,
)


def register(commands: Any, wanted: Wanted) -> None:
    for name in ("forget", "retention"):
        sub = add_command(commands, name, "remove the snapshots a retention policy does not keep"
                          + (" (same as forget)" if name == "retention" else ""), forget, defined=wanted(name))
        if wanted(name):
            sub.add_argument("--graph-id", "-g", help="only this graph (default: every graph)")
            retention_options(sub)
            sub.add_argument("--dry-run", action="store_true", help="print the plan, remove nothing")
            sub.add_argument("--prune", action="store_true", help="prune afterwards (with the default grace period)")

    sub = add_command(commands, "prune", "free data no snapshot references (two phases, with a grace period)",
                      prune, defined=wanted("prune"))
    if wanted("prune"):
        sub.add_argument("--grace", default="1h", metavar="DURATION",
                         help="how long marked data waits before deletion (default 1h; 0 only when no backup runs)")
        sub.add_argument("--repack-threshold", type=float, default=0.25, metavar="SHARE",
                         help="repack packs with at least this share unused (default 0.25)")
        sub.add_argument("--dry-run", action="store_true", help="print what would happen, change nothing")

    add_command(commands, "compact", "merge the small index objects into few large ones (prune and every 64th "
                "snapshot do it too)", compact, defined=wanted("compact"))

    sub = add_command(commands, "repair", "heal damaged data: record it, save what is whole, restore the rest from "
                      "the graphs' current files", repair, defined=wanted("repair"))
    if wanted("repair"):
        sub.add_argument("--graph-id", "-g", help="also heal from this graph's folder (with -w)")
        sub.add_argument("--working-dir", "-w", help="the graph's folder to heal from (with -g)")
        sub.add_argument("--workspace", default="", help="LightRAG workspace inside --working-dir")
        sub.add_argument("--dry-run", action="store_true", help="find and report the damage, change nothing")

    sub = commands.add_parser("catalog", help="the SQLite catalog")
    if wanted("catalog"):
        actions = sub.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
        add_command(actions, "rebuild", "recreate the catalog's snapshot list from the repository alone",
                    catalog_rebuild, defined=True, path="catalog rebuild")
        add_command(actions, "show", "the catalog's path, schema version, graphs and schedules",
                    catalog_show, defined=True, path="catalog show")


def forget(args: argparse.Namespace, bar: ProgressBar) -> int:
    from ..errors import InvalidInputError

    if not has_policy(args):
        raise InvalidInputError("say what to keep: --keep-last, --keep-daily, ..., --keep-within or --keep-tag")
    owner = manager(args, storage(args, then=WITH_MANAGER))
    report = owner.apply_retention(policy(args), graph_id=args.graph_id, dry_run=args.dry_run)
    lines = []
    for name, decisions in report["graphs"].items():
        lines.append(f"graph {name}:")
        for d in decisions:
            verdict = "keep  " if d["keep"] else ("would remove" if args.dry_run else "remove")
            lines.append(f"  {verdict} {d['snapshot_id']}  {d['time'][:19]}  {', '.join(d['reasons'])}")
    lines.append(f"{'would remove' if args.dry_run else 'removed'} {len(report['removed'])} snapshot(s)")
    if args.prune and not args.dry_run:
        report["prune"] = owner.prune(progress=bar)
        bar.close()
        lines.append(prune_text(report["prune"]))
    emit(args, report, "\n".join(lines), bar)
    return 0


def prune(args: argparse.Namespace, bar: ProgressBar) -> int:
    from ..retention import parse_duration

    grace = parse_duration(args.grace, default_unit="s").total_seconds()
    report = manager(args, storage(args, then=WITH_MANAGER)).prune(grace, dry_run=args.dry_run, repack_threshold=args.repack_threshold,
                                                progress=bar)
    emit(args, report, prune_text(report), bar)
    return 0


def compact(args: argparse.Namespace, bar: ProgressBar) -> int:
    report = manager(args, storage(args, then=WITH_MANAGER)).compact_index(progress=bar)
    emit(args, report, compact_text(report), bar)
    return 0


def compact_text(report: dict[str, Any]) -> str:
    if not report["merged"]:
        return f"compact: nothing to merge ({report['index_objects_before']} index object(s))"
    text = (f"compact: merged {report['merged']} small index object(s) into {report['written']}; "
            f"{report['index_objects_before']} -> {report['index_objects_after']} index object(s)")
    if report["unreadable"]:
        text += f" ({report['unreadable']} unreadable one(s) left in place: run `lightrag-backup repair`)"
    return text


def repair(args: argparse.Namespace, bar: ProgressBar) -> int:
    """Heal from every registered graph's folder, plus the one given with -g/-w."""
    from ..errors import InvalidInputError

    owner = manager(args, storage(args, then=WITH_MANAGER))
    if args.working_dir:
        if not args.graph_id:
            raise InvalidInputError("repair -w DIR needs -g GRAPH_ID: which graph's data that folder holds")
        owner.register_graph(args.graph_id, args.working_dir, args.workspace or "")
    report = owner.repair(dry_run=args.dry_run, progress=bar)
    emit(args, report, repair_text(report), bar)
    return EXIT_DAMAGED if report["unhealed"] else 0


def repair_text(report: dict[str, Any]) -> str:
    verb = "would" if report["dry_run"] else "did"
    unreadable = report.get("unreadable_objects") or []
    if not report["damaged_packs"] and not report["unhealed"] and not unreadable:
        return "repair: no damage found; every snapshot reads back whole"
    lines = [f"repair ({verb}): {len(report['damaged_packs'])} damaged pack(s); {report['chunks_copied']} whole chunk(s) "
             f"saved, {report['chunks_healed']} healed from the graphs' files, {report['chunks_lost']} lost"]
    if unreadable:
        done = "set aside under quarantine/" if report.get("set_aside") else "would be set aside"
        lines.append(f"{len(unreadable)} unreadable object(s) {done}: " + ", ".join(unreadable))
        if report.get("packs_reindexed"):
            lines.append(f"  {report['packs_reindexed']} pack(s) indexed again from their own trailers")
    for snapshot in report["snapshots"]:
        state = "healed" if snapshot["healed"] else "CANNOT BE RESTORED: " + ", ".join(snapshot["unrestorable_files"])
        lines.append(f"  {snapshot['graph_id']}/{snapshot['snapshot_id']}  {snapshot['time'][:19]}  {state}")
    for skipped in report["sources_skipped"]:
        lines.append(f"  not healed from {skipped}")
    if report["unhealed"]:
        lines.append(f"{len(report['unhealed'])} snapshot(s) cannot be restored whole; forget them, or restore the "
                     "files they lack into the graph's folder and run repair again")
    return "\n".join(lines)


def prune_text(report: dict[str, Any]) -> str:
    verb = "would" if report["dry_run"] else "did"
    return (f"prune ({verb}): {report['snapshots']} snapshots, {report['packs_total']} packs; "
            f"marked {report['packs_marked']} ({human(report['bytes_marked'])}), repacked {report['packs_repacked']} "
            f"({human(report['bytes_repacked'])} copied), deleted {report['packs_deleted']} "
            f"({human(report['bytes_deleted'])}), {report['packs_waiting']} waiting out their grace period, "
            f"{report['packs_spared']} spared"
            + (f"; merged {report['index_objects_merged']} small index object(s)" if report.get("index_objects_merged") else ""))


def catalog_rebuild(args: argparse.Namespace, bar: ProgressBar) -> int:
    store = storage(args, then=WITH_MANAGER)
    owner = manager(args, store)
    count = owner.rebuild_catalog()
    schedules = owner.last_rebuild.get("schedules", 0)
    from lightrag.replication import ReplicationManager  # the CLI may import replication

    targets = ReplicationManager(owner).restore_targets()
    points = owner.last_rebuild.get("recovery_points", 0)
    emit(args, {"catalog": str(owner.catalog.path), "snapshots": count, "schedules": schedules, "targets": targets,
                "recovery_points": points},
         f"rebuilt {owner.catalog.path} from {store.url}: {count} snapshots, {schedules} schedules, "
         f"{targets} replication targets, {points} recovery points")
    return 0


def catalog_show(args: argparse.Namespace, bar: ProgressBar) -> int:
    owner = manager(args, storage(args, then=WITH_MANAGER))
    data = {"catalog": str(owner.catalog.path), "schema_version": owner.catalog.schema_version,
            "graphs": owner.catalog.graphs(), "schedules": owner.list_schedules(),
            "snapshots": len(owner.catalog.snapshots())}
    emit(args, data, json.dumps(data, indent=2, default=str))
    return 0
