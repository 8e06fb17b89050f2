"""One digest of a graph's content, whatever it is stored in, and a comparison of its vectors.

A snapshot's ``data_hash`` covers its files' bytes, so the same graph in PostgreSQL and in
files, or restored and stamped with new write times, hashes differently. The content digest is
a SHA-256 over every record in the comparable form of ``mapping`` (write times left out), in
a fixed order, with the ids and dimension of every vector store: everything that is stored
exactly.

The vector values are not in it. Stores keep them at different precisions and some reshape
them on every load: NanoVectorDB writes float16 and renormalises what it reads back, so the
same graph read by a fresh process differs in the last float16 bit of some entries (seen:
a PostgreSQL + NanoVectorDB graph reopened after its snapshot), and no rounding of a float
is stable across such a change. Vectors are compared within :data:`VECTOR_TOLERANCE`
instead (:func:`vectors_differ`). Equal digests and no differing vector: the same graph.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable

from . import layout, mapping


#: How far a restored vector's entries may be from the snapshot's: NanoVectorDB's float16
#: keeps 11 significant bits (2^-11 = 4.9e-4 of a unit vector's largest entry), and its
#: renormalisation on load moves them by less than that again. pgvector, Milvus and Faiss keep
#: float32 (differences of 1e-7 and below: Faiss and Milvus renormalise too).
VECTOR_TOLERANCE = 1e-3


def content_digest(
    kv: dict[str, dict[str, Any]],
    nodes: dict[str, Any],
    edges: Iterable[tuple[str, str, Any]],
    vectors: dict[str, tuple[dict[str, Any], Any]],
) -> str:
    import numpy as np

    sha = hashlib.sha256()

    def add(label: str, rows: Iterable[Any]) -> None:
        sha.update(f"\0{label}\0".encode())
        for row in rows:
            sha.update(layout.dumps(row).encode("utf-8"))
            sha.update(b"\n")

    for name in layout.KV_STORES + (layout.DOC_STATUS,):
        records = kv.get(name, {})
        add(name, ([key, mapping.comparable_kv(records[key])] for key in sorted(records)))
    add(layout.NODES, ([key, mapping.comparable_vector(nodes[key])] for key in sorted(nodes)))
    add(layout.EDGES, ([s, t, mapping.comparable_vector(p)] for s, t, p in sorted(edges, key=lambda e: (e[0], e[1]))))
    for name in layout.VECTOR_STORES:
        metas, matrix = vectors.get(name, ({}, np.zeros((0, 0), dtype="<f4")))
        keys = list(metas)
        order = sorted(range(len(keys)), key=keys.__getitem__)
        add(name, ([keys[row], mapping.comparable_vector(metas[keys[row]])] for row in order))
        sha.update(f"dim {np.asarray(matrix).shape[1] if len(keys) else 0}".encode())
    return "sha256:" + sha.hexdigest()


def vectors_differ(
    a: dict[str, tuple[dict[str, Any], Any]], b: dict[str, tuple[dict[str, Any], Any]],
    tolerance: float = VECTOR_TOLERANCE,
) -> list[str]:
    """``store/id`` of every vector that is in one set and not the other, or whose entries are
    further apart than ``tolerance``; empty when the vectors match."""
    import numpy as np

    differ: list[str] = []
    for name in layout.VECTOR_STORES:
        (metas_a, matrix_a), (metas_b, matrix_b) = (v.get(name, ({}, np.zeros((0, 0)))) for v in (a, b))
        rows_b = {key: row for row, key in enumerate(metas_b)}
        differ.extend(f"{name}/{key}" for key in set(metas_a).symmetric_difference(rows_b))
        both = [(row, rows_b[key], key) for row, key in enumerate(metas_a) if key in rows_b]
        if not both:
            continue
        left = np.asarray(matrix_a, dtype=np.float32)[[r for r, _, _ in both]]
        right = np.asarray(matrix_b, dtype=np.float32)[[r for _, r, _ in both]]
        if left.shape != right.shape:
            differ.extend(f"{name}/{key}" for _, _, key in both)
            continue
        far = np.abs(left - right).max(axis=1) > tolerance
        differ.extend(f"{name}/{both[i][2]}" for i in np.flatnonzero(far))
    return sorted(differ)
