"""The exceptions of lightrag-backup: one tree under :class:`BackupError`.

Every failure raises one of these with a message that says what to check; nothing fails
silently. ``retryable`` tells whether the same call may succeed later (a busy graph, a transient
backend failure); ``kind`` is a short machine-readable name, also used by ``--json`` output.
"""

from __future__ import annotations


class BackupError(Exception):
    """Base class of every lightrag-backup error."""

    retryable: bool = False
    kind: str = "backup_error"

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class InvalidInputError(BackupError, ValueError):
    """Bad input: an invalid graph id, tag, option or an ambiguous snapshot id prefix."""

    kind = "invalid_input"


class GraphNotFoundError(BackupError, KeyError):
    """The graph is not registered with the manager."""

    kind = "graph_not_found"


class SnapshotNotFoundError(BackupError, KeyError):
    """No such snapshot for this graph (the message says when it belongs to another graph)."""

    kind = "snapshot_not_found"


class GraphDirNotFoundError(BackupError, FileNotFoundError):
    """The graph's working directory does not exist."""

    kind = "graph_dir_not_found"


class GraphBusyError(BackupError):
    """The graph was busy (an insert running, files changing) past the timeout."""

    kind = "graph_busy"
    retryable = True


class IntegrityError(BackupError):
    """Stored data is missing or does not match its hash: the repository is damaged."""

    kind = "integrity"


class RepositoryError(BackupError):
    """The repository cannot be used."""

    kind = "repository"


class RepositoryNotFoundError(RepositoryError, FileNotFoundError):
    """No repository at that location (and creating one was not asked for)."""

    kind = "repository_not_found"


class UnsupportedFormatError(RepositoryError):
    """The repository was written by a newer lightrag-backup."""

    kind = "unsupported_format"


class RepositoryConflictError(RepositoryError):
    """A concurrent operation conflicted (another prune is running, or a prune is removing
    data a long-running snapshot wanted to reuse). Nothing was committed; retry."""

    kind = "conflict"
    retryable = True


class StorageBackendError(RepositoryError):
    """The object store (local folder, S3, Azure) failed."""

    kind = "backend"


class StorageAuthError(StorageBackendError, PermissionError):
    """The object store refused the credentials (401/403): check keys, tokens and roles."""

    kind = "backend_auth"


class StorageLocationNotFoundError(StorageBackendError, FileNotFoundError):
    """The bucket or container does not exist (create it, or pass ``create_bucket=True`` /
    ``create_container=True`` / ``--create-bucket``)."""

    kind = "backend_location_not_found"


class CatalogError(BackupError):
    """The catalog database cannot be opened, or was written by a newer lightrag-backup
    (``lightrag-backup catalog rebuild`` recreates it from the repository)."""

    kind = "catalog"


class BackupIOError(BackupError, OSError):
    """A local file could not be read or written."""

    kind = "io"


class OperationCancelledError(BackupError, KeyboardInterrupt):
    """The operation was interrupted (Ctrl-C); nothing was committed, the repository is valid."""

    kind = "cancelled"


__all__ = [
    "BackupError",
    "BackupIOError",
    "CatalogError",
    "GraphBusyError",
    "GraphDirNotFoundError",
    "GraphNotFoundError",
    "IntegrityError",
    "InvalidInputError",
    "OperationCancelledError",
    "RepositoryConflictError",
    "RepositoryError",
    "RepositoryNotFoundError",
    "SnapshotNotFoundError",
    "StorageAuthError",
    "StorageBackendError",
    "StorageLocationNotFoundError",
    "UnsupportedFormatError",
]
