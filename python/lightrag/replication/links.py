"""How this instance reaches a replication target: one interface (:class:`TargetLink`), one
class per kind of target. :class:`RepositoryLink` copies into another repository (a bucket, a
folder) through the engine's copy; :class:`InstanceLink` pushes to another lightrag-backup
instance through the engine's peer client (:mod:`.peer`), which also answers its questions.
:class:`~.graph_replication.ReplicationManager` asks a target's link and never its kind (as
litestream's replicas share one ``ReplicaClient`` interface).
"""

from __future__ import annotations

import abc
import json
from typing import Any, Callable, Optional

from lightrag.backup.errors import BackupError, SnapshotNotFoundError
from lightrag.backup.types import ProgressCallback

from .peer import Peer
from .targets import ReplicationTarget


class TargetLink(abc.ABC):
    """One target as this instance reaches it."""

    #: Whether the engine already retried what was worth retrying (no tries are added here).
    retried_by_engine = False

    def __init__(self, target: ReplicationTarget, engine: Any) -> None:
        self.target = target
        #: The engine's ``_native.ReplicationManager`` of this instance's repository.
        self.engine = engine

    @abc.abstractmethod
    def config(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The target's repository settings (format, chunker, ids), and what its health check
        shows besides (an instance's role, epoch, version)."""

    @abc.abstractmethod
    def verify(self, graph_id: str, snapshot_id: str) -> dict[str, Any]:
        """The target's copy of a snapshot read back whole: ``present``, ``ok``, ``data_hash``,
        ``errors``."""

    def refusal(self, role: str) -> Optional[str]:
        """Why this instance (acting as ``role``) must not send to the target now, if it must not."""
        return None

    def conflict_policy(self) -> str:
        """How a divergence on the target is resolved for the next transfer."""
        return self.target.conflict_policy

    @abc.abstractmethod
    def transfer_op(self, graph_id: str, snapshot_ids: Optional[list[str]], dry_run: bool,
                    progress: Optional[ProgressCallback], policy: str, sent: list[tuple[str, str]]) -> Any:
        """The engine's operation sending what the target lacks of ``graph_id``."""

    def epoch(self) -> Optional[int]:
        """The target's fencing epoch, when it has one and answers."""
        return None


class RepositoryLink(TargetLink):
    """A repository target: copied into from here (chunks as stored, or re-encrypted)."""

    def __init__(self, target: ReplicationTarget, engine: Any, repository: Callable[[], Any]) -> None:
        super().__init__(target, engine)
        #: Opens the target repository (kept open by the manager).
        self.repository = repository

    def config(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return json.loads(self.repository().config_json), {}

    def verify(self, graph_id: str, snapshot_id: str) -> dict[str, Any]:
        engine = self.repository().graph(graph_id)
        try:
            manifest = json.loads(engine.get_op(snapshot_id).run())
        except SnapshotNotFoundError:
            return {"present": False, "ok": False, "data_hash": None,
                    "errors": [f"the target has no snapshot {snapshot_id} of {graph_id}"]}
        report = json.loads(engine.verify_op([snapshot_id], True, None, None).run())
        return {"present": True, "ok": bool(report["ok"]), "data_hash": manifest["data_hash"],
                "errors": list(report["errors"])}

    def transfer_op(self, graph_id: str, snapshot_ids: Optional[list[str]], dry_run: bool,
                    progress: Optional[ProgressCallback], policy: str, sent: list[tuple[str, str]]) -> Any:
        return self.engine.copy_op(self.repository(), graph_id, snapshot_ids, dry_run, progress, policy, sent)


class InstanceLink(TargetLink):
    """Another instance: pushed to over HTTP(S), asked through the peer client."""

    retried_by_engine = True

    def __init__(self, target: ReplicationTarget, engine: Any, *, epoch: int, timeout: float, retries: int) -> None:
        super().__init__(target, engine)
        self.peer = Peer(target, epoch=epoch, timeout=timeout)
        self.retries = retries

    def config(self) -> tuple[dict[str, Any], dict[str, Any]]:
        info = self.peer.info()
        return info, {"role": info.get("role"), "epoch": info.get("epoch"), "version": info.get("version")}

    def verify(self, graph_id: str, snapshot_id: str) -> dict[str, Any]:
        answer = self.peer.verify(graph_id, snapshot_id)
        return {"present": answer["present"], "ok": answer["ok"], "data_hash": answer.get("data_hash"),
                "errors": list(answer.get("errors") or [])}

    def refusal(self, role: str) -> Optional[str]:
        if role != "standby":
            return None
        # Only the primary feeds instances: a standby pushing to another standby (at the same
        # epoch, so not fenced) would hand it a second source. Copies to repository targets
        # stay allowed.
        return ("this instance is a standby: only the primary pushes to instances (copy to a repository target, "
                "or switch over first)")

    def conflict_policy(self) -> str:
        policy = self.target.conflict_policy
        if policy != "reject":
            return policy
        # An old primary that became a standby under this one: what only it had is kept as
        # `diverged` snapshots, and this primary's state becomes its head (as Patroni rewinds a
        # returning primary instead of merging).
        try:
            info = self.peer.info(timeout=min(self.peer.timeout, 10.0))
        except BackupError:
            return policy  # unreachable or refusing: the push says so
        if info.get("rewind") and int(info.get("epoch") or 0) <= self.peer.epoch:
            return "source_wins"
        return policy

    def transfer_op(self, graph_id: str, snapshot_ids: Optional[list[str]], dry_run: bool,
                    progress: Optional[ProgressCallback], policy: str, sent: list[tuple[str, str]]) -> Any:
        self.target.tls_context()  # a CA file broken since registration fails this target only
        return self.engine.push_op(self.target.base_url, graph_id, self.target.resolved_api_key(),
                                   self.target.ca_file, self.peer.epoch, snapshot_ids, dry_run, self.retries,
                                   self.peer.timeout, progress, policy, sent)

    def epoch(self) -> Optional[int]:
        try:
            return int(self.peer.info().get("epoch") or 0)
        except (BackupError, ValueError, TypeError):
            return None


__all__ = ["InstanceLink", "RepositoryLink", "TargetLink"]
