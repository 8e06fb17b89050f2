"""Fixtures: real LightRAG graphs built offline, and local repositories in temp folders."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from lightrag.backup.storage import LocalBackupStorage

logging.getLogger("lightrag").setLevel(logging.WARNING)

#: Every repository the suite makes is encrypted (as the product's default is), under this
#: password; the servers and commands it starts inherit it. Tests of unencrypted repositories
#: and of other password sources say so explicitly.
TEST_PASSWORD = "lightrag-backup test suite password"
os.environ.setdefault("LIGHTRAG_BACKUP_PASSWORD", TEST_PASSWORD)


def _suite_key_export() -> None:
    """Every repository the suite creates holds one master key (LIGHTRAG_BACKUP_KEY_EXPORT_FILE),
    as an operator provisions a primary and its standbys: pushes between the instances a test
    starts then work. Tests of a standby under another key unset it."""
    if os.environ.get("LIGHTRAG_BACKUP_KEY_EXPORT_FILE"):
        return
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="lightrag-backup-suite-key-"))
    exported = LocalBackupStorage(folder / "repo", password=TEST_PASSWORD).export_key()
    path = folder / "key-export.json"
    path.write_text(exported)
    path.chmod(0o600)
    os.environ["LIGHTRAG_BACKUP_KEY_EXPORT_FILE"] = str(path)


_suite_key_export()


@pytest.fixture
def storage(tmp_path: Path) -> LocalBackupStorage:
    return LocalBackupStorage(tmp_path / "repo")


@pytest.fixture
async def rag(tmp_path: Path):
    """A live LightRAG instance with a small graph (4 documents), finalised after the test."""
    from helpers import forget_shared_data

    from lightrag.backup.offline_graph import build_graph

    forget_shared_data()  # nothing of what earlier tests left in this process's LightRAG memory
    instance = await build_graph(tmp_path / "rag_storage", 4)
    yield instance
    await instance.finalize_storages()
    forget_shared_data()
