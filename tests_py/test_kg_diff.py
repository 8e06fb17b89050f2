"""Knowledge-graph diff (issue 32): a real LightRAG graph changed through LightRAG's own
pipeline (a document deleted with ``adelete_by_doc_id``, another inserted), diffed between
snapshots and against the live graph, through the API, the CLI and a notebook's HTML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lightrag.backup import GraphBackup, GraphDiff
from lightrag.backup.errors import InvalidInputError, SnapshotNotFoundError
from lightrag.backup.offline_graph import documents, entity_names

from helpers import cli


def doc_statuses(folder: Path) -> dict[str, dict]:
    return json.loads((folder / "kv_store_doc_status.json").read_text())


async def test_a_deleted_and_an_inserted_document_are_named_with_their_entities(rag, storage, tmp_path):
    folder = Path(rag.working_dir)
    backup = GraphBackup.from_rag("diffed", rag, storage)
    before = await backup.acreate_snapshot("four documents")
    names_before = set(entity_names(folder))
    statuses = doc_statuses(folder)
    assert len(statuses) == 4
    deleted = sorted(statuses)[1]
    await rag.adelete_by_doc_id(deleted)
    await rag.ainsert(documents(1, start=4))
    after = await backup.acreate_snapshot("one deleted, one inserted")
    names_after = set(entity_names(folder))
    inserted = sorted(set(doc_statuses(folder)) - set(statuses))
    assert len(inserted) == 1

    diff = await backup.adiff(before.snapshot_id, after.snapshot_id)
    assert isinstance(diff, GraphDiff)
    assert [d["id"] for d in diff["documents"]["removed"]] == [deleted]
    assert [d["id"] for d in diff["documents"]["added"]] == inserted
    removed = diff["documents"]["removed"][0]
    assert removed["file_path"] == statuses[deleted]["file_path"]
    assert removed["status"] == "processed" and removed["chunks"] == statuses[deleted]["chunks_count"]
    # Entities: exactly the names that left and came (the GraphML read by another parser).
    assert sorted(diff["entities"]["removed"]) == sorted(names_before - names_after)
    assert sorted(diff["entities"]["added"]) == sorted(names_after - names_before)
    assert diff["entities"]["removed"] and diff["entities"]["added"]
    # An entity other documents also mention stays, its sources rebuilt without the deleted
    # document's chunk: changed, and the diff says which field.
    changed = {c["name"][0]: c["fields"] for c in diff["entities"]["changed"]}
    assert any("source_id" in fields for fields in changed.values()), changed
    assert set(changed) <= names_before & names_after
    counts = diff.counts
    assert counts["documents"] == {"added": 1, "removed": 1, "changed": 0}
    assert counts["chunks"]["removed"] >= 1 and counts["chunks"]["added"] >= 1
    assert counts["vectors:entities"]["removed"] == len(names_before - names_after)
    assert counts["vectors:entities"]["added"] == len(names_after - names_before)
    assert counts["vectors:chunks"]["removed"] == counts["chunks"]["removed"]
    assert not diff.is_empty
    assert diff["totals"]["documents"] == [4, 4]

    # The reverse diff mirrors it; a snapshot against itself, and the live graph against
    # the snapshot just taken of it, differ in nothing.
    back = await backup.adiff(after.snapshot_id, before.snapshot_id)
    assert [d["id"] for d in back["documents"]["added"]] == [deleted]
    assert sorted(back["entities"]["added"]) == sorted(diff["entities"]["removed"])
    assert (await backup.adiff(before.snapshot_id, before.snapshot_id)).is_empty
    live = await backup.adiff("latest")
    assert live.is_empty, live.counts
    since = await backup.adiff(before.snapshot_id)
    assert since.counts == diff.counts and since["to"] == "live"

    # Paged lists, counts whole; text and notebook renderings name the documents.
    paged = diff.paged(0, 1)
    assert len(paged["entities"]["removed"]) == 1 and paged["counts"] == diff.counts
    assert diff.page("entities", "removed", 1, 100) == diff["entities"]["removed"][1:]
    with pytest.raises(InvalidInputError):
        diff.page("files", "added")
    assert deleted in str(diff) and deleted in diff._repr_html_()
    with pytest.raises(SnapshotNotFoundError):
        await backup.adiff("ffffffffffff", before.snapshot_id)

    # The list an operator reads before an undelete: the deleted document, with the newest
    # snapshot that holds it, against the live graph and against the newest snapshot.
    gone = await backup.adeleted_documents()
    assert [(d["id"], d["snapshot_id"]) for d in gone] == [(deleted, before.snapshot_id)]
    assert gone[0]["file_path"] == statuses[deleted]["file_path"] and gone[0]["chunks"] == removed["chunks"]
    snapshots_only = GraphBackup.of(backup.snapshots)
    assert [d["id"] for d in await snapshots_only.adeleted_documents()] == [deleted]
    # A third snapshot still without it: the newest holder stays the first snapshot.
    await backup.acreate_snapshot("again")
    assert [d["snapshot_id"] for d in await backup.adeleted_documents()] == [before.snapshot_id]


def test_the_cli_diffs_snapshots_and_the_folder_and_refuses_without_one(tmp_path):
    from lightrag.backup.offline_graph import build_graph

    import asyncio

    from helpers import add_document, forget_shared_data

    folder = tmp_path / "graph"

    async def build() -> None:
        forget_shared_data()
        rag = await build_graph(folder, 2, seed=3)
        await rag.finalize_storages()
        forget_shared_data()

    asyncio.run(build())
    repo = str(tmp_path / "repo")
    base = ["--repo", repo]
    first = cli(*base, "--json", "snapshot", "--init", "-w", str(folder), "-g", "g")
    assert first.returncode == 0, first.stderr
    first_id = json.loads(first.stdout)["snapshot_id"]
    add_document(folder, seed=3, start=2)
    second = cli(*base, "--json", "snapshot", "-w", str(folder), "-g", "g")
    assert second.returncode == 0, second.stderr

    shown = cli(*base, "--json", "diff", "-g", "g", first_id[:8], "latest")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["counts"]["documents"] == {"added": 1, "removed": 0, "changed": 0}
    assert data["entities"]["added"] and not data["entities"]["removed"]
    text = cli(*base, "diff", "-g", "g", first_id, "-w", str(folder), "--limit", "1")
    assert text.returncode == 0, text.stderr
    assert "documents" in text.stdout and "1 added" in text.stdout and "more" in text.stdout
    same = cli(*base, "diff", "-g", "g", "latest", "-w", str(folder))
    assert same.returncode == 0 and "no change" in same.stdout, same.stdout + same.stderr
    # Live needs the folder; an unknown snapshot is one line and a non-zero exit.
    no_folder = cli(*base, "diff", "-g", "g", "latest", unset=["WORKING_DIR"])
    assert no_folder.returncode != 0 and "working-dir" in no_folder.stderr and "Traceback" not in no_folder.stderr
    unknown = cli(*base, "diff", "-g", "g", "0123456789ab", "latest")
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr
    listed = cli(*base, "--json", "deleted", "-g", "g", "-w", str(folder))
    assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed.stderr
    none = cli(*base, "deleted", "-g", "g")
    assert none.returncode == 0 and "no document" in none.stdout, none.stdout + none.stderr
    # A live store that is not what LightRAG writes is bad input, named, and nothing changes.
    (folder / "kv_store_text_chunks.json").write_text("[1, 2]")
    broken = cli(*base, "diff", "-g", "g", "latest", "-w", str(folder))
    assert broken.returncode != 0 and "kv_store_text_chunks.json" in broken.stderr, broken.stderr
