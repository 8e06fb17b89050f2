"""Recovery's metric families for ``GET /metrics`` (see ``lightrag.backup.http.metrics``): the
role this instance acts as, its epoch, whether it holds the failover lease, and RPO now per
graph (as ``/recovery/status`` computes it)."""

from __future__ import annotations

from typing import Any

from lightrag.backup.http.metrics import PREFIX, Family


def recovery_families(recovery: Any) -> list[Family]:
    """``recovery``: the instance's DisasterRecoveryManager."""
    status = recovery.get_recovery_status()
    role = Family(f"{PREFIX}recovery_role", "1 for the role this instance acts as (primary, standby, demoted, "
                                            "fenced), 0 for the others", labels=("role",))
    for name in ("primary", "standby", "demoted", "fenced"):
        role.add(1.0 if status["acting_as"] == name else 0.0, name)
    epoch = Family(f"{PREFIX}recovery_epoch", "This instance's fencing epoch")
    epoch.add(status["epoch"])
    rpo = Family(f"{PREFIX}recovery_rpo_seconds", "What a failover now would lose at most, per graph (+Inf: it has "
                                                  "standbys but none confirmed any snapshot of it)", labels=("graph",))
    for graph_id, graph in status["graphs"].items():
        seconds = graph.get("rpo_seconds")
        if seconds is None and graph.get("standbys") and graph.get("newest_snapshot"):
            seconds = float("inf")
        rpo.add(seconds, graph_id)
    families = [role, epoch, rpo]
    lease = status.get("lease") or {}
    if lease.get("configured"):
        holding = Family(f"{PREFIX}recovery_lease_holding", "1 while this instance holds the failover lease")
        holding.add(1.0 if lease.get("holding") else 0.0)
        families.append(holding)
    return families


__all__ = ["recovery_families"]
