"""The exceptions of lightrag-backup: one tree under :class:`BackupError`.

Every failure raises one of these with a message that says what to check; nothing fails
silently. ``retryable`` tells whether the same call may succeed later (a busy graph, a transient
backend failure); ``kind`` is a short machine-readable name, also used by ``--json`` output
and the REST API's error bodies; ``http_status`` is the status the REST API answers with.

The Rust engine names each failure by its kind (the one table of kinds is the engine's
``Error::kind``); :func:`from_kind` turns that into the exception of this tree.
"""

from __future__ import annotations

from typing import Optional


class BackupError(Exception):
    """Base class of every lightrag-backup error."""

    retryable: bool = False
    kind: str = "backup_error"
    #: The HTTP status the REST API answers this error with (subclasses say theirs).
    http_status: int = 500

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class InvalidInputError(BackupError, ValueError):
    """Bad input: an invalid graph id, tag, option or an ambiguous snapshot id prefix."""

    http_status = 422
    kind = "invalid_input"


class GraphNotFoundError(BackupError, KeyError):
    """The graph is not registered with the manager."""

    http_status = 404
    kind = "graph_not_found"


class SnapshotNotFoundError(BackupError, KeyError):
    """No such snapshot for this graph (the message says when it belongs to another graph)."""

    http_status = 404
    kind = "snapshot_not_found"


class DocumentNotFoundError(BackupError, KeyError):
    """The snapshot holds no such document (by id or file path)."""

    http_status = 404
    kind = "document_not_found"


class EntityNotFoundError(BackupError, KeyError):
    """The snapshot holds no such entity."""

    http_status = 404
    kind = "entity_not_found"


class DocumentExistsError(BackupError):
    """The document (or entity) to restore is still in the graph: restore it with ``replace``
    to put the snapshot's version in place of the current one."""

    http_status = 409
    kind = "document_exists"


class GraphDirNotFoundError(BackupError, FileNotFoundError):
    """The graph's working directory does not exist."""

    http_status = 404
    kind = "graph_dir_not_found"


class GraphSourceConflictError(BackupError):
    """The graph id already holds snapshots of another folder (working dir or workspace): two
    graphs would share one id. Use another id, or adopt the folder if the graph moved."""

    kind = "graph_source_conflict"
    http_status = 409


class IncompatibleTargetError(BackupError):
    """A replication target cannot take this repository's chunks as they are (another format
    version, other chunker parameters). Nothing was sent."""

    kind = "incompatible_target"
    http_status = 409


class PushRefusedError(BackupError):
    """A replication target refused a push on purpose: it has a higher fencing epoch
    (``fenced``: this instance is no longer the primary), it is a primary itself
    (``target_is_primary``), or the graph diverged there (``conflict``). Not retried."""

    kind = "push_refused"
    http_status = 409
    #: Why: ``fenced``, ``target_is_primary`` or ``conflict`` (the target's own kind).
    refusal: str = ""


class PeerUnreachableError(BackupError, ConnectionError):
    """Another instance could not be reached (connection refused or reset, timed out): it may
    be restarting or cut off. Retryable; ``refusal`` is ``unreachable``."""

    kind = "peer_unreachable"
    http_status = 502
    retryable = True
    refusal: str = "unreachable"


class RecoveryPointNotFoundError(BackupError, KeyError):
    """No recovery point with this id (or unique id prefix) in the repository."""

    http_status = 404
    kind = "recovery_point_not_found"


class SnapshotProtectedError(BackupError):
    """A recovery point names the snapshot: it is kept until the point is deleted."""

    http_status = 409
    kind = "snapshot_protected"


class GraphBusyError(BackupError):
    """The graph was busy (an insert running, files changing) past the timeout."""

    http_status = 409
    kind = "graph_busy"
    retryable = True


class RolledBackError(BackupError):
    """A write failed part-way and was undone: the graph holds what it held before (the
    message names the failure and the safety snapshot it was rolled back to)."""

    retryable = True
    kind = "rolled_back"


class IntegrityError(BackupError):
    """Stored data is missing or does not match its hash: the repository is damaged."""

    kind = "integrity"


class RepositoryError(BackupError):
    """The repository cannot be used."""

    kind = "repository"


class RepositoryNotFoundError(RepositoryError, FileNotFoundError):
    """No repository at that location (and creating one was not asked for)."""

    kind = "repository_not_found"


class PasswordRequiredError(RepositoryError):
    """The repository is encrypted, or a new one would be, and no password source was given
    (``password=``, ``LIGHTRAG_BACKUP_PASSWORD_FILE``, ``LIGHTRAG_BACKUP_PASSWORD_COMMAND`` or
    ``LIGHTRAG_BACKUP_PASSWORD``; ``encryption="none"`` makes an unencrypted one)."""

    http_status = 401
    kind = "password_required"


class WrongPasswordError(RepositoryError):
    """No key of the repository opens with the password given."""

    http_status = 401
    kind = "wrong_password"


