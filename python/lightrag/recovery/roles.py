"""What an instance is: its role, its fencing epoch, and whether it learnt that another
instance took over (it was fenced). The role endpoints (``/primary``, ``/standby``) answer
from this, as Patroni's REST API does for load balancers."""

from __future__ import annotations

from typing import Any

from lightrag.replication.graph_replication import fencing_state, instance_epoch, instance_role


def instance_status(catalog: Any) -> dict[str, Any]:
    """``{role, epoch, fenced, acting_as}``: ``acting_as`` is ``primary`` only for a primary
    nobody fenced; a fenced primary acts as nothing until failover or switchover gives it a
    higher epoch (``fenced`` says who and when)."""
    role, epoch, fenced = instance_role(catalog), instance_epoch(catalog), fencing_state(catalog)
    acting = "fenced" if role == "primary" and fenced is not None else role
    return {"role": role, "epoch": epoch, "fenced": fenced, "acting_as": acting}


__all__ = ["instance_status"]
