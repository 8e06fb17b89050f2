"""Replication's errors, in lightrag-backup's one exception tree (:class:`BackupError`)."""

from __future__ import annotations

from lightrag.backup.errors import BackupError


class TargetNotFoundError(BackupError, KeyError):
    """No replication target with that name or id."""

    kind = "target_not_found"
    http_status = 404


class TargetExistsError(BackupError):
    """Another target already has that name."""

    kind = "target_exists"
    http_status = 409


__all__ = ["TargetExistsError", "TargetNotFoundError"]