class GraphShreddedError(BackupError):
    """The graph was shredded: its key is deleted, its snapshots can never be read again and
    its id takes no new snapshots."""

    http_status = 410
    kind = "graph_shredded"


class UnsupportedFormatError(RepositoryError):
    """The repository was written by a newer lightrag-backup."""

    kind = "unsupported_format"


class RepositoryConflictError(RepositoryError):
    """A concurrent operation conflicted (another prune or an index compaction is running, or a prune is removing
    data a long-running snapshot wanted to reuse). Nothing was committed; retry."""

    http_status = 409
    kind = "conflict"
    retryable = True


class StorageBackendError(RepositoryError):
    """The object store (local folder, S3, Azure) failed."""

    http_status = 503
    kind = "backend"


class StorageAuthError(StorageBackendError, PermissionError):
    """The object store refused the credentials (401/403): check keys, tokens and roles."""

    kind = "backend_auth"


class StorageLocationNotFoundError(StorageBackendError, FileNotFoundError):
    """The bucket or container does not exist (create it, or pass ``create_bucket=True`` /
    ``create_container=True`` / ``--create-bucket``)."""

    kind = "backend_location_not_found"


class OperationRunningError(BackupError):
    """Another operation (a snapshot, restore, verify or delete) is running on this graph in
    this process; ``operation`` and ``job_id`` say which. Retry when it is done."""

    http_status = 409
    kind = "operation_running"
    retryable = True

    def __init__(self, graph_id: str, operation: str = "", job_id: "str | None" = None) -> None:
        what = f"{operation}, job {job_id}" if job_id else operation
        super().__init__(
            f"an operation is already running on graph {graph_id!r}" + (f" ({what})" if what else "")
            + "; retry when it is done"
        )
        self.graph_id = graph_id
        self.operation = operation
        self.job_id = job_id


class CatalogError(BackupError):
    """The catalog database cannot be opened, or was written by a newer lightrag-backup
    (``lightrag-backup catalog rebuild`` recreates it from the repository)."""

    kind = "catalog"


class GraphStorageUnavailableError(BackupError):
    """A database-backed graph's storage (PostgreSQL, Redis, Milvus, ...) failed while its
    records were read; nothing was committed. Retry when the database is back."""

    kind = "graph_storage_unavailable"
    http_status = 503
    retryable = True


class RestoreIncompleteError(BackupError):
    """Writing a snapshot's records into the target failed after the target's old records
    were dropped: the message says which stage failed and how to get a whole graph back (the
    safety snapshot to restore, or the same restore again)."""

    kind = "restore_incomplete"
    http_status = 500


class BackupIOError(BackupError, OSError):
    """A local file could not be read or written."""

    kind = "io"


class OperationCancelledError(BackupError, KeyboardInterrupt):
    """The operation was interrupted (Ctrl-C); nothing was committed, the repository is valid."""

    kind = "cancelled"


def _subclasses(cls: type[BackupError]) -> list[type[BackupError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


def error_class(kind: str) -> type[BackupError]:
    """The exception class of a kind (:class:`BackupError` for a kind this version lacks)."""
    for cls in _subclasses(BackupError):
        if cls.__dict__.get("kind") == kind:
            return cls
    return BackupError


def from_kind(kind: str, message: str, retryable: bool, refusal: Optional[str] = None) -> BackupError:
    """The exception for an engine error of ``kind`` (called by the Rust bindings); a peer's
    refusal carries its own kind as ``refusal`` (``fenced``, ``target_is_primary``,
    ``conflict``, ``unreachable``)."""
    error = error_class(kind)(message)
    error.kind = kind
    error.retryable = retryable
    if refusal is not None:
        error.refusal = refusal  # type: ignore[attr-defined]
    return error


__all__ = [
    "BackupError",
    "BackupIOError",
    "CatalogError",
    "DocumentExistsError",
    "DocumentNotFoundError",
    "EntityNotFoundError",
    "GraphBusyError",
    "GraphDirNotFoundError",
    "GraphNotFoundError",
    "GraphShreddedError",
    "GraphSourceConflictError",
    "GraphStorageUnavailableError",
    "IncompatibleTargetError",
    "IntegrityError",
    "InvalidInputError",
    "OperationCancelledError",
    "OperationRunningError",
    "PeerUnreachableError",
    "PushRefusedError",
    "RecoveryPointNotFoundError",
    "RepositoryConflictError",
    "RepositoryError",
    "RepositoryNotFoundError",
    "PasswordRequiredError",
    "WrongPasswordError",
    "RestoreIncompleteError",
    "RolledBackError",
    "SnapshotNotFoundError",
    "SnapshotProtectedError",
    "StorageAuthError",
    "StorageBackendError",
    "StorageLocationNotFoundError",
    "UnsupportedFormatError",
    "error_class",
    "from_kind",
]
