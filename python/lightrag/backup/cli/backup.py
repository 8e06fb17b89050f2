"""The backup commands: init, snapshot, list, show, verify, restore, diff, delete, stats, demo."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ._common import (
    WITH_GRAPH,
    WITH_MANAGER,
    WITH_RESTORE,
    EXIT_DAMAGED,
    EXIT_ERROR,
    SNAPSHOT_HEADER,
    ProgressBar,
    Wanted,
    add_command,
    backup,
    emit,
    graph_folder,
    graph_id,
    graph_options,
    human,
    manager,
    snapshot_line,
    storage,
)


def register(commands: Any, wanted: Wanted) -> None:
    sub = add_command(commands, "init", "create the repository, encrypted (with --create-bucket, its bucket or "
                      "container too)", init, defined=wanted("init"))
    if wanted("init"):
        sub.add_argument("--encryption", choices=("aes-256-gcm", "none"), default="aes-256-gcm",
                         help="aes-256-gcm (the default: needs a password, see --password-file) or none (an "
                              "unencrypted repository: a warning on every command)")
        sub.add_argument("--from-key-export", metavar="PATH",
                         help="share the master key of another repository (the output of `key export` there): "
                              "chunks then deduplicate and replicate between them as stored")
        sub.add_argument("--key-per-graph", dest="key_per_graph_repo", action="store_true",
                         help="give every graph a key of its own at its first snapshot, so that any graph can be "
                              "shredded (`shred -g GRAPH`); dedup then stops at graph boundaries")

    sub = add_command(commands, "snapshot", "take a snapshot of a graph", snapshot, defined=wanted("snapshot"))
    if wanted("snapshot"):
        graph_options(sub)
        sub.add_argument("--description", "-m", help="a note stored with the snapshot")
        sub.add_argument("--tag", action="append", default=[], help="tag the snapshot (repeatable)")
        sub.add_argument("--init", action="store_true",
                         help="create the repository first when there is none (first use)")
        sub.add_argument("--adopt", action="store_true",
                         help="take the snapshot even though the graph id holds snapshots of another folder "
                              "(the graph moved here)")
        sub.add_argument("--key-per-graph", action="store_true",
                         help="at the graph's first snapshot, give it a key of its own so that it can be shredded "
                              "later (`shred -g GRAPH`)")
        sub.add_argument("--from-env", nargs="?", const=".env", metavar="ENV_FILE",
                         help="open the graph from the variables LightRAG's server reads (LIGHTRAG_KV_STORAGE, "
                              "POSTGRES_*, REDIS_URI, EMBEDDING_DIM, ...; the environment, then ENV_FILE, "
                              "default ./.env): a graph in databases, without an LLM")

    sub = add_command(commands, "list", "list snapshots (of one graph, or all)", list_, defined=wanted("list"))
    if wanted("list"):
        sub.add_argument("--graph-id", "-g", help="only this graph")

    sub = add_command(commands, "show", "show one snapshot with its files", show, defined=wanted("show"))
    if wanted("show"):
        graph_options(sub, need_dir=False)
        sub.add_argument("snapshot_id", help="a snapshot id, a unique prefix of one, or latest")

    sub = add_command(commands, "verify", "check that snapshots are whole", verify, defined=wanted("verify"))
    if wanted("verify"):
        graph_options(sub, need_dir=False)
        sub.add_argument("snapshot_id", nargs="?", help="one snapshot (default: every snapshot of the graph)")
        sub.add_argument("--all-graphs", action="store_true", help="verify every snapshot in the repository")
        sub.add_argument("--no-read-data", action="store_true", help="check structure only, read no chunk")
        sub.add_argument("--read-data-subset", type=float, help="read only this fraction (0-1] of the data")

    sub = add_command(commands, "restore", "restore a snapshot", restore, defined=wanted("restore"))
    if wanted("restore"):
        graph_options(sub, working_dir_default=None)
        sub.add_argument("snapshot_id", help="a snapshot id, a unique prefix of one, or latest")
        sub.add_argument("--target", "-t", help="restore into this folder (default: the graph's own folder)")
        sub.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
        sub.add_argument("--no-safety-snapshot", action="store_true",
                         help="do not snapshot the state the restore replaces")
        sub.add_argument("--into-env", metavar="ENV_FILE",
                         help="restore into the storages this file names, as LightRAG's server reads them "
                              "(LIGHTRAG_KV_STORAGE, POSTGRES_*, REDIS_URI, WORKSPACE, ...): any backend")
        sub.add_argument("--replace", action="store_true",
                         help="replace a graph the --into-env or --target place already holds; with --document, "
                              "replace the graph's current version of the document")
        sub.add_argument("--document", "-d", action="append", metavar="DOC",
                         help="restore only this document (its id, or its file path) into the graph as it is now, "
                              "with its chunks, vectors, LLM cache, entities and relations; repeatable")
        sub.add_argument("--entity", "-e", action="append", metavar="NAME",
                         help="put this entity (deleted or edited by hand) back as the snapshot holds it, with its "
                              "relations; repeatable (--replace for one the graph still holds)")

    sub = add_command(commands, "diff", "what changed in the graph between two snapshots, or since one: documents, "
                      "entities, relations, chunks, vectors", diff, defined=wanted("diff"))
    if wanted("diff"):
        graph_options(sub, working_dir_default=None)
        sub.add_argument("from_snapshot", metavar="FROM",
                         help="a snapshot id, a unique prefix of one, latest, or a recovery point id")
        sub.add_argument("to", metavar="TO", nargs="?", default="live",
                         help="another snapshot (or recovery point), or live (the default: the graph in "
                              "-w/--working-dir as it is now)")
        sub.add_argument("--limit", type=int, default=20,
                         help="items listed per kind and part (default 20; --json lists them all)")

    sub = add_command(commands, "deleted", "documents earlier snapshots hold and the graph no longer does, each "
                      "with the newest snapshot holding it", deleted, defined=wanted("deleted"))
    if wanted("deleted"):
        graph_options(sub, working_dir_default=None)

    sub = add_command(commands, "delete", "forget a snapshot", delete, defined=wanted("delete"))
    if wanted("delete"):
        graph_options(sub, need_dir=False)
        sub.add_argument("snapshot_id", help="a snapshot id, a unique prefix of one, or latest")

    sub = add_command(commands, "shred", "erase a graph from the repository for good: delete its key, so that no "
                      "snapshot of it can be read again (replication carries it to every target)", shred,
                      defined=wanted("shred"))
    if wanted("shred"):
        sub.add_argument("--graph-id", "-g", required=True, help="the graph to shred")
        sub.add_argument("--confirm", metavar="GRAPH", required=True,
                         help="the graph id again: there is no undo")

    sub = add_command(commands, "stats", "storage statistics (per graph with --per-graph)", stats,
                      defined=wanted("stats"))
    if wanted("stats"):
        sub.add_argument("--graph-id", "-g", help="only this graph")
        sub.add_argument("--per-graph", action="store_true",
                         help="every graph's numbers, last verify and schedule, and the overall ones")

    sub = add_command(commands, "demo", "build a small real LightRAG graph offline and walk through backup and restore",
                      demo, defined=wanted("demo"))
    if wanted("demo"):
        sub.add_argument("--dir", help="where to put the demo graph and repository (default: a new temp folder)")
        sub.add_argument("--replication", action="store_true",
                         help="a primary and a standby server on loopback instead: replicate, kill the primary "
                              "(SIGKILL), fail over; each step timed")
        sub.add_argument("--verbose", "-v", action="store_true", help="show LightRAG's own log lines too")


def init(args: argparse.Namespace, bar: ProgressBar) -> int:
    store = storage(args)
    config = store.config
    encryption = (f"encrypted{', a key per graph' if config.get('key_per_graph') else ''}, key fingerprint "
                  f"{config['key_fingerprint']}" if config.get("encrypted") else "NOT encrypted")
    emit(args, {"url": store.url, "location": store.location, "config": config},
         f"repository {store.url} (format {config['format_version']}, id {config['repository_id']}, {encryption}) "
         "is ready")
    return 0


def snapshot(args: argparse.Namespace, bar: ProgressBar) -> int:
    if args.from_env is not None:
        return _snapshot_from_env(args, bar)
    graph_folder(args)  # checked first: bad input changes nothing, leaves no repository behind
    store = storage(args, then=WITH_MANAGER)
    made = backup(args, store, manager(args, store)).create_snapshot(args.description, args.tag, progress=bar,
                                                                     adopt=args.adopt)
    emit(args, made.to_dict(), "snapshot " + snapshot_line(made), bar)
    return 0


def _snapshot_from_env(args: argparse.Namespace, bar: ProgressBar) -> int:
    """A snapshot of the graph LightRAG's variables name, opened here without an LLM. No
    LightRAG pipeline runs in this process, so a LightRAG server writing to the same
    databases meanwhile is not paused: back up a served graph through its server."""
    from ..graph_backup import GraphBackup
    from ..twins import run_sync as _run_sync
    from ..records.target import StorageConfig, embedding_of, opened

    config = StorageConfig.from_env(env_file=args.from_env)
    args.workspace = config.workspace
    args.working_dir = config.working_dir
    store = storage(args, then=WITH_MANAGER)
    owner = manager(args, store)
    dim, model = embedding_of(config)

    async def run() -> Any:
        async with opened(config, embedding_dim=dim, model_name=model) as rag:
            made = GraphBackup.from_rag(graph_id(args), rag, store, recorder=owner.catalog)
            return await made.acreate_snapshot(
                args.description, args.tag, progress=bar, adopt=args.adopt,
                metadata={"opened_by": "lightrag-backup snapshot --from-env"},
            )

    made = _run_sync(run())
    emit(args, made.to_dict(), "snapshot " + snapshot_line(made), bar)
    return 0


def list_(args: argparse.Namespace, bar: ProgressBar) -> int:
    store = storage(args, then=WITH_GRAPH)
    from ..snapshots import GraphSnapshots

    graphs = [args.graph_id] if args.graph_id else store.list_graphs()
    snapshots = [s for g in graphs for s in GraphSnapshots(g, store).list_snapshots()]
    # A damaged manifest hides nothing else: the rest are listed, it is flagged.
    unreadable = store.unreadable_snapshots(args.graph_id or None)
    flagged = [f"! {u['snapshot_id']}  graph {u['graph_id']}  UNREADABLE: {u['reason']}" for u in unreadable]
    if unreadable:
        flagged.append("  (`lightrag-backup verify` names the damage; `delete -g GRAPH ID` or `repair` resolves it)")
    shredded = [g for g in store.shredded_graphs() if not args.graph_id or g["graph_id"] == args.graph_id]
    flagged += [f"x graph {g['graph_id']}  SHREDDED at {g['shredded_at']} on {g['hostname']}: its snapshots can "
                "never be read again" for g in shredded]
    lines = [SNAPSHOT_HEADER, *(snapshot_line(s) for s in snapshots)] if snapshots else ["no snapshots"]
    emit(args, [s.to_dict() for s in snapshots] + [dict(u, unreadable=True) for u in unreadable]
         + [dict(g, shredded=True) for g in shredded], "\n".join(lines + flagged))
    return 0


def show(args: argparse.Namespace, bar: ProgressBar) -> int:
    found = backup(args, storage(args, then=WITH_GRAPH)).get_snapshot(args.snapshot_id)
    files = "\n".join(f"  {f.path:<45} {human(f.size):>10}  {f.chunks} chunks" for f in found.files)
    data = found.to_dict() | {"files": [vars(f) for f in found.files]}
    emit(args, data, snapshot_line(found) + f"\n  data hash {found.data_hash}\n" + files)
    return 0


def verify(args: argparse.Namespace, bar: ProgressBar) -> int:
    store = storage(args, then=WITH_MANAGER if args.snapshot_id else ())
    if args.snapshot_id:
        report = backup(args, store, manager(args, store)).verify_snapshot(
            args.snapshot_id, not args.no_read_data, read_data_subset=args.read_data_subset, progress=bar)
    else:
        if not args.all_graphs:
            refuse_shredded(store, graph_id(args))
        report = store.verify(None if args.all_graphs else graph_id(args), not args.no_read_data,
                              read_data_subset=args.read_data_subset, progress=bar)
    emit(args, report.to_dict(), str(report), bar)
    if report.snapshots_checked == 0:
        return EXIT_ERROR  # nothing was checked: a typo'd graph id must not pass as "whole"
    return 0 if report.ok else EXIT_DAMAGED


def restore(args: argparse.Namespace, bar: ProgressBar) -> int:
    graph = backup(args, storage(args, then=WITH_RESTORE))
    if args.document or args.entity:
        return _restore_documents(args, bar, graph)
    if args.into_env is not None:
        return _restore_into_env(args, bar, graph)
    if args.target is None and args.working_dir is None:
        # No place given: never guess one (./rag_storage of whatever folder this runs in).
        from ..errors import InvalidInputError

        found = graph.get_snapshot(args.snapshot_id)
        meta = found.metadata
        origin = f"{meta.get('hostname', '?')}:{meta.get('working_dir', '?')}"
        if meta.get("workspace"):
            origin += f" (workspace {meta['workspace']!r})"
        raise InvalidInputError(
            f"say where to restore snapshot {found.snapshot_id}: --target DIR for a new folder, or -w/--working-dir "
            f"(or WORKING_DIR) for the graph's own folder; it was taken of {origin}"
        )
    if args.dry_run:
        plan = graph.plan_restore(args.snapshot_id, args.target)
        lines = [f"would restore snapshot {plan['snapshot_id']} into {plan['target']}:"]
        lines += [f"  write  {f['path']} ({human(f['size'])})" for f in plan["files"]]
        lines += [f"  remove {name}" for name in plan["remove"]]
        emit(args, plan, "\n".join(lines))
        return 0
    graph.restore_snapshot(args.snapshot_id, args.target, replace=args.replace,
                           safety_snapshot=not args.no_safety_snapshot, progress=bar)
    result = graph.last_restore
    safety = result.get("safety_snapshot")
    if "restored" in result:  # through records: a database-backed snapshot, or into databases
        text = f"restored snapshot {result['snapshot_id']} into {result['target']}: {_counts(result['restored'])}"
    else:
        text = (f"restored snapshot {result['snapshot_id']} into {result['target']}: "
                f"{result['files_written']} files, {human(result['bytes_written'])}")
    if safety:
        text += f"\nthe replaced state was kept as snapshot {safety['snapshot_id']}"
    emit(args, result, text, bar)
    return 0


def _restore_documents(args: argparse.Namespace, bar: ProgressBar, graph: Any) -> int:
    from ..errors import InvalidInputError

    option = "--document" if args.document else "--entity"
    if args.document and args.entity:
        raise InvalidInputError("restore documents (--document) or entities (--entity), one at a time")
    if args.target is not None or args.into_env is not None:
        raise InvalidInputError(f"{option} restores into the graph's own folder (-w/--working-dir): no --target or "
                                "--into-env with it")
    if args.working_dir is None:
        raise InvalidInputError("say which graph they go back into: -w/--working-dir (or WORKING_DIR)")
    from ..display import quiet_lightrag_logs

    quiet_lightrag_logs()
    restore_some = graph.restore_documents if args.document else graph.restore_entities
    result = restore_some(args.snapshot_id, args.document or args.entity, replace=args.replace, dry_run=args.dry_run,
                          safety_snapshot=not args.no_safety_snapshot, progress=bar)
    emit(args, result, documents_text(result), bar)
    return 0


def documents_text(result: dict[str, Any], limit: int = 10) -> str:
    """A document restore's report (or plan) for a reader."""
    def names(items: list[Any]) -> str:
        shown = [" ~ ".join(item) if isinstance(item, list) else str(item) for item in items[:limit]]
        more = f", and {len(items) - limit} more" if len(items) > limit else ""
        return ", ".join(shown) + more

    verb = "would restore" if result.get("dry_run") else "restored"
    docs = result["documents"]
    what = f"{len(docs)} document(s)" if docs else "entities"
    lines = [f"{verb} {what} of snapshot {result['snapshot_id']}"
             + (f" into {result['target']}" if result.get("target") else "") + ":"]
    lines += [f"  {d['id']} ({d.get('file_path')}, {d['chunks']} chunk(s))" for d in docs]
    if result.get("replaced"):
        lines.append(f"  replacing the graph's current version(s): {', '.join(result['replaced'])}")
    if docs:
        lines.append(f"  {result['chunks']} chunk(s), {result['llm_cache_entries']} LLM cache entrie(s)")
    for kind in ("entities", "relations"):
        part = result[kind]
        lines.append(f"  {kind}: {len(part['restored'])} restored, {len(part['changed'])} changed "
                     f"({len(part['rebuilt'])} rebuilt by LightRAG from their chunks)")
        for what in ("restored", "changed"):
            if part[what]:
                lines.append(f"    {what}: {names(part[what])}")
    calls = result.get("calls")
    if calls is not None:
        lines.append(f"  model calls: {calls['llm']} LLM, {calls['embedding']} embedding ({calls['embedded_texts']} "
                     f"text(s) embedded; {calls['vectors_from_snapshot']} vector(s) from the snapshot)")
    if result.get("safety_snapshot"):
        lines.append(f"the state before was kept as snapshot {result['safety_snapshot']['snapshot_id']}")
    return "\n".join(lines)


