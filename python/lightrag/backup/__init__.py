"""lightrag-backup: snapshots, verification and restore of LightRAG knowledge graphs.

    from lightrag.backup import GraphBackup
    from lightrag.backup.storage import LocalBackupStorage

    backup = GraphBackup("docs", LocalBackupStorage("/data/backups"), working_dir="./rag_storage")
    snapshot = backup.create_snapshot(description="nightly")
    backup.restore_snapshot(snapshot.snapshot_id, target_dir="/tmp/restored")

Importing this package does not import LightRAG's heavy modules.
"""

from __future__ import annotations

import atexit

from . import _native
from .errors import BackupError
from .graph_backup import (
    BackupSnapshot,
    BackupStatus,
    GraphBackup,
    SnapshotFile,
    VerifyReport,
)
from .manager import BackupManager
from .retention import RetentionPolicy

__version__: str = _native.__version__

# Let in-flight async calls hand their results back before the interpreter shuts down.
atexit.register(_native._drain, 5.0)

__all__ = [
    "BackupError",
    "BackupManager",
    "BackupSnapshot",
    "BackupStatus",
    "GraphBackup",
    "RetentionPolicy",
    "SnapshotFile",
    "VerifyReport",
    "__version__",
]
