"""The records format (``lightrag-records`` v1) against a golden fixture, committed once and
never regenerated: this version must read every v1 snapshot ever written, lay records out
byte for byte as v1 does, and load them into LightRAG's storages."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import forget_shared_data

from lightrag.backup import GraphBackup
from lightrag.backup.errors import InvalidInputError
from lightrag.backup.records import files, layout, load, mapping

FIXTURE = Path(__file__).parent / "fixtures" / "records-v1"


def test_the_v1_fixture_reads_and_is_laid_out_exactly_as_this_version_writes():
    records = load.Records(FIXTURE)
    manifest = records.manifest
    assert manifest["format"] == "lightrag-records" and manifest["version"] == 1 and manifest["complete"]
    assert manifest["embedding"] == {"dim": 8, "model_name": "stub-8"}
    assert records.counts()["graph_nodes"] == 20 and records.counts()["graph_edges"] == 18
    assert records.counts()["entities_vdb"] == 20 and records.vectors["entities_vdb"][1].shape == (20, 8)
    for path in sorted(FIXTURE.glob("records_*.jsonl")):
        rows = list(layout.read_lines(path))
        keyed = {tuple(row[:-1]) if len(row) > 2 else row[0]: row[-1] for row in rows}
        assert list(keyed) == layout.creation_order(keyed), f"{path.name} is not in creation order"
        rewritten = "".join(layout.dumps(row) + "\n" for row in rows)
        assert rewritten == path.read_text(encoding="utf-8"), f"{path.name} would be laid out differently now"


async def test_the_v1_fixture_loads_into_file_storages_and_comes_back_the_same(tmp_path):
    from lightrag.backup.records import capture

    forget_shared_data()
    counts = await files.to_file_storages(load.Records(FIXTURE), tmp_path / "graph")
    assert counts["full_docs"] == 2 and (tmp_path / "graph" / "graph_chunk_entity_relation.graphml").exists()
    from lightrag.backup.offline_graph import new_rag

    rag = await new_rag(tmp_path, workspace="graph", embedding_dim=8)
    try:
        again = tmp_path / "again"
        await capture.capture(rag, again)
    finally:
        await rag.finalize_storages()
        forget_shared_data()
    before, after = load.Records(FIXTURE), load.Records(again)
    for name in before.kv:
        assert {k: mapping.comparable_kv(v) for k, v in before.kv[name].items()} == {
            k: mapping.comparable_kv(v) for k, v in after.kv[name].items()}, name
    assert before.nodes == after.nodes and before.edges == after.edges
    for name, (metas, matrix) in before.vectors.items():
        metas_after, matrix_after = after.vectors[name]
        assert {k: mapping.comparable_vector(v) for k, v in metas.items()} == {
            k: mapping.comparable_vector(v) for k, v in metas_after.items()}, name
        assert list(metas) == list(metas_after)
        assert np.allclose(matrix, matrix_after, atol=5e-4, rtol=0), name  # NanoVectorDB keeps float16


@pytest.mark.parametrize("damage", ["version", "vectors", "line"])
def test_a_damaged_or_newer_records_folder_is_refused_with_a_clear_error(tmp_path, damage):
    folder = tmp_path / "records"
    shutil.copytree(FIXTURE, folder)
    if damage == "version":
        text = (folder / layout.MANIFEST).read_text().replace('"version": 1', '"version": 2')
        (folder / layout.MANIFEST).write_text(text)
        expected = "version 2; this lightrag-backup reads version 1"
    elif damage == "vectors":
        path = folder / layout.vectors_file("entities_vdb", 8)
        path.write_bytes(path.read_bytes()[:-4])
        expected = "records of 8 float32 need"
    else:
        with open(folder / layout.records_file("text_chunks"), "a") as out:
            out.write("{not json\n")
        expected = "is not JSON"
    with pytest.raises(InvalidInputError, match=expected):
        load.Records(folder)


def test_a_records_snapshot_restores_into_a_folder_as_lightrag_files(tmp_path, storage):
    """Records are told by their manifest, however the snapshot was taken: a folder of
    records snapshotted offline restores as LightRAG's own files, which LightRAG opens."""
    import asyncio

    source = tmp_path / "src"
    shutil.copytree(FIXTURE, source)
    backup = GraphBackup("fixture", storage, source)
    snapshot = backup.create_snapshot()
    assert {f.path for f in snapshot.files} == {p.name for p in FIXTURE.iterdir()}
    forget_shared_data()
    backup.restore_snapshot(snapshot.snapshot_id, tmp_path / "out" / "ws")
    restored = {p.name for p in (tmp_path / "out" / "ws").iterdir()}
    assert "kv_store_full_docs.json" in restored and "vdb_entities.json" in restored
    assert not any(name.startswith("records") for name in restored)
    forget_shared_data()
    # Opened by LightRAG (8 dimensions, as the fixture's model): the graph is there.
    from lightrag.backup.offline_graph import new_rag

    async def nodes() -> int:
        rag = await new_rag(tmp_path / "out", workspace="ws", embedding_dim=8)
        try:
            return len(await rag.chunk_entity_relation_graph.get_all_nodes())
        finally:
            await rag.finalize_storages()

    assert asyncio.run(nodes()) == 20
    forget_shared_data()
