"""The values lightrag-backup hands out: snapshots, their files, verify reports, statuses,
and the checks every entry point applies to ids.

Nothing here does work: the services (:mod:`.graph_backup`, :mod:`.storage`, :mod:`.catalog`,
:mod:`.manager`) import these types; this module imports none of them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

from .errors import InvalidInputError

ProgressCallback = Callable[[str, int, int], None]
"""``callback(phase, done, total)``: phase is "snapshot", "restore" or "verify"; units are bytes."""

#: A graph id: it names a folder in the repository (the engine checks the same rule).
GRAPH_ID_PATTERN = r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,127}$"
#: A snapshot id, a prefix of one, or ``latest``.
SNAPSHOT_ID_PATTERN = r"^(?:[0-9a-fA-F][0-9a-fA-F\-]{0,63}|latest)$"
_GRAPH_ID = re.compile(GRAPH_ID_PATTERN)


class BackupStatus(str, Enum):
    """Where a snapshot stands."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    VERIFIED = "verified"
    FAILED = "failed"
    CORRUPTED = "corrupted"


@dataclass(frozen=True)
class SnapshotFile:
    """One file of a snapshot."""

    path: str
    size: int
    mtime_ns: int
    digest: str
    chunks: int
    encoding: str = "raw"
    """``raw``, or ``nanovdb-matrix`` for a vector file stored with its matrix decoded."""
    mode: int = 0
    """Unix permission bits, restored with the file."""
    uid: Optional[int] = None
    """Owner and group (``None`` in snapshots of format version 2 and older): restored when the
    restore runs as root."""
    gid: Optional[int] = None


