"""What an instance is, kept in its catalog: its role (primary or standby), its fencing epoch,
whether it learnt that another instance took over (fenced), its name, and whether a new
primary may re-issue what only it had (rewind). One module, below backup, replication and
recovery, which all read it: the push routes refuse by it, failover and switchover raise the
epoch, and the role endpoints answer from it (``lightrag.recovery.roles``)."""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from .errors import InvalidInputError


def instance_role(catalog: Any) -> str:
    """``primary`` or ``standby``: the catalog's, else ``LIGHTRAG_RECOVERY_ROLE`` (default
    primary), kept in the catalog from then on."""
    role = catalog.state("role")
    if role is None:
        role = os.environ.get("LIGHTRAG_RECOVERY_ROLE", "primary").strip().lower() or "primary"
        if role not in ("primary", "standby"):
            raise InvalidInputError(f"LIGHTRAG_RECOVERY_ROLE={role!r}: use primary or standby")
        catalog.set_state("role", role)
    return role


def set_instance_role(catalog: Any, role: str) -> None:
    if role not in ("primary", "standby"):
        raise InvalidInputError(f"role {role!r}: use primary or standby")
    catalog.set_state("role", role)
    if role == "primary":
        catalog.set_state("rewind_allowed", "")  # a primary again: nothing of its own is re-issued


def rewind_allowed(catalog: Any) -> Optional[dict[str, Any]]:
    """Set on an old primary that found a higher epoch holding the lease and became a standby:
    the new primary's pushes may re-issue what only it had as ``diverged`` snapshots (kept,
    never deleted) instead of being refused as a conflict. ``{epoch, by, at}`` or ``None``."""
    raw = catalog.state("rewind_allowed")
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return None
    return value if isinstance(value, dict) and instance_role(catalog) == "standby" else None


def instance_name(catalog: Any) -> str:
    """This instance's name (in the failover lease, and told to the instances that push here):
    ``LIGHTRAG_RECOVERY_INSTANCE_NAME``, else one made once (host name and a random suffix)
    and kept in the catalog."""
    import socket
    import uuid

    configured = os.environ.get("LIGHTRAG_RECOVERY_INSTANCE_NAME", "").strip()
    if configured:
        return configured
    name = catalog.state("instance_name")
    if not name:
        name = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        catalog.set_state("instance_name", name)
    return str(name)


def instance_epoch(catalog: Any) -> int:
    return int(catalog.state("epoch") or 0)


def set_instance_epoch(catalog: Any, epoch: int) -> int:
    """Raise this instance's fencing epoch to ``epoch`` (an epoch never goes down: a lower
    one changes nothing). Returns the epoch now."""
    if not 0 <= int(epoch) <= 2**63 - 1:
        raise InvalidInputError(f"an epoch is an integer from 0 to {2**63 - 1}")
    current = instance_epoch(catalog)
    if int(epoch) > current:
        catalog.set_state("epoch", str(int(epoch)))
        return int(epoch)
    return current


def fencing_state(catalog: Any) -> Optional[dict[str, Any]]:
    """How this instance learnt it was failed over (``by``, ``epoch``, ``at``, ``message``),
    while that epoch is above its own; ``None`` for an instance nobody fenced, or one that
    failover or switchover has since given a higher epoch."""
    raw = catalog.state("fenced")
    try:
        fenced = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(fenced, dict) or int(fenced.get("epoch") or 0) <= instance_epoch(catalog):
        return None
    return fenced


__all__ = ["fencing_state", "instance_epoch", "instance_name", "instance_role", "rewind_allowed",
           "set_instance_epoch", "set_instance_role"]
