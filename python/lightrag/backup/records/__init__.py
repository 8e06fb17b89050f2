"""Graphs kept in databases: their records, captured and loaded through LightRAG's storages.

``capture`` reads every record of a live instance (any storages) into a records folder
(``layout``: format ``lightrag-records`` v1); ``load`` writes one into any instance, through
LightRAG's own upserts and with the saved vectors (never re-embedded); ``files`` converts to
and from LightRAG's file storages; ``target`` names a graph's storages the way LightRAG's
server does (:class:`StorageConfig`); ``mapping`` holds every cross-backend field rule.
"""

from __future__ import annotations

from typing import Any

from .target import StorageConfig


def summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """The part of a records manifest kept in the snapshot's metadata."""
    stores = manifest.get("stores", {})
    return {
        "format": f"{manifest.get('format')}/{manifest.get('version')}",
        "status": manifest.get("status"),
        "complete": bool(manifest.get("complete")),
        "storages": {name: info.get("class") for name, info in stores.items()},
        "counts": {
            **{name: info["captured"] for name, info in stores.items() if "captured" in info},
            **{f"graph_{kind}": info[kind] for info in stores.values() for kind in ("nodes", "edges") if kind in info},
        },
        "incomplete": {
            name: {k: info[k] for k in ("missing_count", "missing", "missing_vectors_count") if k in info}
            for name, info in stores.items()
            if info.get("status") == "incomplete"
        },
        "embedding": manifest.get("embedding"),
        "digest": manifest.get("digest"),
    }


__all__ = ["StorageConfig", "summary"]
