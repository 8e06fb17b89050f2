"""``GET /metrics``: what an operator's Prometheus scrapes, in its text format.

The families come from sources (each a function returning :class:`Family` values, read at
scrape time from the catalog and the repository): :func:`backup_families` here, and the
replication and recovery ones their packages add (``lightrag.replication.metrics``,
``lightrag.recovery.metrics``; the app factory wires them). Rendering uses the
``prometheus_client`` library (``pip install 'lightrag-backup[metrics]'``); without it the
route answers 503 saying so. The route sits behind the same auth as the rest, unless
``LIGHTRAG_BACKUP_METRICS_PUBLIC=true``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from fastapi import APIRouter

    from ..manager import BackupManager

logger = logging.getLogger("lightrag.backup.metrics")

#: Every metric name starts with this.
PREFIX = "lightrag_"


@dataclass
class Family:
    """One metric family: ``kind`` is ``gauge`` or ``counter`` (a counter's name ends in
    ``_total``); ``samples`` are (label values in ``labels`` order, value)."""

    name: str
    help: str
    kind: str = "gauge"
    labels: tuple[str, ...] = ()
    samples: list[tuple[tuple[str, ...], float]] = field(default_factory=list)

    def add(self, value: Optional[float], *labels: str) -> None:
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            self.samples.append((tuple(labels), float(value)))


Source = Callable[[], list[Family]]


def _seconds(moment: Any) -> Optional[float]:
    if isinstance(moment, datetime):
        return moment.timestamp()
    if isinstance(moment, str) and moment:
        try:
            return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def backup_families(manager: "BackupManager") -> list[Family]:
    """Per graph: snapshots, the newest snapshot's time, its engine time and new bytes, logical
    and stored bytes, the dedup ratio, verify failures; the repository's size. In a server,
    kept while nothing they come from changed (a scrape reads neither the store nor, at
    10,000 snapshots, the catalog's every row)."""
    return manager.viewed(("metrics", "backup"), lambda: _backup_families(manager), shared=True)


def _backup_families(manager: "BackupManager") -> list[Family]:
    per_graph = {
        "snapshots": Family(f"{PREFIX}backup_snapshots", "Snapshots kept of the graph", labels=("graph",)),
        "last": Family(f"{PREFIX}backup_last_success_timestamp_seconds",
                       "When the graph's newest snapshot was taken (Unix time)", labels=("graph",)),
        "duration": Family(f"{PREFIX}backup_last_duration_seconds",
                           "How long the newest snapshot taken by this instance took", labels=("graph",)),
        "new": Family(f"{PREFIX}backup_last_new_bytes", "Bytes the newest snapshot added to the repository",
                      labels=("graph",)),
        "logical": Family(f"{PREFIX}backup_logical_bytes", "Bytes of every snapshot of the graph before dedup",
                          labels=("graph",)),
        "stored": Family(f"{PREFIX}backup_stored_bytes", "Bytes the graph's snapshots take in the repository",
                         labels=("graph",)),
        "dedup": Family(f"{PREFIX}backup_dedup_ratio", "Logical bytes per unique byte of the graph's snapshots",
                        labels=("graph",)),
        "verify": Family(f"{PREFIX}backup_verify_failures_total", "Verifications of the graph that found damage",
                         kind="counter", labels=("graph",)),
    }
    stats = manager.get_backup_stats()
    for graph_id, graph in stats["graphs"].items():
        per_graph["snapshots"].add(graph.get("snapshot_count"), graph_id)
        per_graph["logical"].add(graph.get("logical_bytes"), graph_id)
        per_graph["stored"].add(graph.get("stored_bytes"), graph_id)
        per_graph["dedup"].add(graph.get("dedup_ratio"), graph_id)
        per_graph["verify"].add(manager.catalog.verify_failures(graph_id), graph_id)
        # Every committed snapshot but safety ones (a later verify that finds damage changes its
        # status; that is the verify failures' metric, not this one).
        rows = [r for r in manager.catalog.snapshots(graph_id) if "pre-restore" not in (r["metadata"].get("tags") or [])]
        if rows:
            newest = max(rows, key=lambda r: r["timestamp"])
            per_graph["last"].add(_seconds(newest["timestamp"]), graph_id)
            per_graph["new"].add(newest["metadata"].get("stored_bytes"), graph_id)
            timed = [r for r in rows if r["metadata"].get("duration_ms") is not None]
            if timed:
                per_graph["duration"].add(max(timed, key=lambda r: r["timestamp"])["metadata"]["duration_ms"] / 1000,
                                          graph_id)
    repository = Family(f"{PREFIX}backup_repository_bytes", "Size of every pack in the repository")
    repository.add(stats["overall"].get("repository_bytes"))
    return [*per_graph.values(), repository]


class MetricsRegistry:
    """The sources of one server's metrics."""

    def __init__(self) -> None:
        self.sources: list[tuple[str, Source]] = []

    def add_source(self, name: str, source: Source) -> None:
        self.sources.append((name, source))

    def collect(self) -> list[Family]:
        families = []
        for name, source in self.sources:
            try:
                families.extend(source())
            except Exception as error:  # noqa: BLE001 - one failing source never hides the others
                logger.warning("metrics source %s failed: %s", name, error)
                failed = Family(f"{PREFIX}metrics_source_up", "Whether a metrics source answered", labels=("source",))
                failed.add(0, name)
                families.append(failed)
        return families

    def render(self) -> bytes:
        """The Prometheus text format (``prometheus_client``'s rendering)."""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        families = self.collect()

        class Collector:
            def collect(self) -> Any:
                for family in families:
                    if family.kind == "counter":
                        metric: Any = CounterMetricFamily(family.name.removesuffix("_total"), family.help,
                                                          labels=list(family.labels))
                    else:
                        metric = GaugeMetricFamily(family.name, family.help, labels=list(family.labels))
                    for labels, value in family.samples:
                        metric.add_metric(list(labels), value)
                    yield metric

        registry = CollectorRegistry(auto_describe=False)
        registry.register(Collector())  # type: ignore[arg-type]
        return bytes(generate_latest(registry))


def metrics_router(registry: MetricsRegistry, dependencies: list[Any]) -> "APIRouter":
    """``GET /metrics``, behind ``dependencies`` unless ``LIGHTRAG_BACKUP_METRICS_PUBLIC=true``."""
    import asyncio

    from fastapi import APIRouter
    from fastapi.responses import Response

    from ..environment import env_flag
    from .errors import HTTPError

    public = env_flag("LIGHTRAG_BACKUP_METRICS_PUBLIC")
    router = APIRouter(tags=["metrics"], dependencies=[] if public else dependencies)

    @router.get("/metrics", summary="Prometheus metrics: backups, replication, recovery", response_class=Response)
    async def metrics() -> Any:
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            raise HTTPError(503, "metrics_unavailable", "the metrics need the prometheus_client library: "
                                                        "pip install 'lightrag-backup[metrics]'") from None
        body = await asyncio.to_thread(registry.render)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    return router


__all__ = ["Family", "MetricsRegistry", "backup_families", "metrics_router"]