@dataclass(frozen=True)
class BackupSnapshot:
    """A committed snapshot of one graph.

    ``metadata`` holds the LightRAG version (when known), workspace, counts of entities,
    relations, chunks and documents, file count, and logical/stored sizes. ``data_hash`` is a
    SHA-256 over the snapshot's content: two snapshots of identical files have equal hashes.
    ``checkpoint_path`` is where the snapshot's manifest lives in the repository.
    """

    snapshot_id: str
    graph_id: str
    timestamp: datetime
    metadata: dict[str, Any]
    checkpoint_path: Path
    status: BackupStatus
    data_hash: str
    description: Optional[str] = None
    tags: tuple[str, ...] = ()
    size_bytes: int = 0
    stored_bytes: int = 0
    files: tuple[SnapshotFile, ...] = field(default=(), repr=False)
    #: True when ``create_snapshot(skip_if_unchanged=True)`` found nothing changed and
    #: returned the existing newest snapshot instead of writing a new one.
    skipped: bool = False

    @classmethod
    def _from_native(cls, data: dict[str, Any], location: str) -> "BackupSnapshot":
        """From the engine's JSON; ``location`` is where the repository keeps its objects."""
        metadata = dict(data.get("metadata") or {})
        metadata.update(
            {
                "hostname": data["hostname"],
                "file_count": data["file_count"],
                "chunk_count": data["chunk_count"],
                "logical_size": data["logical_size"],
                "stored_size": data["added_size"],
            }
        )
        files = tuple(
            SnapshotFile(f["path"], f["size"], f["mtime_ns"], f["digest"], f["chunks"], f.get("encoding", "raw"),
                         f.get("mode", 0), f.get("uid"), f.get("gid"))
            for f in data.get("files", ())
        )
        if files:
            metadata["files"] = [f.path for f in files]
        return cls(
            snapshot_id=data["snapshot_id"],
            graph_id=data["graph_id"],
            timestamp=datetime.fromisoformat(data["time"].replace("Z", "+00:00")),
            metadata=metadata,
            checkpoint_path=Path(location, "snapshots", data["graph_id"], data["snapshot_id"]),
            status=BackupStatus.COMPLETED,
            data_hash=data["data_hash"],
            description=data.get("description"),
            tags=tuple(data.get("tags") or ()),
            size_bytes=data["logical_size"],
            stored_bytes=data["added_size"],
            files=files,
            skipped=bool(data.get("skipped", False)),
        )

    def _repr_html_(self) -> str:
        """A one-row table in a notebook."""
        from .display import SNAPSHOT_COLUMNS, html_table, snapshot_row

        return html_table(SNAPSHOT_COLUMNS, [snapshot_row(self)])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (used by the CLI's ``--json``)."""
        return {
            "snapshot_id": self.snapshot_id,
            "graph_id": self.graph_id,
            "timestamp": self.timestamp.isoformat(),
            "status": self.status.value,
            "data_hash": self.data_hash,
            "description": self.description,
            "tags": list(self.tags),
            "size_bytes": self.size_bytes,
            "stored_bytes": self.stored_bytes,
            "checkpoint_path": str(self.checkpoint_path),
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class VerifyReport:
    """The result of verifying a snapshot. ``ok`` says plainly whether it is whole."""

    snapshot_id: str
    ok: bool
    read_data: bool
    snapshots_checked: int
    files_checked: int
    chunks_checked: int
    packs_checked: int
    packs_read: int
    bytes_read: int
    errors: tuple[str, ...]
    scope: str = ""
    damaged_packs: tuple[str, ...] = ()
    """Packs found damaged, now recorded in the repository: no snapshot reuses them, the next
    backup of healthy data stores their chunks again, and ``repair`` heals what it can."""
    unreadable_objects: tuple[str, ...] = ()
    """Objects that cannot be read at all (manifests, index objects, ...), by path:
    ``repair`` sets them aside (a snapshot whose manifest is unreadable is lost)."""
    """Set when several snapshots were verified together: what they were."""

    @property
    def status(self) -> BackupStatus:
        return BackupStatus.VERIFIED if self.ok else BackupStatus.CORRUPTED

    def __bool__(self) -> bool:
        return self.ok

    @property
    def checked_nothing(self) -> bool:
        """True when there was nothing to verify (no snapshots): not a proof of anything."""
        return self.snapshots_checked == 0

    def __str__(self) -> str:
        how = "read every chunk" if self.read_data else "structure only"
        if self.checked_nothing:
            return f"nothing to verify: {self._subject}: there are none (check the graph id and the repository)"
        if self.ok:
            return (
                f"{self._subject} {'are' if self.scope else 'is'} whole ({how}: {self.files_checked} files, "
                f"{self.chunks_checked} chunks, {self.packs_read} packs read)"
            )
        text = f"{self._subject} {'are' if self.scope else 'is'} DAMAGED: " + "; ".join(self.errors)
        if self.damaged_packs:
            text += (f" ({len(self.damaged_packs)} damaged pack(s) recorded: no snapshot reuses them, the next "
                     "backup stores their chunks again, and `lightrag-backup repair` heals what it can)")
        if self.unreadable_objects:
            text += (f" ({len(self.unreadable_objects)} unreadable object(s): `lightrag-backup repair` sets them "
                     "aside, or `delete` an unreadable snapshot)")
        return text

    @property
    def _subject(self) -> str:
        return self.scope or f"snapshot {self.snapshot_id}"

    def _repr_html_(self) -> str:
        """The verdict and the counts as a table in a notebook; the errors below it."""
        from .display import html_table, human_bytes

        verdict = "nothing to verify" if self.checked_nothing else "whole" if self.ok else "DAMAGED"
        table = html_table(("subject", "verdict", "how", "files", "chunks", "packs read", "read"),
                           [(self._subject, verdict, "every chunk read" if self.read_data else "structure only",
                             self.files_checked, self.chunks_checked, self.packs_read, human_bytes(self.bytes_read))])
        if self.errors:
            table += html_table(("error",), [(e,) for e in self.errors])
        return table

    def to_dict(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "ok": self.ok,
            "read_data": self.read_data,
            "scope": self.scope,
            "snapshots_checked": self.snapshots_checked,
            "files_checked": self.files_checked,
            "chunks_checked": self.chunks_checked,
            "packs_checked": self.packs_checked,
            "packs_read": self.packs_read,
            "bytes_read": self.bytes_read,
            "errors": list(self.errors),
            "checked_nothing": self.checked_nothing,
            "damaged_packs": list(self.damaged_packs),
            "unreadable_objects": list(self.unreadable_objects),
        }


def validate_graph_id(graph_id: Any) -> str:
    """Return ``graph_id`` if it is a valid graph id, else raise :class:`InvalidInputError`."""
    if not isinstance(graph_id, str) or not _GRAPH_ID.match(graph_id):
        raise InvalidInputError(
            f"graph id {graph_id!r} is not valid: use 1-128 characters of letters, digits, "
            "'_', '-' and '.', not starting with '.'"
        )
    return graph_id


def check_snapshot_id(snapshot_id: Any) -> str:
    """Return ``snapshot_id`` if it is a usable id (or prefix, or ``latest``), else raise
    :class:`InvalidInputError`."""
    if not isinstance(snapshot_id, str) or not snapshot_id:
        raise InvalidInputError("snapshot_id must be a non-empty string")
    return snapshot_id


def verify_report(snapshot_id: str, read_data: bool, result: str, scope: str = "") -> VerifyReport:
    data = json.loads(result)
    return VerifyReport(
        scope=scope,
        snapshot_id=snapshot_id,
        ok=data["ok"],
        read_data=read_data,
        snapshots_checked=data["snapshots_checked"],
        files_checked=data["files_checked"],
        chunks_checked=data["chunks_checked"],
        packs_checked=data["packs_checked"],
        packs_read=data["packs_read"],
        bytes_read=data["bytes_read"],
        errors=tuple(data["errors"]),
        damaged_packs=tuple(data.get("damaged_packs") or ()),
        unreadable_objects=tuple(data.get("unreadable_objects") or ()),
    )




class SnapshotRecorder(Protocol):
    """Where a :class:`~lightrag.backup.graph_backup.GraphBackup` reports what it committed,
    forgot and verified (the manager's catalog). Reads never report."""

    def record_snapshot(self, snapshot: BackupSnapshot) -> None: ...

    def forget_snapshots(self, snapshot_ids: list[str]) -> None: ...

    def record_verify(
        self, graph_id: str, snapshot_id: Optional[str], ok: bool, read_data: bool, errors: list[str]
    ) -> None: ...


__all__ = [
    "GRAPH_ID_PATTERN",
    "SNAPSHOT_ID_PATTERN",
    "BackupSnapshot",
    "BackupStatus",
    "ProgressCallback",
    "SnapshotFile",
    "SnapshotRecorder",
    "VerifyReport",
    "check_snapshot_id",
    "validate_graph_id",
    "verify_report",
]
