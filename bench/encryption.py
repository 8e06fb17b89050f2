"""What every benchmark's repositories are made with: encryption on (the product's default, and
how restic and rustic always run), one master key shared by every repository and instance a
benchmark starts (as an operator provisions a primary and its standbys from one key export)."""

from __future__ import annotations

import os
from pathlib import Path

#: The password of the benchmarks' repositories (unless LIGHTRAG_BACKUP_PASSWORD is set).
BENCH_PASSWORD = "lightrag-backup bench password"


def provision(work: Path) -> None:
    """Set LIGHTRAG_BACKUP_PASSWORD and LIGHTRAG_BACKUP_KEY_EXPORT_FILE (unless set) for this
    process and the servers and commands it starts."""
    os.environ.setdefault("LIGHTRAG_BACKUP_PASSWORD", BENCH_PASSWORD)
    if os.environ.get("LIGHTRAG_BACKUP_KEY_EXPORT_FILE"):
        return
    from lightrag.backup.storage import LocalBackupStorage

    work.mkdir(parents=True, exist_ok=True)
    export = work / "bench-key-export.json"
    if not export.exists():
        holder = work / "bench-key-holder"
        store = LocalBackupStorage(holder, password=os.environ["LIGHTRAG_BACKUP_PASSWORD"])
        export.write_text(store.export_key())
        export.chmod(0o600)
    os.environ["LIGHTRAG_BACKUP_KEY_EXPORT_FILE"] = str(export)
