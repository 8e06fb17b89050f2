"""Loading a records folder into a LightRAG instance, whatever its storages are.

Everything is read and checked before the target is touched (format version, embedding
dimension, every line, every vector row); only then are the target's storages dropped and the
records written through LightRAG's own upserts, so each backend stores them its own way
(pgvector with its vector index built after the rows, :mod:`.bulk_index`). The
vectors are never recomputed: while the records are written, each vector storage's embedding
function is replaced by one that answers every text with its saved vector, and a text without
one fails the restore instead of being embedded by a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from ..errors import InvalidInputError
from . import bulk_index, layout, mapping

BATCH = 500
STEPS = ("read", "drop", "kv", "graph", "vectors", "flush")


class RestoreInterrupted(Exception):
    """Writing into the target failed after its storages were dropped (``stage`` says where)."""

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(f"{stage}: {type(error).__name__}: {error}")
        self.stage = stage
        self.error = error


class Records:
    """A records folder read into memory and checked."""

    def __init__(self, folder: Path) -> None:
        import numpy as np

        try:
            self.manifest = layout.read_manifest(folder)
        except ValueError as error:
            raise InvalidInputError(str(error)) from None
        self.dim = int(self.manifest["embedding"]["dim"])
        self.kv: dict[str, dict[str, Any]] = {}
        try:
            for name in layout.KV_STORES + (layout.DOC_STATUS,):
                self.kv[name] = {key: record for key, record in self._lines(folder, name)}
            self.nodes = {key: props for key, props in self._lines(folder, layout.NODES)}
            self.edges = [(s, t, props) for s, t, props in self._lines(folder, layout.EDGES)]
            self.vectors: dict[str, tuple[dict[str, Any], Any]] = {}
            for name in layout.VECTOR_STORES:
                records = {key: record for key, record in self._lines(folder, name)}
                raw = (folder / layout.vectors_file(name, self.dim)).read_bytes()
                if len(raw) != len(records) * self.dim * 4:
                    raise ValueError(
                        f"{layout.vectors_file(name, self.dim)} holds {len(raw)} bytes; {len(records)} records of "
                        f"{self.dim} float32 need {len(records) * self.dim * 4}"
                    )
                matrix = np.frombuffer(raw, dtype="<f4").reshape(len(records), self.dim)
                self.vectors[name] = (records, matrix)
        except (OSError, ValueError, TypeError) as error:
            raise InvalidInputError(f"the snapshot's records are not readable: {error}") from None

    @staticmethod
    def _lines(folder: Path, name: str) -> list[Any]:
        path = folder / layout.records_file(name)
        if not path.exists():
            raise ValueError(f"{path.name} is missing")
        return list(layout.read_lines(path))

    def counts(self) -> dict[str, int]:
        counts = {name: len(records) for name, records in self.kv.items()}
        counts.update({name: len(records) for name, (records, _) in self.vectors.items()})
        counts["graph_nodes"] = len(self.nodes)
        counts["graph_edges"] = len(self.edges)
        return counts

    def digest(self) -> str:
        """The content digest of these records (:mod:`.digest`)."""
        from .digest import content_digest

        return content_digest(self.kv, self.nodes, self.edges, self.vectors)

    def replay_table(self, name: str, keys: Optional[Any] = None) -> dict[str, Any]:
        """Each record's content -> its saved vector (of the records ``keys`` names, or all),
        for the replaying embedding function."""
        records, matrix = self.vectors[name]
        wanted = None if keys is None else set(keys)
        return {record.get("content"): matrix[row] for row, (key, record) in enumerate(records.items())
                if wanted is None or key in wanted}


async def load(
    records: Records, rag: Any, *, progress: Optional[Callable[[str, int, int], None]] = None
) -> dict[str, int]:
    """Replace everything ``rag``'s storages hold in its workspace by ``records``.

    Raises :class:`InvalidInputError` (nothing changed) when the records do not fit the
    target, :class:`RestoreInterrupted` when writing failed after the target was dropped."""

    def step(name: str) -> None:
        if progress is not None:
            progress(f"records:{name}", STEPS.index(name), len(STEPS))

    step("read")
    target_dim = getattr(getattr(rag, "embedding_func", None), "embedding_dim", None)
    if target_dim is not None and int(target_dim) != records.dim:
        raise InvalidInputError(
            f"the snapshot's vectors have {records.dim} dimensions; the target instance embeds with "
            f"{target_dim}: open the target with the snapshot's embedding model "
            f"({records.manifest['embedding'].get('model_name')!r}, dim {records.dim})"
        )
    index_memory = bulk_index.memory_cap()
    storages = {name: getattr(rag, name) for name in layout.ROLES}
    stage = "drop"
    try:
        step("drop")
        for name, storage in storages.items():
            result = await storage.drop()
            if isinstance(result, dict) and result.get("status") not in (None, "success"):
                raise RuntimeError(f"{name}: {result.get('message')}")
        stage = "kv"
        step("kv")
        for name in layout.KV_STORES + (layout.DOC_STATUS,):
            items = list(records.kv[name].items())
            for start in range(0, len(items), BATCH):
                await storages[name].upsert(dict(items[start : start + BATCH]))
        stage = "graph"
        step("graph")
        graph = storages[layout.GRAPH]
        nodes = list(records.nodes.items())
        for start in range(0, len(nodes), BATCH):
            await graph.upsert_nodes_batch(nodes[start : start + BATCH])
        for start in range(0, len(records.edges), BATCH):
            await graph.upsert_edges_batch(records.edges[start : start + BATCH])
        stage = "vectors"
        step("vectors")
        text_chunks = records.kv["text_chunks"]
        replaced: list[tuple[Any, Any]] = []
        vector_writes: dict[str, str] = {}
        try:
            for name in layout.VECTOR_STORES:
                storage = storages[name]
                replaced.append((storage, storage.embedding_func))
                storage.embedding_func = _replaying(storage.embedding_func, records.replay_table(name), name)
                vector_records, _ = records.vectors[name]
                items = [
                    (key, mapping.vector_upsert_record(name, record, text_chunks, key))
                    for key, record in vector_records.items()
                ]
                async with bulk_index.deferred_vector_index(storage, len(items), records.dim, index_memory) as how:
                    for start in range(0, len(items), BATCH):
                        await storage.upsert(dict(items[start : start + BATCH]))
                    await storage.index_done_callback()  # a buffering store writes here
                vector_writes[name] = how["path"]
            stage = "flush"
            step("flush")
            # Buffering stores embed when they flush: the replay stays in place until then.
            for storage in storages.values():
                await storage.index_done_callback()
        finally:
            for storage, original in replaced:
                storage.embedding_func = original
    except Exception as error:  # noqa: BLE001 - any failure here leaves the target half-written
        raise RestoreInterrupted(stage, error) from error
    if progress is not None:
        progress("records:done", len(STEPS), len(STEPS))
    return {**records.counts(), "vector_writes": vector_writes}  # type: ignore[dict-item]


def _replaying(original: Any, table: dict[Any, Any], store: str) -> Any:
    """An embedding function that answers each text with its saved vector and never embeds."""
    import numpy as np
    from lightrag.utils import EmbeddingFunc

    async def replay(texts: list[str], **kwargs: Any) -> Any:
        rows = []
        for text in texts:
            vector = table.get(text)
            if vector is None:
                raise InvalidInputError(
                    f"{store}: a text to embed has no saved vector in the snapshot ({text[:80]!r}); "
                    "lightrag-backup never re-embeds"
                )
            rows.append(vector)
        return np.array(rows, dtype=np.float32).reshape(len(rows), -1)

    return EmbeddingFunc(
        embedding_dim=int(getattr(original, "embedding_dim")),
        func=replay,
        model_name=getattr(original, "model_name", None),
    )
