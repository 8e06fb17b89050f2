"""Replication of LightRAG graph backups to other repositories and to standby instances.

    from lightrag.backup import BackupManager
    from lightrag.replication import ReplicationManager, ReplicationTarget

    manager = BackupManager("/data/backups")
    replication = ReplicationManager(manager)
    replication.register_target(ReplicationTarget("offsite", "s3://dr-bucket/lightrag"))
    replication.replicate_all_graphs()          # {graph_id: True when every target confirmed}

Every snapshot reaches each target carrying only the chunks the target lacks, checked against
their SHA-256 ids on the way, with the target's manifest written last; the target's copy is
checked and its data hash compared with the source's. Built on the engine's
``_native.ReplicationManager``. Imports ``lightrag.backup``; never the reverse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightrag.backup._lazy import lazy_exports

if TYPE_CHECKING:
    from .graph_replication import GraphReplicator, ReplicationLog, ReplicationManager, ReplicationStatus
    from .targets import ReplicationTarget

_LAZY = {
    "GraphReplicator": "graph_replication",
    "ReplicationLog": "graph_replication",
    "ReplicationManager": "graph_replication",
    "ReplicationStatus": "graph_replication",
    "ReplicationTarget": "targets",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)


__all__ = sorted(_LAZY)