def _counts(restored: dict[str, Any]) -> str:
    text = ", ".join(f"{count} {name}" for name, count in restored.items() if count and isinstance(count, int))
    lost = restored.get("not_stored")
    if lost:
        text += "; not stored by the target (it has no place for them): " + ", ".join(
            f"{field} in {count} records" for field, count in lost.items())
    return text


def _restore_into_env(args: argparse.Namespace, bar: ProgressBar, graph: Any) -> int:
    from ..errors import InvalidInputError
    from ..records.target import StorageConfig

    if args.target is not None or args.dry_run:
        raise InvalidInputError("--into-env restores into the storages its file names: no --target or --dry-run with it")
    if not os.path.isfile(args.into_env):
        raise InvalidInputError(f"--into-env {args.into_env!r}: no such file")
    # Only the file names the target: this process's own variables may name the source.
    config = StorageConfig.from_env({}, env_file=args.into_env)
    graph.restore_snapshot(args.snapshot_id, into=config, replace=args.replace, progress=bar)
    result = graph.last_restore
    emit(args, result, f"restored snapshot {result['snapshot_id']} into {result['target']}: {_counts(result['restored'])}",
         bar)
    return 0


def diff(args: argparse.Namespace, bar: ProgressBar) -> int:
    graph = backup(args, storage(args, then=WITH_GRAPH))
    if args.to == "live" and graph.source is None:
        from ..errors import InvalidInputError

        raise InvalidInputError("diff against the live graph needs its folder: -w/--working-dir (or WORKING_DIR), "
                                "or name a second snapshot")
    found = graph.diff(args.from_snapshot, args.to)
    emit(args, dict(found, counts=found.counts), "\n".join(found.lines(max(0, args.limit))))
    return 0


