"""Disaster recovery for LightRAG graph deployments: which instance is the primary, and (as
it lands) recovery points across graphs, validation, failover and drills.

Imports ``lightrag.backup`` and ``lightrag.replication``; neither imports it (only the app
factory, the CLI and the server reach all three).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightrag.backup._lazy import lazy_exports

if TYPE_CHECKING:
    from .roles import instance_status

_LAZY = {"instance_status": "roles"}

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)

__all__ = sorted(_LAZY)
