"""Document-level restore (issue 32): a document deleted through LightRAG
(``adelete_by_doc_id``) is put back from a snapshot without rolling back what was inserted
since, and the graph equals a control graph that never lost it. Real LightRAG graphs, built
through LightRAG's own insert pipeline with the deterministic stub models, counted."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from lightrag.backup import GraphBackup
from lightrag.backup import offline_graph
from lightrag.backup._live import flush_storages
from lightrag.backup.errors import (
    DocumentExistsError,
    DocumentNotFoundError,
    EntityNotFoundError,
    InvalidInputError,
    RolledBackError,
)
from lightrag.backup.offline_graph import documents, graph_files

from helpers import forget_shared_data

SEP = "<SEP>"
GRAPHML = "{http://graphml.graphdrawing.org/xmlns}"


class Counted:
    """The stub models, counted: every LLM call and every text embedded."""

    def __init__(self) -> None:
        self.llm = 0
        self.texts = 0


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counted:
    calls = Counted()
    llm, embedding = offline_graph.stub_llm, offline_graph.make_embedding_func

    async def counting_llm(*args: Any, **kwargs: Any) -> str:
        calls.llm += 1
        return await llm(*args, **kwargs)

    def counting_embedding(dim: int = 16) -> Any:
        from lightrag.utils import EmbeddingFunc

        inner = embedding(dim)

        async def embed(texts: Any, **kwargs: Any) -> Any:
            calls.texts += len(texts)
            return await inner.func(texts, **kwargs)

        return EmbeddingFunc(embedding_dim=dim, func=embed, model_name=inner.model_name)

    monkeypatch.setattr(offline_graph, "stub_llm", counting_llm)
    monkeypatch.setattr(offline_graph, "make_embedding_func", counting_embedding)
    return calls


def parts(joined: "str | None", separator: str = SEP) -> frozenset[str]:
    return frozenset(part.strip() for part in (joined or "").split(separator))


def graph_state(folder: Path) -> dict[str, Any]:
    """What LightRAG holds in a graph folder, comparable with ==: documents, statuses, chunks,
    entities and relations (type, description, sources), chunk tracking and vector ids. Write
    times are left out. Descriptions, keywords and sources are compared as sets of their parts:
    LightRAG extracts the documents of one insert concurrently and joins their parts in the
    order the extractions finish, so two builds of the same documents order them differently."""

    def kv(name: str) -> dict[str, Any]:
        path = folder / f"kv_store_{name}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def vector_ids(name: str) -> list[str]:
        return sorted(row["__id__"] for row in json.loads((folder / f"vdb_{name}.json").read_text())["data"])

    root = ET.parse(folder / "graph_chunk_entity_relation.graphml").getroot()
    keys = {k.get("id"): k.get("attr.name") for k in root.iter(f"{GRAPHML}key")}

    def props(element: ET.Element) -> dict[str, str]:
        return {keys[d.get("key")]: d.text or "" for d in element.iter(f"{GRAPHML}data")}

    entities = {}
    for node in root.iter(f"{GRAPHML}node"):
        p = props(node)
        entities[node.get("id")] = (p.get("entity_type"), parts(p.get("description")), parts(p.get("source_id")))
    relations = {}
    for edge in root.iter(f"{GRAPHML}edge"):
        p = props(edge)
        pair = tuple(sorted((edge.get("source"), edge.get("target"))))
        relations[pair] = (parts(p.get("description")), parts(p.get("keywords"), ","), p.get("weight"),
                           parts(p.get("source_id")))
    statuses = {doc_id: {k: v for k, v in status.items() if k not in ("created_at", "updated_at", "metadata", "track_id")}
                for doc_id, status in kv("doc_status").items()}
    return {
        "documents": sorted(kv("full_docs")),
        "statuses": statuses,
        "chunks": {key: chunk["content"] for key, chunk in kv("text_chunks").items()},
        "entities": entities,
        "relations": relations,
        "entity_chunks": {k: frozenset(v["chunk_ids"]) for k, v in kv("entity_chunks").items()},
        "relation_chunks": {k: frozenset(v["chunk_ids"]) for k, v in kv("relation_chunks").items()},
        "full_entities": {k: sorted(v["entity_names"]) for k, v in kv("full_entities").items()},
        "llm_cache": sorted(kv("llm_response_cache")),
        "vectors": {name: vector_ids(name) for name in ("chunks", "entities", "relationships")},
    }


def entities_of(text: str) -> set[str]:
    return set(re.findall(r"\[\[([^\[\]]+)\]\]", text))


def unrelated_document(texts: list[str], deleted: str) -> str:
    """A fifth document sharing entities with the others but none with the deleted one: its
    restore then needs no text the snapshot never embedded."""
    theirs = set().union(*(entities_of(t) for t in texts if t != deleted)) - entities_of(deleted)
    shared = sorted(theirs)[:2]
    names = shared + ["Zora Q9"]
    return f"Document 9. [[{names[0]}]] worked with [[{names[-1]}]] in [[{names[1] if len(names) > 2 else 'Oslo'}]] on record 7."


async def control_state(folder: Path, texts: list[str]) -> dict[str, Any]:
    """The graph of the same documents, inserted as the tested graph got them (four, then a
    fifth), never deleted."""
    return await control_state_of(folder, [(texts[:4], None), (texts[4], None)])


def doc_id_of(folder: Path, text: str) -> str:
    docs = json.loads((folder / "kv_store_full_docs.json").read_text())
    return next(key for key, doc in docs.items() if doc["content"] == text)


async def test_a_deleted_document_comes_back_as_if_it_had_never_been_deleted(tmp_path, counted):
    texts = documents(4)
    deleted_text = texts[1]
    fifth = unrelated_document(texts, deleted_text)
    control = await control_state(tmp_path / "control", texts + [fifth])

    rag = await offline_graph.new_rag(tmp_path / "graph")
    try:
        folder = Path(rag.working_dir)
        await rag.ainsert(texts)
        backup = GraphBackup.from_rag("undelete", rag, str(tmp_path / "repo"), password="pw")
        snapshot = await backup.acreate_snapshot("four documents")
        deleted = doc_id_of(folder, deleted_text)
        assert (await rag.adelete_by_doc_id(deleted)).status == "success"
        await rag.ainsert(fifth)
        inserted = doc_id_of(folder, fifth)
        assert graph_state(folder) != control

        # The diff names the deleted document; `deleted` lists it with the snapshot holding it.
        diff = await backup.adiff(snapshot.snapshot_id)
        assert [d["id"] for d in diff["documents"]["removed"]] == [deleted]
        listed = await backup.adeleted_documents()
        assert [(d["id"], d["snapshot_id"]) for d in listed] == [(deleted, snapshot.snapshot_id)]

        # A dry run plans and writes nothing.
        before = graph_files(folder)
        plan = await backup.arestore_documents(snapshot.snapshot_id, deleted, dry_run=True)
        assert plan["dry_run"] and [d["id"] for d in plan["documents"]] == [deleted]
        gone = sorted(set(control["entities"]) - set(graph_state(folder)["entities"]))
        assert gone and plan["entities"]["restored"] == gone
        # Entities other documents also cite get the document's chunks back; their sources
        # are then the snapshot's exactly, so they come back as the snapshot held them.
        assert plan["entities"]["changed"] and plan["entities"]["rebuilt"] == []
        assert graph_files(folder) == before

        llm, texts_embedded = counted.llm, counted.texts
        report = await backup.arestore_documents(snapshot.snapshot_id, [deleted])
        # No model call: extraction results and vectors all came from the snapshot.
        assert (counted.llm, counted.texts) == (llm, texts_embedded)
        assert report["calls"]["llm"] == 0 and report["calls"]["embedding"] == 0
        assert report["calls"]["vectors_from_snapshot"] > 0
        assert report["entities"] == plan["entities"] and report["relations"] == plan["relations"]
        assert "pre-restore" in report["safety_snapshot"]["tags"]
        assert backup.last_restore == report
        # LightRAG's pipeline status (its WebUI) says what happened.
        from lightrag.kg.shared_storage import get_namespace_data

        status = await get_namespace_data("pipeline_status", workspace=rag.workspace)
        assert "restored 1 document(s) from snapshot" in status["latest_message"]
        assert any("restored 1 document(s)" in line for line in status["history_messages"])

        # What LightRAG holds equals the graph that never lost the document, the document
        # inserted since included.
        await flush_storages(rag)
        restored = graph_state(folder)
        for part in control:
            assert restored[part] == control[part], part
        assert inserted in restored["documents"] and deleted in restored["documents"]
    finally:
        await rag.finalize_storages()
        forget_shared_data()

    # Queries find the restored entities; the diff against the snapshot names only the
    # document inserted since.
    rag = await offline_graph.new_rag(folder)
    try:
        backup = GraphBackup.from_rag("undelete", rag, str(tmp_path / "repo"), password="pw")
        from lightrag import QueryParam

        name = sorted(entities_of(deleted_text) - entities_of(" ".join(texts[:1] + texts[2:] + [fifth])))[0]
        context = await rag.aquery(f"What did {name} do?", param=QueryParam(mode="local", only_need_context=True,
                                                                               enable_rerank=False))
        assert name in str(context)
        diff = await backup.adiff(snapshot.snapshot_id)
        assert diff["documents"]["removed"] == [] and [d["id"] for d in diff["documents"]["added"]] == [inserted]
        assert await backup.adeleted_documents() == []
    finally:
        await rag.finalize_storages()
        forget_shared_data()


async def test_refusals_replace_counted_embeddings_and_a_failure_rolled_back(tmp_path, counted, monkeypatch):
    texts = documents(4)
    control = await control_state(tmp_path / "control", texts + documents(1, start=4))
    rag = await offline_graph.new_rag(tmp_path / "graph")
    try:
        folder = Path(rag.working_dir)
        await rag.ainsert(texts)
        backup = GraphBackup.from_rag("refusals", rag, str(tmp_path / "repo"), password="pw")
        snapshot = await backup.acreate_snapshot("four documents")
        kept = doc_id_of(folder, texts[0])

        # A document the graph holds is refused; one the snapshot lacks is not found; nothing
        # is written either way.
        before = graph_files(folder)
        with pytest.raises(DocumentExistsError, match="replace"):
            await backup.arestore_documents(snapshot.snapshot_id, [kept])
        with pytest.raises(DocumentNotFoundError):
            await backup.arestore_documents(snapshot.snapshot_id, ["doc-0000"])
        assert graph_files(folder) == before
        assert len(await backup.alist_snapshots()) == 1  # no safety snapshot for a refusal

        # --replace: the current version is deleted through LightRAG, the snapshot's put back.
        report = await backup.arestore_documents(snapshot.snapshot_id, [kept], replace=True)
        assert report["replaced"] == [kept] and report["calls"]["llm"] == 0
        await flush_storages(rag)
        assert graph_state(folder) == graph_state_of_files(before, tmp_path / "before")

        # A fifth document sharing entities with the deleted one: their descriptions are new
        # text, embedded by the instance's own model, and the report counts exactly that.
        deleted = doc_id_of(folder, texts[2])
        assert (await rag.adelete_by_doc_id(deleted)).status == "success"
        await rag.ainsert(documents(1, start=4))
        texts_embedded = counted.texts
        report = await backup.arestore_documents(snapshot.snapshot_id, [deleted])
        assert report["calls"]["embedded_texts"] == counted.texts - texts_embedded > 0
        assert report["calls"]["llm"] == 0
        assert report["entities"]["rebuilt"] and report["rebuild"]["chunks_without_cached_extraction"] == []
        await flush_storages(rag)
        restored = graph_state(folder)
        # Rebuilt by LightRAG from the cached extractions of all their chunks: equal to the
        # graph that never lost the document, descriptions included.
        for part in control:
            assert restored[part] == control[part], part

        # A failure part-way: the graph is rolled back to the safety snapshot, as it was.
        assert (await rag.adelete_by_doc_id(deleted)).status == "success"
        await flush_storages(rag)
        before = graph_files(folder)
        graph = rag.chunk_entity_relation_graph
        original = graph.upsert_edge
        writes = 0

        async def failing(*args: Any, **kwargs: Any) -> None:
            nonlocal writes
            writes += 1
            if writes == 2:
                raise OSError("disk full")
            await original(*args, **kwargs)

        monkeypatch.setattr(graph, "upsert_edge", failing)
        with pytest.raises(RolledBackError, match="disk full"):
            await backup.arestore_documents(snapshot.snapshot_id, [deleted])
        monkeypatch.setattr(graph, "upsert_edge", original)
        assert writes >= 2
        await flush_storages(rag)
        assert graph_files(folder) == before
        assert await rag.doc_status.get_by_id(deleted) is None
        assert deleted not in json.loads((folder / "kv_store_full_docs.json").read_text())
    finally:
        await rag.finalize_storages()
        forget_shared_data()


def graph_state_of_files(files: dict[str, bytes], folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return graph_state(folder)


async def test_an_older_version_of_a_file_replaces_the_newer_one(tmp_path, counted):
    """The "version-aware update" in reverse: version 2 of report.txt replaced version 1
    (LightRAG names documents by content, so the versions have different ids); restoring
    report.txt from the snapshot is refused while version 2 is in, and with replace puts
    version 1 back in its place."""
    forget_shared_data()
    texts = documents(3)
    version_1 = "Quarterly report. [[Mira K7]] led [[Orion Lab]] in [[Riga]] on record 1."
    version_2 = "Quarterly report, revised. [[Mira K7]] left [[Orion Lab]] for [[Tomas V7]] in [[Quito]] on record 2."
    control = await control_state_of(tmp_path / "control", [(texts, None), (version_1, "report.txt")])
    rag = await offline_graph.new_rag(tmp_path / "graph")
    try:
        folder = Path(rag.working_dir)
        await rag.ainsert(texts)
        await rag.ainsert(version_1, file_paths="report.txt")
        backup = GraphBackup.from_rag("versions", rag, str(tmp_path / "repo"), password="pw")
        snapshot = await backup.acreate_snapshot("version 1")
        first = doc_id_of(folder, version_1)
        assert (await rag.adelete_by_doc_id(first)).status == "success"
        await rag.ainsert(version_2, file_paths="report.txt")
        second = doc_id_of(folder, version_2)

        before = graph_files(folder)
        with pytest.raises(DocumentExistsError, match=second):
            await backup.arestore_documents(snapshot.snapshot_id, ["report.txt"])
        assert graph_files(folder) == before
        plan = await backup.arestore_documents(snapshot.snapshot_id, ["report.txt"], replace=True, dry_run=True)
        assert plan["replaced"] == [second] and [d["id"] for d in plan["documents"]] == [first]
        assert graph_files(folder) == before

        report = await backup.arestore_documents(snapshot.snapshot_id, ["report.txt"], replace=True)
        assert report["replaced"] == [second] and report["calls"]["llm"] == 0
        await flush_storages(rag)
        restored = graph_state(folder)
        assert "Tomas V7" not in restored["entities"] and "Mira K7" in restored["entities"]
        # LightRAG deletes a document keeping its LLM cache entries (delete_llm_cache=False):
        # version 2's extraction stays cached, the rest is the graph that only had version 1.
        assert set(restored.pop("llm_cache")) > set(control.pop("llm_cache"))
        for part in control:
            assert restored[part] == control[part], part
    finally:
        await rag.finalize_storages()
        forget_shared_data()


async def control_state_of(folder: Path, inserts: "list[tuple[Any, Any]]") -> dict[str, Any]:
    """The graph of ``inserts`` (texts, file paths), inserted in that order, never deleted."""
    forget_shared_data()
    rag = await offline_graph.new_rag(folder)
    for texts, paths in inserts:
        await rag.ainsert(texts, file_paths=paths)
    await rag.finalize_storages()
    forget_shared_data()
    return graph_state(folder)


async def test_into_a_graph_folder_no_process_serves(tmp_path, counted):
    """A folder graph (no live instance): the document comes back the same way, written by
    LightRAG's file storages into a private copy moved into place. A restore that would need
    a model (a new description to embed) is refused and leaves the folder as it was."""
    texts = documents(4)
    fifth = unrelated_document(texts, texts[1])
    control = await control_state(tmp_path / "control", texts + [fifth])
    folder = tmp_path / "graph"
    forget_shared_data()
    rag = await offline_graph.new_rag(folder)
    await rag.ainsert(texts)
    await rag.finalize_storages()
    forget_shared_data()
    backup = GraphBackup("folder", str(tmp_path / "repo"), folder, password="pw")
    snapshot = await backup.acreate_snapshot("four documents")

    async def change(*steps: Any) -> None:
        forget_shared_data()
        instance = await offline_graph.new_rag(folder)
        for step in steps:
            await step(instance)
        await instance.finalize_storages()
        forget_shared_data()

    deleted = doc_id_of(folder, texts[1])
    await change(lambda r: r.adelete_by_doc_id(deleted), lambda r: r.ainsert(fifth))
    calls = (counted.llm, counted.texts)
    report = await backup.arestore_documents(snapshot.snapshot_id, [deleted])
    assert (counted.llm, counted.texts) == calls and report["calls"]["embedding"] == 0
    assert report["target"] == str(folder) and "pre-restore" in report["safety_snapshot"]["tags"]
    assert not [p for p in folder.iterdir() if p.name.startswith("lrb-private-")]
    restored = graph_state(folder)
    for part in control:
        assert restored[part] == control[part], part

    # Now one sharing entities with the deleted document: their descriptions change, and
    # nothing here can embed them.
    other = doc_id_of(folder, texts[2])
    await change(lambda r: r.adelete_by_doc_id(other), lambda r: r.ainsert(documents(1, start=4)))
    before = graph_files(folder)
    with pytest.raises(InvalidInputError, match="live instance"):
        await backup.arestore_documents(snapshot.snapshot_id, [other])
    assert graph_files(folder) == before
    with pytest.raises(DocumentExistsError):
        await backup.arestore_documents(snapshot.snapshot_id, [deleted])


def test_the_command_line_restores_a_document_by_its_file_path(tmp_path):
    """`restore --document` on a folder graph: plan, restore, refusals, each one line and a
    non-zero exit when refused."""
    import asyncio

    from helpers import cli, delete_document

    folder = tmp_path / "graph"

    async def build() -> None:
        forget_shared_data()
        rag = await offline_graph.new_rag(folder)
        await rag.ainsert(documents(3), file_paths=["a.txt", "b.txt", "c.txt"])
        await rag.finalize_storages()
        forget_shared_data()

    asyncio.run(build())
    base = ["--repo", str(tmp_path / "repo")]
    first = cli(*base, "--json", "snapshot", "--init", "-w", str(folder), "-g", "g")
    assert first.returncode == 0, first.stderr
    snapshot = json.loads(first.stdout)["snapshot_id"]
    statuses = json.loads((folder / "kv_store_doc_status.json").read_text())
    deleted = delete_document(folder, 0)
    path = statuses[deleted]["file_path"]

    plan = cli(*base, "restore", "-g", "g", "latest", "-w", str(folder), "--document", path, "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert f"would restore 1 document(s) of snapshot {snapshot}" in plan.stdout and deleted in plan.stdout
    assert deleted not in json.loads((folder / "kv_store_doc_status.json").read_text())

    done = cli(*base, "--json", "restore", "-g", "g", snapshot[:8], "-w", str(folder), "-d", path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [d["id"] for d in report["documents"]] == [deleted] and report["calls"]["llm"] == 0
    assert json.loads((folder / "kv_store_doc_status.json").read_text()).keys() == statuses.keys()

    # (`latest` is now the safety snapshot the restore took: the snapshot is named by id.)
    again = cli(*base, "restore", "-g", "g", snapshot, "-w", str(folder), "-d", deleted)
    assert again.returncode != 0 and "--replace" in again.stderr and "Traceback" not in again.stderr
    unknown = cli(*base, "restore", "-g", "g", snapshot, "-w", str(folder), "-d", "nothing.txt")
    assert unknown.returncode != 0 and "nothing.txt" in unknown.stderr and "Traceback" not in unknown.stderr
    assert "INFO" not in unknown.stderr + again.stderr + done.stderr  # LightRAG's log lines only with -v
    elsewhere = cli(*base, "restore", "-g", "g", "latest", "-t", str(tmp_path / "x"), "-d", path)
    assert elsewhere.returncode != 0 and "--target" in elsewhere.stderr
    # An entity deleted by hand comes back by name; documents and entities go one at a time.
    name = sorted(graph_state(folder)["entities"])[0]

    async def delete_entity() -> None:
        forget_shared_data()
        rag = await offline_graph.new_rag(folder)
        assert (await rag.adelete_by_entity(name)).status == "success"
        await rag.finalize_storages()
        forget_shared_data()

    asyncio.run(delete_entity())
    entity = cli(*base, "restore", "-g", "g", snapshot, "-w", str(folder), "--entity", name)
    assert entity.returncode == 0, entity.stderr
    assert "restored entities" in entity.stdout and name in entity.stdout
    assert name in graph_state(folder)["entities"]
    both = cli(*base, "restore", "-g", "g", snapshot, "-w", str(folder), "-e", name, "-d", path)
    assert both.returncode != 0 and "one at a time" in both.stderr


async def test_an_entity_deleted_or_edited_by_hand_comes_back_as_it_was(tmp_path, counted):
    """`adelete_by_entity` and `aedit_entity` undone from a snapshot: the entity with its
    relations, vector rows and chunk tracking, as the snapshot held them."""
    forget_shared_data()
    rag = await offline_graph.new_rag(tmp_path / "graph")
    try:
        folder = Path(rag.working_dir)
        await rag.ainsert(documents(4))
        await flush_storages(rag)
        backup = GraphBackup.from_rag("entities", rag, str(tmp_path / "repo"), password="pw")
        snapshot = await backup.acreate_snapshot("four documents")
        original = graph_state(folder)
        # The entity with the most relations.
        degree: dict[str, int] = {}
        for pair in original["relations"]:
            for name in pair:
                degree[name] = degree.get(name, 0) + 1
        name = max(sorted(degree), key=lambda n: degree[n])
        assert degree[name] >= 2

        assert (await rag.adelete_by_entity(name)).status == "success"
        await flush_storages(rag)
        assert name not in graph_state(folder)["entities"]
        with pytest.raises(EntityNotFoundError):
            await backup.arestore_entities(snapshot.snapshot_id, ["Nobody At All"])
        plan = await backup.arestore_entities(snapshot.snapshot_id, name, dry_run=True)
        assert plan["entities"]["restored"] == [name] and len(plan["relations"]["restored"]) == degree[name]
        calls = (counted.llm, counted.texts)
        report = await backup.arestore_entities(snapshot.snapshot_id, name)
        assert (counted.llm, counted.texts) == calls and report["calls"]["embedding"] == 0
        await flush_storages(rag)
        for part, value in graph_state(folder).items():
            if part != "llm_cache":  # LightRAG's deletion of an entity keeps the cache, as expected
                assert value == original[part], part

        # Edited by hand: refused while it is in the graph, put back with replace.
        await rag.aedit_entity(name, {"description": "edited by hand"})
        await flush_storages(rag)
        assert graph_state(folder)["entities"][name][1] == frozenset({"edited by hand"})
        with pytest.raises(DocumentExistsError, match="replace"):
            await backup.arestore_entities(snapshot.snapshot_id, [name])
        await backup.arestore_entities(snapshot.snapshot_id, [name], replace=True)
        await flush_storages(rag)
        assert graph_state(folder)["entities"][name] == original["entities"][name]
    finally:
        await rag.finalize_storages()
        forget_shared_data()


async def test_a_file_graph_read_directly_equals_it_read_by_lightrags_storages(rag, tmp_path):
    """The document restore reads a file snapshot's files directly (records.file_graph); the
    records are those LightRAG's own file storages give (records.files), vectors included."""
    import numpy as np

    from lightrag.backup.records import files, load
    from lightrag.backup.records.file_graph import FileGraphRecords

    await flush_storages(rag)
    folder = Path(rag.working_dir)
    direct = FileGraphRecords(folder)
    await files.from_file_storages(folder, tmp_path / "records", embedding_dim=direct.dim, model_name=None)
    through = load.Records(tmp_path / "records")
    assert direct.dim == through.dim == 16
    for name, records in through.kv.items():
        # LightRAG's storages add what its loader fills in (write times, chunking options):
        # every field the files hold is there, alike.
        assert direct.kv[name].keys() == records.keys(), name
        for key, record in direct.kv[name].items():
            assert {f: records[key].get(f) for f in record} == record, (name, key, record, records[key])
    assert direct.nodes == through.nodes
    assert {frozenset((s, t)): p for s, t, p in direct.edges} == {frozenset((s, t)): p for s, t, p in through.edges}
    assert len(direct.edges) == len(through.edges)
    for name, (records, matrix) in through.vectors.items():
        rows, vectors = direct.vectors[name]
        assert rows == records, name
        order = {key: i for i, key in enumerate(rows)}
        for i, key in enumerate(records):
            assert np.allclose(vectors[order[key]], matrix[i], atol=1e-6), (name, key)