def deleted(args: argparse.Namespace, bar: ProgressBar) -> int:
    graph = backup(args, storage(args, then=WITH_GRAPH))
    found = graph.deleted_documents()
    against = "the graph in " + str(graph.source.graph_dir) if graph.source is not None else "the newest snapshot"
    lines = [f"{len(found)} document(s) in earlier snapshots and not in {against}:"] if found else [
        f"no document of an earlier snapshot is missing from {against}"]
    lines += [f"  {d['id']}  {d.get('file_path') or '?'}  {d.get('chunks') if d.get('chunks') is not None else '?'} "
              f"chunks  newest in {d['snapshot_id']} ({d['snapshot_time'][:19]})" for d in found]
    emit(args, found, "\n".join(lines))
    return 0


def delete(args: argparse.Namespace, bar: ProgressBar) -> int:
    store = storage(args, then=WITH_MANAGER)
    graph = backup(args, store, manager(args, store))
    from ..errors import IntegrityError

    try:
        snapshot_id = graph.get_snapshot(args.snapshot_id).snapshot_id
    except IntegrityError:
        snapshot_id = args.snapshot_id  # an unreadable manifest: deleted by its id, the way out of the damage
    graph.delete_snapshot(snapshot_id)
    emit(args, {"deleted": snapshot_id}, f"deleted snapshot {snapshot_id} (its data is freed by a prune)")
    return 0


