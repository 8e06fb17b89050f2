"""``lightrag-backup demo``: the whole story on a small real graph, offline, in seconds.

Builds a LightRAG graph with the real ``lightrag-hku`` package (stub LLM and embeddings),
snapshots it live into a local repository, changes the graph (inserts documents, deletes an
entity, edits a relation), snapshots again, restores the first snapshot into a fresh folder
and into the running instance, and checks that files and queries match the first state.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any, Optional


#: Where the demo keeps the throwaway password of its repository.
PASSWORD_FILE = "repository-password"


def throwaway_password(base: Path) -> str:
    """The demo repository's password: made once per demo folder, kept beside it (0600) so a
    second run into the same folder, or a curious operator, opens the same repository."""
    import os
    import secrets

    path = base / PASSWORD_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    base.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(password + "\n")
    return password


def run_demo(directory: Optional[str], *, as_json: bool = False, progress: Any = None, verbose: bool = False) -> int:
    """Run the demo; its own story goes to stdout, LightRAG's log lines only with ``verbose``."""
    return asyncio.run(_demo(directory, as_json, progress, verbose))


async def _demo(directory: Optional[str], as_json: bool, progress: Any, verbose: bool) -> int:
    from lightrag.base import DocStatus

    from . import GraphBackup
    from .offline_graph import build_graph, documents, entity_names, graph_files
    from .storage import LocalBackupStorage

    from .display import quiet_lightrag_logs

    quiet_lightrag_logs(verbose)
    bar_close = getattr(progress, "close", lambda: None)

    base = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="lightrag-backup-demo-"))
    graph_dir, repo_dir = base / "rag_storage", base / "backups"
    steps: list[str] = []

    def say(line: str) -> None:
        steps.append(line)
        if not as_json:
            bar_close()  # a progress bar's line ends before the story goes on
            print(line, flush=True)

    say(f"building a LightRAG graph offline in {graph_dir}")
    rag = await build_graph(graph_dir, 6)
    try:
        password = throwaway_password(base)
        backup = GraphBackup.from_rag("demo", rag, LocalBackupStorage(repo_dir, password=password))
        say(f"the repository {repo_dir} is encrypted; its throwaway password is in {base / PASSWORD_FILE}")
        first = await backup.acreate_snapshot("initial graph", ["demo"], progress=progress)
        original_files = graph_files(graph_dir)
        original_nodes = sorted(n.id for n in (await rag.get_knowledge_graph("*", max_depth=2)).nodes)
        say(f"snapshot 1: {first.snapshot_id}  {first.metadata['entities']} entities, "
            f"{first.metadata['relations']} relations, {first.size_bytes} bytes")

        await rag.ainsert(documents(2, seed=1, start=100))
        names = entity_names(graph_dir)
        victim = names[len(names) // 2]
        await rag.adelete_by_entity(victim)
        edges = (await rag.get_knowledge_graph("*", max_depth=2)).edges
        edge = edges[0]
        await rag.aedit_relation(edge.source, edge.target, {"description": "edited by the demo"})
        second = await backup.acreate_snapshot("after changes", ["demo"], progress=progress)
        say(f"changed the graph (2 documents inserted, entity {victim!r} deleted, one relation edited)")
        say(f"snapshot 2: {second.snapshot_id}  {second.metadata['entities']} entities, "
            f"{second.metadata['relations']} relations, stored {second.stored_bytes} new bytes")

        restored_dir = base / "restored"
        await backup.arestore_snapshot(first.snapshot_id, target_dir=restored_dir, progress=progress)
        files_match = graph_files(restored_dir) == original_files
        say(f"restored snapshot 1 into {restored_dir}: files byte-identical: {files_match}")

        await backup.arestore_snapshot(first.snapshot_id, progress=progress)
        live_nodes = sorted(n.id for n in (await rag.get_knowledge_graph("*", max_depth=2)).nodes)
        live_match = live_nodes == original_nodes
        say(f"restored snapshot 1 into the running instance: its graph matches snapshot 1: {live_match}")

        # Users lose documents, not whole graphs: one deleted through LightRAG, named by the
        # diff, and put back alone, with no model call.
        statuses = await rag.doc_status.get_docs_by_statuses(list(DocStatus))
        lost = sorted(statuses)[len(statuses) // 2]
        await rag.adelete_by_doc_id(lost)
        diff = await backup.adiff(first.snapshot_id)
        counts = diff.counts
        say(f"deleted document {lost} through LightRAG; diff from snapshot 1 to the live graph: "
            f"{counts['documents']['removed']} document, {counts['entities']['removed']} entities, "
            f"{counts['relations']['removed']} relations removed")
        undone = await backup.arestore_documents(first.snapshot_id, [lost])
        calls = undone["calls"]
        after_nodes = sorted(n.id for n in (await rag.get_knowledge_graph("*", max_depth=2)).nodes)
        undelete_match = after_nodes == original_nodes and (await backup.adiff(first.snapshot_id)).is_empty
        say(f"restored document {lost} alone from snapshot 1 in {undone['duration_ms']:.0f} ms: "
            f"{len(undone['entities']['restored'])} entities and {len(undone['relations']['restored'])} relations "
            f"back, {len(undone['entities']['changed'])} entities given their sources back; {calls['llm']} LLM calls, "
            f"{calls['embedding']} embedding calls; the graph matches snapshot 1 again: {undelete_match}")

        report = await backup.averify_snapshot(second.snapshot_id)
        say(str(report))
        stats = await backup.aget_backup_stats()
        say(f"repository {repo_dir}: {stats['snapshot_count']} snapshots, {stats['logical_bytes']} logical "
            f"bytes stored in {stats['stored_bytes']} bytes ({stats['space_saving']:.0%} saved)")
    finally:
        await rag.finalize_storages()
    ok = files_match and live_match and undelete_match and report.ok
    if as_json:
        print(json.dumps({"ok": ok, "directory": str(base), "steps": steps}, indent=2))
    elif not ok:
        print("demo FAILED: see the lines above")
    return 0 if ok else 1
