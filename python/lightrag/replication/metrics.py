"""Replication's metric families for ``GET /metrics`` (see ``lightrag.backup.http.metrics``):
per target and graph, lag, bytes sent, successes and failures, from the catalog's logs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightrag.backup.http.metrics import PREFIX, Family

if TYPE_CHECKING:
    from .graph_replication import ReplicationManager


def replication_families(replication: "ReplicationManager") -> list[Family]:
    labels = ("target", "graph")
    lag = Family(f"{PREFIX}replication_lag_seconds",
                 "How far the target's newest confirmed snapshot is behind the graph's newest", labels=labels)
    sent = Family(f"{PREFIX}replication_bytes_sent_total", "Bytes pushed or copied to the target", kind="counter",
                  labels=labels)
    ok = Family(f"{PREFIX}replication_successes_total", "Replications to the target that completed", kind="counter",
                labels=labels)
    failed = Family(f"{PREFIX}replication_failures_total", "Replication attempts to the target that failed",
                    kind="counter", labels=labels)
    for target, entry in replication.get_replication_metrics().items():
        for graph_id, graph in entry["graphs"].items():
            lag.add(graph.get("lag_seconds"), target, graph_id)
            sent.add(graph.get("bytes_sent"), target, graph_id)
            ok.add(graph.get("successes"), target, graph_id)
            failed.add(graph.get("failures"), target, graph_id)
    return [lag, sent, ok, failed]


__all__ = ["replication_families"]
