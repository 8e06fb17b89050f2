"""lightrag-backup: snapshots, verification and restore of LightRAG knowledge graphs.

    from lightrag.backup import GraphBackup
    from lightrag.backup.storage import LocalBackupStorage

    backup = GraphBackup("docs", LocalBackupStorage("/data/backups"), working_dir="./rag_storage")
    snapshot = backup.create_snapshot(description="nightly")
    backup.restore_snapshot(snapshot.snapshot_id, target_dir="/tmp/restored")

Importing this package does not import LightRAG's heavy modules, nor its own: the classes are
loaded on first use, so the ``lightrag-backup`` command starts without the catalog, scheduler
and retention code a restore does not need.
"""

from __future__ import annotations

import atexit
from typing import TYPE_CHECKING

from . import _native
from ._lazy import lazy_exports
from .errors import BackupError

if TYPE_CHECKING:
    from .graph_backup import GraphBackup
    from .kg_diff import GraphDiff
    from .types import BackupSnapshot, BackupStatus, SnapshotFile, VerifyReport
    from .manager import BackupManager
    from .retention import RetentionPolicy

__version__: str = _native.__version__

# Let in-flight async calls hand their results back before the interpreter shuts down.
atexit.register(_native._drain, 5.0)

# Public name -> the module that defines it (imported on first access).
_LAZY = {
    "BackupSnapshot": "types",
    "BackupStatus": "types",
    "GraphBackup": "graph_backup",
    "GraphDiff": "kg_diff",
    "SnapshotFile": "types",
    "VerifyReport": "types",
    "BackupManager": "manager",
    "RetentionPolicy": "retention",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)


__all__ = [
    "BackupError",
    "BackupManager",
    "BackupSnapshot",
    "BackupStatus",
    "GraphBackup",
    "GraphDiff",
    "RetentionPolicy",
    "SnapshotFile",
    "VerifyReport",
    "__version__",
]