def refuse_shredded(store: Any, graph: str) -> None:
    """Raise :class:`GraphShreddedError` for a shredded graph (whose snapshots are gone)."""
    from ..errors import GraphShreddedError

    for record in store.shredded_graphs():
        if record["graph_id"] == graph:
            raise GraphShreddedError(f"graph {graph!r} was shredded at {record['shredded_at']}: its key is deleted "
                                     "and its snapshots can never be read again")


def shred(args: argparse.Namespace, bar: ProgressBar) -> int:
    store = storage(args, then=WITH_MANAGER)
    report = manager(args, store).shred_graph(args.graph_id, confirm=args.confirm)
    deleted = len(report["snapshots_deleted"])
    done = "was already shredded; finished" if report["already_shredded"] else "shredded"
    emit(args, report, f"graph {args.graph_id} {done} at {report['shredded_at']}: its key is deleted, {deleted} "
         "snapshot(s) can never be read again; `prune` frees its data, replication carries the shred to every target")
    return 0


def stats(args: argparse.Namespace, bar: ProgressBar) -> int:
    store = storage(args)
    if args.per_graph:
        numbers = manager(args, store).get_backup_stats()
        lines = [f"{'graph':<24} {'snapshots':>9} {'logical':>10} {'stored':>10} {'dedup':>6}  newest                      last verify"]
        for name, g in numbers["graphs"].items():
            check = g["last_verify"]
            verified = ("ok " if check["ok"] else "DAMAGED ") + check["verified_at"][:19] if check else "never"
            lines.append(f"{name:<24} {g['snapshot_count']:>9} {human(g['logical_bytes']):>10} "
                         f"{human(g['stored_bytes']):>10} {g['dedup_ratio']:>5.1f}x  {g['newest'] or '-':<27} {verified}")
        o = numbers["overall"]
        lines.append(f"overall: {o['snapshot_count']} snapshots, {human(o['logical_bytes'])} logical, "
                     f"{human(o['repository_bytes'] or 0)} in the repository, storage efficiency {o['storage_efficiency']:.1%}")
        emit(args, numbers, "\n".join(lines))
        return 0
    numbers = backup(args, store).get_backup_stats() if args.graph_id else store.get_storage_stats()
    emit(args, numbers, "\n".join([
        f"snapshots       {numbers['snapshot_count']}",
        f"logical size    {human(numbers['logical_bytes'])}",
        f"unique data     {human(numbers['unique_bytes'])} in {numbers['unique_chunks']} chunks",
        f"stored          {human(numbers['stored_bytes'])}",
        f"dedup ratio     {numbers['dedup_ratio']:.2f}x",
        f"compression     {numbers['compression_ratio']:.2f}x",
        f"space saving    {numbers['space_saving']:.1%}",
        f"oldest/newest   {numbers['oldest']} / {numbers['newest']}",
    ]))
    return 0


def demo(args: argparse.Namespace, bar: ProgressBar) -> int:
    if args.replication:
        bar.close()
        from ..demo_replication import run_replication_demo

        return run_replication_demo(args.dir, as_json=args.json, verbose=args.verbose)
    from ..demo import run_demo

    return run_demo(args.dir, as_json=args.json, progress=bar, verbose=args.verbose)

