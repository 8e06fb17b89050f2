"""The values of disaster recovery: a recovery point, and what validation found.

:class:`RecoveryPoint` carries the Phase 5A design's fields (``checkpoint_id, timestamp, graphs,
validated, description``) plus ``created_by`` and the snapshot of each graph; the point itself
lives in the repository (the engine's ``recovery/<id>/point``), so every machine that knows the
repository sees the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional


def _time(text: Optional[str]) -> Optional[datetime]:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class RecoveryPoint:
    """One snapshot per graph, taken together."""

    checkpoint_id: str
    timestamp: datetime
    #: The graph ids it covers, sorted.
    graphs: list[str]
    #: Graph id -> the snapshot id it names.
    snapshots: dict[str, str]
    validated: bool = False
    description: Optional[str] = None
    created_by: Optional[str] = None
    hostname: str = ""
    #: How it was taken: ``together_pause_ms`` (the live instances' pause), ``captured``
    #: (graph -> live / offline / unchanged), ...
    metadata: dict[str, Any] = field(default_factory=dict)
    validated_at: Optional[datetime] = None
    #: What its newest validation found per graph (``{status, problems}``), if validated.
    validation: Optional[dict[str, Any]] = None
    #: Graph id -> ``{data_hash, time}`` of its snapshot.
    snapshot_details: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Graphs the point named that were shredded since: no longer in ``graphs`` or ``snapshots``
    #: (nothing of them can be restored or validated).
    shredded: list[str] = field(default_factory=list)

    @classmethod
    def _from_native(cls, data: dict[str, Any]) -> "RecoveryPoint":
        timestamp = _time(data["timestamp"])
        assert timestamp is not None
        return cls(
            checkpoint_id=data["checkpoint_id"],
            timestamp=timestamp,
            graphs=list(data["graphs"]),
            snapshots=dict(data["snapshots"]),
            validated=bool(data["validated"]),
            description=data.get("description"),
            created_by=data.get("created_by"),
            hostname=data.get("hostname", ""),
            metadata=dict(data.get("metadata") or {}),
            validated_at=_time(data.get("validated_at")),
            validation=data.get("validation"),
            snapshot_details=dict(data.get("snapshot_details") or {}),
            shredded=list(data.get("shredded") or []),
        )

    def age_seconds(self, now: Optional[datetime] = None) -> float:
        return ((now or datetime.now(timezone.utc)) - self.timestamp).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """The REST API's shape (the Phase 5A design's column names)."""
        return {
            "checkpoint_id": self.checkpoint_id,
            "timestamp": self.timestamp.isoformat(),
            "graphs": list(self.graphs),
            "snapshots": dict(self.snapshots),
            "validated": self.validated,
            "validated_at": self.validated_at.isoformat() if self.validated_at else None,
            "description": self.description,
            "created_by": self.created_by,
            "hostname": self.hostname,
            "metadata": dict(self.metadata),
            "validation": self.validation,
            "shredded": list(self.shredded),
        }


@dataclass(frozen=True)
class Problem:
    """One thing validation found wrong, in words an operator understands."""

    #: ``degraded`` (LightRAG runs, but on incomplete data or stale backups) or ``failed``.
    severity: str
    #: The file it was found in (relative to the graph folder), or ``backups`` /
    #: ``replication`` for freshness.
    file: str
    #: ``file``, ``entity``, ``relation``, ``chunk``, ``document``, ``vector``, ``snapshot``,
    #: ``standby``.
    object_kind: str
    object: Optional[str]
    message: str

    @classmethod
    def _from_native(cls, data: dict[str, Any]) -> "Problem":
        return cls(data["severity"], data["file"], data["object_kind"], data.get("object"), data["message"])

    def to_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "file": self.file, "object_kind": self.object_kind,
                "object": self.object, "message": self.message}


HEALTHY, DEGRADED, FAILED = "healthy", "degraded", "failed"
_ORDER = {HEALTHY: 0, DEGRADED: 1, FAILED: 2}


def worst(statuses: "list[str]") -> str:
    """The worst of several statuses (``healthy`` for none)."""
    return max(statuses, key=_ORDER.__getitem__, default=HEALTHY)


@dataclass
class HealthStatus:
    """What validating one graph (live, a folder, or a snapshot) found."""

    graph_id: str
    #: ``healthy``, ``degraded`` or ``failed``.
    status: str
    problems: list[Problem] = field(default_factory=list)
    #: What the graph holds: entities, relations, chunks, documents, embedding_dim.
    counts: dict[str, int] = field(default_factory=dict)
    #: ``live`` (a running instance, captured consistently), ``folder``, or ``snapshot <id>``.
    source: str = "folder"
    checked_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    #: Problems found beyond the ones listed.
    omitted_problems: int = 0
    #: The model-free smoke query of a folder (``{ok, detail, probes}``), when it ran.
    smoke: Optional[dict[str, Any]] = None

    @property
    def healthy(self) -> bool:
        return self.status == HEALTHY

    def add(self, problem: Problem) -> None:
        self.problems.append(problem)
        self.status = worst([self.status, problem.severity])

    def to_dict(self) -> dict[str, Any]:
        return {
            "graph_id": self.graph_id,
            "status": self.status,
            "problems": [p.to_dict() for p in self.problems],
            "omitted_problems": self.omitted_problems,
            "counts": dict(self.counts),
            "source": self.source,
            "checked_at": self.checked_at.isoformat(),
            "smoke": self.smoke,
        }

    def summary(self) -> str:
        """One line: the status and the first problem."""
        if not self.problems:
            return self.status
        more = len(self.problems) - 1 + self.omitted_problems
        return f"{self.status}: {self.problems[0].message}" + (f" (and {more} more)" if more else "")


__all__ = ["DEGRADED", "FAILED", "HEALTHY", "HealthStatus", "Problem", "RecoveryPoint", "RecoveryStatusReport", "promoted",
           "worst"]


def promoted(report: Optional[dict[str, Any]]) -> bool:
    """Whether a failover report says the instance became the primary (every graph restored,
    the epoch raised), whatever its validation found."""
    return report is not None and bool(report.get("epoch"))


class RecoveryStatusReport(dict):  # type: ignore[type-arg]
    """``get_recovery_status()``'s dict, rendered in a notebook as the instance's line and a
    table per graph."""

    def _repr_html_(self) -> str:
        from lightrag.backup.display import html_table

        def seconds(value: Any) -> str:
            return "-" if value is None else f"{value:.1f} s"

        lease = self.get("lease") or {}
        head = html_table(
            ("acting as", "epoch", "status", "RPO now", "RTO (last drill)", "recovery points", "lease holder"),
            [(self.get("acting_as"), self.get("epoch"), self.get("status"), seconds(self.get("rpo_seconds")),
              seconds(self.get("rto_seconds")), self.get("recovery_points"),
              lease.get("holder") if lease.get("configured") else "no lease")])
        rows = []
        for graph_id, graph in (self.get("graphs") or {}).items():
            newest = graph.get("newest_snapshot") or {}
            health = graph.get("last_health_check") or {}
            standbys = ", ".join(f"{n} ({seconds(s.get('lag_seconds'))})" for n, s in (graph.get("standbys") or {}).items())
            rows.append((graph_id, (newest.get("snapshot_id") or "-")[:8], seconds(graph.get("rpo_seconds")),
                         standbys or "-", health.get("status", "-")))
        return head + html_table(("graph", "newest snapshot", "RPO", "standbys (lag)", "health"), rows)
