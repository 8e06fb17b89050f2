"""One digest of a graph's content, whatever it is stored in.

A snapshot's ``data_hash`` covers its files' bytes, so the same graph in PostgreSQL and in
files, or restored and stamped with new write times, hashes differently. The content digest is
a SHA-256 over every record in the comparable form of ``mapping`` (write times left out), in
a fixed order, and every vector rounded to float16 (the coarsest store's precision: a graph
restored into NanoVectorDB digests as its source did). Equal digests: the same graph.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable

from . import layout, mapping


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
        if len(keys):
            sha.update(np.ascontiguousarray(np.asarray(matrix)[order].astype("<f2")).tobytes())
    return "sha256:" + sha.hexdigest()
