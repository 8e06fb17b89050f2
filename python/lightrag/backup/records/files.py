"""Between records and LightRAG's file storages.

A records snapshot restored into a folder becomes an ordinary LightRAG ``working_dir``
(``kv_store_*.json``, ``vdb_*.json``, GraphML), written by LightRAG's own file storages; a file
graph restored into databases is first read into records the same way. LightRAG shares a file
storage's memory between every instance of one workspace name in a process, so the file
storages are opened under a private workspace of their own and the files moved into place.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

from . import capture as capture_records
from . import load as load_records
from .target import StorageConfig, opened

_PRIVATE_PREFIX = "lrb-private-"


async def to_file_storages(
    records: "load_records.Records",
    target_dir: Path,
    *,
    progress: Optional[Callable[[str, int, int], None]] = None,
) -> dict[str, int]:
    """Write ``records`` as LightRAG's file storages into ``target_dir`` (its graph files
    replaced; other files and sub-folders left alone)."""
    from .. import _native

    target_dir.mkdir(parents=True, exist_ok=True)
    workspace = f"{_PRIVATE_PREFIX}{uuid.uuid4().hex}"
    private = target_dir / workspace
    try:
        config = StorageConfig(working_dir=str(target_dir), workspace=workspace)
        async with opened(config, embedding_dim=records.dim, model_name=records.manifest["embedding"].get("model_name")) as rag:
            counts = await load_records.load(records, rag, progress=progress)
        # Each file replaced by rename (never a half-written file); then the graph files the
        # restored graph does not have are removed.
        written = {p.name for p in private.iterdir() if p.is_file() and _native.is_graph_file(p.name)}
        for name in sorted(written):
            os.replace(private / name, target_dir / name)
        for old in target_dir.iterdir():
            if old.is_file() and _native.is_graph_file(old.name) and old.name not in written:
                old.unlink()
        return counts
    finally:
        shutil.rmtree(private, ignore_errors=True)


async def from_file_storages(
    graph_dir: Path,
    folder: Path,
    *,
    embedding_dim: int,
    model_name: Optional[str],
    progress: Optional[Callable[[str, int, int], None]] = None,
) -> dict[str, Any]:
    """Capture the file graph in ``graph_dir`` (left unchanged) as records in ``folder``."""
    from .. import _native

    scratch = folder.parent / f"{_PRIVATE_PREFIX}{uuid.uuid4().hex}"
    workspace = scratch.name
    private = scratch / workspace
    private.mkdir(parents=True)
    try:
        for source in graph_dir.iterdir():
            if source.is_file() and _native.is_graph_file(source.name):
                shutil.copy2(source, private / source.name)
        config = StorageConfig(working_dir=str(scratch), workspace=workspace)
        async with opened(config, embedding_dim=embedding_dim, model_name=model_name) as rag:
            manifest = await capture_records.capture(rag, folder, progress=progress)
        manifest["workspace"] = ""
        return manifest
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
