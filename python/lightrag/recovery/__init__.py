"""Disaster recovery for LightRAG graph deployments: recovery points across graphs, validation
that knows LightRAG, failover to a standby, drills with measured RTO and RPO, and the role
endpoints a load balancer checks; automatic failover through a lease in an object store
(:class:`LeaseKeeper`) and switchover with nothing lost
(:meth:`DisasterRecoveryManager.aswitchover`).

```python
from lightrag.recovery import DisasterRecoveryManager

dr = DisasterRecoveryManager(manager)            # a lightrag.backup.BackupManager
point = await dr.acreate_recovery_point(description="before the upgrade")
report = await dr.arun_drill(point.checkpoint_id)  # measured RTO, nothing live touched
```

Imports ``lightrag.backup`` and ``lightrag.replication``; neither imports it (only the app
factory, the CLI and the server reach all three).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightrag.backup._lazy import lazy_exports

if TYPE_CHECKING:
    from .disaster_recovery import DisasterRecoveryManager, recovery_manager_for
    from .errors import (
        AlreadyPrimaryError,
        FailoverRunningError,
        LeaseHeldError,
        RecoveryPointNotFoundError,
        SnapshotProtectedError,
        SwitchoverError,
    )
    from .lease import LeaseKeeper, LeaseSettings
    from .health import HealthValidator
    from .points import HealthStatus, Problem, RecoveryPoint
    from .roles import instance_status
    from .scheduler import RecoveryScheduler
    from .smoke import smoke_query

_LAZY = {
    "AlreadyPrimaryError": "errors",
    "DisasterRecoveryManager": "disaster_recovery",
    "FailoverRunningError": "errors",
    "HealthStatus": "points",
    "HealthValidator": "health",
    "LeaseHeldError": "errors",
    "LeaseKeeper": "lease",
    "LeaseSettings": "lease",
    "Problem": "points",
    "RecoveryPoint": "points",
    "RecoveryPointNotFoundError": "errors",
    "RecoveryScheduler": "scheduler",
    "SnapshotProtectedError": "errors",
    "SwitchoverError": "errors",
    "instance_status": "roles",
    "recovery_manager_for": "disaster_recovery",
    "smoke_query": "smoke",
}

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)

__all__ = sorted(_LAZY)
