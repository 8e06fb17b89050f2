"""Switchover: a planned change of primary with nothing lost (RPO 0), and failback the same way.

On the primary (:func:`aswitchover`, ``POST /recovery/switchover {candidate}``):

1. **Writes stop**: LightRAG's write routes answer 503 ``switchover_in_progress`` (retry
   later; the new primary takes them).
2. **The pipelines drain**: every live instance finishes what it accepted (no document left
   pending, parsing or processing, the pipeline idle); a drain that outlasts
   ``LIGHTRAG_RECOVERY_SWITCHOVER_DRAIN_SECONDS`` (300) aborts the switchover.
3. **A final recovery point** of every graph, taken together, is **pushed to the candidate**
   and confirmed there (data hashes), the point with it.
4. **The lease is handed over** (with a failover lease): released for the candidate only; this
   instance becomes a standby at once.
5. **The candidate promotes itself** (``POST /recovery/promote`` on it): takes the handed-over
   lease with epoch + 1, makes the final point its live state (warm when its applier already
   did) and accepts writes. Its first pushes bring this instance (now its standby) to its epoch.

Any step that fails before the candidate promoted rolls back: this instance takes the lease
back, is the primary again and accepts writes; the error says what happened.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from lightrag.backup.environment import env_number
from lightrag.backup.errors import BackupError, InvalidInputError
from lightrag.backup.instance import instance_epoch, instance_role, set_instance_epoch, set_instance_role

from .errors import AlreadyPrimaryError, SwitchoverError
from .points import promoted

#: The functions take the instance's DisasterRecoveryManager (typed Any: that module calls
#: this one, and the house has no import circles).
Recovery = Any

logger = logging.getLogger("lightrag.recovery.switchover")

#: Document states that mean LightRAG accepted a document and has not finished with it.
_IN_FLIGHT = ("pending", "parsing", "analyzing", "processing", "preprocessed")


def _iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


async def _in_flight(rag: Any) -> str:
    """What a live instance still has to finish ("" when nothing)."""
    from lightrag.exceptions import PipelineNotInitializedError
    from lightrag.kg.shared_storage import get_namespace_data

    try:
        status = await get_namespace_data("pipeline_status", workspace=getattr(rag, "workspace", None))
        if status.get("busy") or status.get("scanning") or status.get("pending_enqueues"):
            return "the pipeline is running"
    except PipelineNotInitializedError:
        pass
    counts = await rag.doc_status.get_status_counts()
    waiting = {state: counts.get(state, 0) for state in _IN_FLIGHT if counts.get(state, 0)}
    return ", ".join(f"{n} {state}" for state, n in waiting.items())


async def drain(recovery: Recovery, timeout: float) -> float:
    """Wait until every live instance finished every document it accepted; returns seconds."""
    began = time.monotonic()
    rags = [b.rag for b in (recovery.manager.get_graph(g) for g in recovery.manager.graph_ids) if b.rag is not None]
    while True:
        busy = [f"{r.workspace or 'default'}: {w}" for r in rags for w in [await _in_flight(r)] if w]
        if recovery.writes_in_flight:
            busy.append(f"{recovery.writes_in_flight} write request(s) being answered")
        if not busy:
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            raise SwitchoverError(f"the pipelines did not drain within {timeout:g} s ({'; '.join(busy)}): "
                                  "switchover aborted, this instance stays the primary")
        await asyncio.sleep(0.1)


async def aswitchover(recovery: Recovery, candidate: str) -> dict[str, Any]:
    """Hand the primary role to ``candidate`` (the name or id of an instance replication
    target); see the module documentation. Returns the report (also in the catalog)."""
    from .roles import instance_status

    replication = recovery.replication
    try:
        target = replication.get_target(candidate)
    except KeyError:
        raise InvalidInputError(f"no replication target {candidate!r}: add the candidate as an instance target "
                                "first (POST /replication/targets)") from None
    if target.kind != "instance" or not target.enabled:
        raise InvalidInputError(f"target {target.name!r} is not an enabled instance target: a switchover hands the "
                                "primary role to another lightrag-backup instance")
    status = await asyncio.to_thread(instance_status, recovery.catalog, recovery.lease)
    if status["acting_as"] != "primary":
        raise SwitchoverError(f"this instance is not acting as the primary ({status['acting_as']}): only the "
                              "primary switches over")
    try:
        info = await asyncio.to_thread(replication.peer(target).info, timeout=10.0)
    except BackupError as error:
        raise SwitchoverError(f"the candidate {target.name} cannot be reached: {error}") from None
    if info.get("role") != "standby":
        raise SwitchoverError(f"the candidate {target.name} is not a standby (it says {info.get('role')!r})")
    candidate_name = str(info.get("instance") or target.name)
    drain_timeout = env_number("LIGHTRAG_RECOVERY_SWITCHOVER_DRAIN_SECONDS", 300.0)

    started, clock = _iso(), time.perf_counter()
    report: dict[str, Any] = {"kind": "switchover", "event_id": str(uuid.uuid4()), "started_at": started,
                              "candidate": target.name, "candidate_instance": candidate_name, "steps": []}

    def step(name: str, began: float, **detail: Any) -> None:
        entry = {"step": name, "took_ms": round((time.perf_counter() - began) * 1000, 1), **detail}
        report["steps"].append(entry)
        logger.warning("switchover to %s: %s (%.0f ms)", target.name, name, entry["took_ms"])

    handed_over = False
    recovery.writes_frozen = f"a switchover to {target.name} is in progress"
    try:
        began = time.perf_counter()
        report["drain_seconds"] = round(await drain(recovery, drain_timeout), 3)
        step("drained", began)

        began = time.perf_counter()
        point = await recovery.acreate_recovery_point(None, f"switchover to {target.name}", "switchover")
        report["checkpoint_id"] = point.checkpoint_id
        step("final recovery point", began, checkpoint_id=point.checkpoint_id, graphs=point.graphs)

        began = time.perf_counter()
        for graph_id, snapshot_id in sorted(point.snapshots.items()):
            pushed = (await replication.areplicate_graph(graph_id, targets=[target.target_id]))[target.name]
            if pushed["status"] != "completed":
                raise SwitchoverError(f"pushing {graph_id} to {target.name} failed: {pushed['error']}")
        step("pushed", began)

        began = time.perf_counter()
        epoch = instance_epoch(recovery.catalog)
        if recovery.lease is not None:
            await recovery.lease.ahand_over(candidate_name)
        await asyncio.to_thread(set_instance_role, recovery.catalog, "standby")
        handed_over = True
        step("handed over", began, lease=recovery.lease is not None)

        began = time.perf_counter()
        try:
            promoted = await asyncio.to_thread(
                replication.peer(target).promote,
                {"checkpoint_id": point.checkpoint_id, "from_epoch": epoch, "from": target.name}, timeout=900.0)
        except BackupError as error:
            raise SwitchoverError(f"the candidate {target.name} did not promote itself: {error}") from None
        if not promoted.get("ok"):
            raise SwitchoverError(f"the candidate {target.name} could not make the final point its state: "
                                  f"{json.dumps(promoted)[:2000]}")
        new_epoch = int(promoted.get("epoch", {}).get("after") or epoch + 1)
        await asyncio.to_thread(set_instance_epoch, recovery.catalog, new_epoch)
        step("candidate promoted", began, epoch=new_epoch, candidate_rto_seconds=promoted.get("rto_seconds"))
        report.update(ok=True, epoch={"before": epoch, "after": new_epoch})
    except BaseException as error:
        report.update(ok=False, error=f"{type(error).__name__}: {error}")
        if handed_over:
            await _take_back(recovery, report)
        raise
    finally:
        recovery.writes_frozen = None
        report.update(finished_at=_iso(), took_seconds=round(time.perf_counter() - clock, 3))
        await asyncio.to_thread(recovery.keep_report, dict(report, rto_seconds=report["took_seconds"],
                                                             rpo_seconds=0.0 if report.get("ok") else None))
    logger.warning("switchover to %s done in %.2f s: it is the primary (epoch %s), this instance its standby",
                   target.name, report["took_seconds"], report["epoch"]["after"])
    return report


async def _take_back(recovery: Recovery, report: dict[str, Any]) -> None:
    """The candidate did not promote: be the primary again (the lease taken back)."""
    try:
        if recovery.lease is not None:
            await recovery.lease.atake_back()
        await asyncio.to_thread(set_instance_role, recovery.catalog, "primary")
        report["rolled_back"] = True
        logger.error("switchover rolled back: this instance is the primary again")
    except BackupError as error:
        report["rolled_back"] = False
        logger.error("switchover could not roll back (%s): check /recovery/status on both instances", error)


async def apromote(recovery: Recovery, checkpoint_id: str, from_epoch: int) -> dict[str, Any]:
    """The candidate's half of a switchover: take the handed-over lease (with a lease), fail
    over to the final point with an epoch above ``from_epoch``, act as the primary."""
    if await asyncio.to_thread(instance_role, recovery.catalog) != "standby":
        raise AlreadyPrimaryError("this instance is not a standby: a switchover promotes a standby")
    await recovery.aget_recovery_point(checkpoint_id)
    if recovery.lease is not None:
        epoch = await recovery.lease.atake_handover()
        try:
            report = await recovery.afailover(checkpoint_id, epoch=max(epoch, int(from_epoch) + 1))
        except BaseException:
            await recovery.lease.afailover_done(False)
            raise
        await recovery.lease.afailover_done(promoted(report))
        return report
    own = await asyncio.to_thread(instance_epoch, recovery.catalog)
    return await recovery.afailover(checkpoint_id, epoch=max(own, int(from_epoch)) + 1)


__all__ = ["apromote", "aswitchover", "drain"]
