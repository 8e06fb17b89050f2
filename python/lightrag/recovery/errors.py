"""The errors of disaster recovery (all :class:`~lightrag.backup.errors.BackupError`s, so the
REST API answers them with their status and a JSON body). Engine errors (an unknown recovery
point, a snapshot a point protects) are in :mod:`lightrag.backup.errors`."""

from __future__ import annotations

from lightrag.backup.errors import BackupError, RecoveryPointNotFoundError, SnapshotProtectedError


class FailoverRunningError(BackupError):
    """A failover is already running on this instance."""

    http_status = 409
    kind = "failover_running"


class AlreadyPrimaryError(BackupError):
    """A failover was asked of the primary: it is for a standby (the primary restores)."""

    http_status = 409
    kind = "already_primary"


class LeaseHeldError(BackupError):
    """Another instance holds the failover lease (or took it first): this one may not act as
    the primary now."""

    http_status = 409
    kind = "lease_held"


class SwitchoverError(BackupError):
    """A switchover could not complete; the message says in which state it left the instances."""

    http_status = 409
    kind = "switchover_failed"


__all__ = ["AlreadyPrimaryError", "FailoverRunningError", "LeaseHeldError", "SwitchoverError", "RecoveryPointNotFoundError", "SnapshotProtectedError"]
