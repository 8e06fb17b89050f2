"""An instance's status for the role endpoints (``/primary``, ``/standby``), as Patroni's REST
API answers load balancers: its role, epoch and fencing (kept by ``lightrag.backup.instance``)
with what the failover lease says."""

from __future__ import annotations

from typing import Any

from lightrag.backup.instance import fencing_state, instance_epoch, instance_role


def instance_status(catalog: Any, lease: Any = None) -> dict[str, Any]:
    """``{role, epoch, fenced, acting_as, primary}``: ``acting_as`` is ``primary`` only for a
    primary nobody fenced and, with a failover lease (``lease``: the instance's
    :class:`~lightrag.recovery.lease.LeaseKeeper`), that holds the lease now; a fenced primary
    acts as nothing until failover or switchover gives it a higher epoch (``fenced`` says who
    and when), one that could not renew its lease is ``demoted``. ``primary`` names the lease
    holder when known."""
    role, epoch, fenced = instance_role(catalog), instance_epoch(catalog), fencing_state(catalog)
    acting = "fenced" if role == "primary" and fenced is not None else role
    if lease is not None and acting == "primary" and not lease.acting_primary():
        acting = "demoted"
    status = {"role": role, "epoch": epoch, "fenced": fenced, "acting_as": acting,
              "primary": lease.primary() if lease is not None else None}
    if lease is not None:
        status["lease"] = {"holder": status["primary"], "holding": lease.holding(), "location": lease.location}
    return status


__all__ = ["instance_status"]