async def test_two_documents_sharing_entities_come_back_in_one_restore(tmp_path, counted):
    forget_shared_data()
    texts = documents(5)
    rag = await offline_graph.new_rag(tmp_path / "graph")
    try:
        folder = Path(rag.working_dir)
        await rag.ainsert(texts)
        await flush_storages(rag)
        original = graph_state(folder)
        backup = GraphBackup.from_rag("two", rag, str(tmp_path / "repo"), password="pw")
        snapshot = await backup.acreate_snapshot("five documents")
        gone = [doc_id_of(folder, texts[1]), doc_id_of(folder, texts[3])]
        shared = entities_of(texts[1]) & entities_of(texts[3])
        assert shared, "the two documents share entities"
        for doc_id in gone:
            assert (await rag.adelete_by_doc_id(doc_id)).status == "success"
        calls = (counted.llm, counted.texts)
        report = await backup.arestore_documents(snapshot.snapshot_id, gone)
        assert sorted(d["id"] for d in report["documents"]) == sorted(gone)
        assert (counted.llm, counted.texts) == calls
        await flush_storages(rag)
        assert graph_state(folder) == original
    finally:
        await rag.finalize_storages()
        forget_shared_data()


def test_a_snapshot_file_that_is_not_what_lightrag_writes_is_bad_input(tmp_path):
    """What the direct reader refuses is named, and typed: a GraphML cut short, a matrix of the
    wrong length, a KV store that is not records."""
    from lightrag.backup.records.file_graph import FileGraphRecords

    def folder(**files: str) -> Path:
        place = tmp_path / str(len(list(tmp_path.iterdir())))
        place.mkdir()
        base = {"vdb_chunks.json": json.dumps({"embedding_dim": 2, "data": [{"__id__": "c1", "content": "x"}],
                                               "matrix": "AAAAAAAAAAA="})}
        for name, text in {**base, **files}.items():
            (place / name).write_text(text)
        return place

    FileGraphRecords(folder())  # the smallest readable graph
    for files, named in (({"graph_chunk_entity_relation.graphml": "<graphml><graph><node id='a'>"}, "ExpatError"),
                         ({"vdb_chunks.json": json.dumps({"embedding_dim": 2, "data": [{"__id__": "c1"}],
                                                          "matrix": "AAAA"})}, "matrix"),
                         ({"kv_store_text_chunks.json": "[1, 2]"}, "kv_store_text_chunks.json")):
        with pytest.raises(InvalidInputError, match=named):
            FileGraphRecords(folder(**files))
