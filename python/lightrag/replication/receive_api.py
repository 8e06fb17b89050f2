"""The receiving side of replication: the ``/replication/receive/*`` routes a primary pushes
to on a standby (mirroring the engine's ``replication/receive.rs``), behind the fencing check,
with their bounds (:class:`ReceiveGate`, :data:`MAX_EPOCH`). The operator's routes are in
:mod:`.api`, which mounts these."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from lightrag.backup.errors import IntegrityError, SnapshotNotFoundError
from lightrag.backup.http.errors import HTTPError
from lightrag.backup.instance import (
    fencing_state,
    instance_epoch,
    instance_name,
    instance_role,
    rewind_allowed,
    set_instance_epoch,
)
from lightrag.backup.types import GRAPH_ID_PATTERN, SNAPSHOT_ID_PATTERN

from .peer import ROUTES

if TYPE_CHECKING:
    from lightrag.backup.manager import BackupManager

    from .apply import StandbyApplier

log = logging.getLogger("lightrag.replication")

GraphId = PathParam(..., pattern=GRAPH_ID_PATTERN, max_length=128, description="the graph's id")


class WantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chunks: list[str] = Field(..., max_length=10_000)


#: The largest fencing epoch: the catalog keeps it as a SQLite integer (signed 64 bits), the
#: engine as u64. A peer cannot push an epoch past it (and so fence every normal primary).
MAX_EPOCH = 2**63 - 1


def parse_epoch(raw: str) -> int:
    """An ``X-Source-Epoch`` header as an epoch: decimal digits only, within ``MAX_EPOCH``;
    anything else is a 422 and nothing is recorded."""
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > MAX_EPOCH:
        raise HTTPError(422, "invalid_input", f"X-Source-Epoch must be an integer from 0 to {MAX_EPOCH}")
    return int(text)


class ReceiveGate:
    """Bounds the receive work a standby does at once, whoever pushes: ``running`` requests
    work (each reads its body only once its turn comes), ``waiting`` more wait for a turn, and
    any beyond that are refused with 503 and ``Retry-After`` (a pushing primary retries).

    Memory: a request holds its body (at most ``MAX_PUSH_BYTES``, 64 MiB) and what it inflates
    (a chunk at most the repository's largest chunk, 1 MiB; a manifest or recovery point at most
    256 times its body plus 1 MiB, and never over 256 MiB): with two at work, the standby's
    receive side stays within a few hundred MiB under any flood of pushes, and within tens of
    MiB for real ones (packs of 16 MiB, manifests of a few MiB)."""

    def __init__(self, running: int = 2, waiting: int = 16) -> None:
        self._slots = asyncio.Semaphore(running)
        self._limit = running + waiting
        self._admitted = 0

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if self._admitted >= self._limit:
            raise HTTPError(503, "busy", "this standby is receiving as much as it takes at once; retry shortly",
                            headers={"Retry-After": "1"})
        self._admitted += 1
        try:
            async with self._slots:
                yield
        finally:
            self._admitted -= 1


def create_receive_router(manager: "BackupManager", applier: "StandbyApplier") -> APIRouter:
    """The ``/receive`` routes over ``manager``'s repository and catalog; what a standby
    commits is handed to ``applier``. ``/receive/info`` answers anyone with the API key; every
    other route first refuses a push from a lower epoch, then one to a primary."""

    async def fencing(request: Request) -> None:
        """Refuse a push from a lower epoch (whatever this instance's role), then one to a
        primary: a misconfigured pair never writes into a live graph's repository."""
        source_epoch = parse_epoch(request.headers.get("x-source-epoch", "0"))
        own = instance_epoch(manager.catalog)
        if source_epoch < own:
            raise HTTPError(409, "fenced", f"this instance has epoch {own}, the push comes from epoch {source_epoch}: "
                                           "the source is no longer the primary", epoch=own)
        if instance_role(manager.catalog) != "standby":
            raise HTTPError(409, "target_is_primary", "this instance is a primary: it takes no pushes (set it up as "
                                                      "a standby: LIGHTRAG_RECOVERY_ROLE=standby or --role standby)")
        if source_epoch > own:
            # A primary with a higher epoch (a failover happened): this standby follows it,
            # and from now on refuses the primary it replaced.
            await asyncio.to_thread(set_instance_epoch, manager.catalog, source_epoch)
            log.warning("replication: a primary with epoch %d pushes here (this standby had %d): following it, "
                        "pushes from lower epochs are refused from now on", source_epoch, own)

    # Mounted under the operator's /replication router; the paths are the engine's (peer.ROUTES).
    outer = APIRouter(prefix=ROUTES["receive"].removeprefix("/replication"))
    receive = APIRouter(dependencies=[Depends(fencing)])

    @outer.get(ROUTES["info"], summary="What this instance is (for a primary about to push)")
    async def receive_info() -> dict[str, Any]:
        config = manager.storage.config
        from lightrag.backup import __version__

        return {"format_version": config["format_version"], "chunker": config["chunker"],
                "matrix_chunker": config["matrix_chunker"],
                "matrix_rows_per_chunk": config.get("matrix_rows_per_chunk", 0),
                "repository_id": config["repository_id"],
                "key_fingerprint": config.get("key_fingerprint"),
                "role": instance_role(manager.catalog), "epoch": instance_epoch(manager.catalog),
                "fenced": fencing_state(manager.catalog), "version": __version__,
                "instance": instance_name(manager.catalog), "rewind": rewind_allowed(manager.catalog) is not None}

    @receive.get(ROUTES["snapshots"], summary="The snapshots this instance has of a graph")
    async def receive_list(graph_id: str = GraphId) -> dict[str, Any]:
        import json

        # id, time, tags and data hash of each: what the source plans a push (and its
        # conflict check) with.
        return dict(json.loads(await manager.storage.engine.receive_listing_op(graph_id).start()))

    @receive.post(ROUTES["want"], summary="Which of these chunks this instance lacks")
    async def receive_want(body: WantRequest, graph_id: str = GraphId) -> dict[str, Any]:
        import json

        return dict(json.loads(await manager.storage.engine.missing_chunks_op(body.chunks).start()))

    # Packs, manifests and recovery points are taken two at a time (one per core checking
    # chunks), each body read only once its turn comes: a source pushing several in flight
    # waits on TCP, and what the standby holds stays bounded however many arrive (see
    # ReceiveGate).
    gate = ReceiveGate()

    async def received(request: Request, what: str, operation: Callable[[bytes], Any]) -> dict[str, Any]:
        """A pushed object, its body read once its turn comes, handed to the engine's
        ``operation``; an empty or damaged one is the sender's fault (422), not ours."""
        import json

        async with gate.turn():
            data = await request.body()
            if not data:
                raise HTTPError(422, "invalid_input", f"{what} is sent as the request body")
            try:
                return dict(json.loads(await operation(data).start()))
            except IntegrityError as error:
                raise HTTPError(422, "integrity", str(error)) from None

    @receive.post(ROUTES["packs"], summary="A pack of chunks: every one is checked before any is stored")
    async def receive_pack(request: Request) -> dict[str, Any]:
        return await received(request, "a pack", manager.storage.engine.receive_pack_op)

    @receive.post(ROUTES["graph_key"], summary="A graph's own key, before its chunks")
    async def receive_graph_key(request: Request, graph_id: str = GraphId) -> dict[str, Any]:
        import json

        data = await request.body()
        if not data or len(data) > 1 << 16:
            raise HTTPError(422, "invalid_input", "a graph key object (at most 64 KiB) is sent as the request body")
        return dict(json.loads(await manager.storage.engine.receive_graph_key_op(graph_id, data).start()))

    @receive.post(ROUTES["shred"], summary="A shred of a graph: its key and snapshots are deleted here")
    async def receive_shred(request: Request, graph_id: str = GraphId) -> dict[str, Any]:
        import json

        data = await request.body()
        if not data or len(data) > 1 << 16:
            raise HTTPError(422, "invalid_input", "a shred record (at most 64 KiB) is sent as the request body")
        async with manager.locks.wait_hold(graph_id, "shred"):
            result = dict(json.loads(await manager.storage.engine.receive_shred_op(graph_id, data).start()))
        if result["snapshots_deleted"]:
            manager.catalog.forget_snapshots(list(result["snapshots_deleted"]))
        await asyncio.to_thread(manager.after_shred, graph_id, dict(result))
        log.warning("graph %s: shredded by the primary (%s); %d snapshot(s) deleted here", graph_id,
                    result["shredded_at"], len(result["snapshots_deleted"]))
        return result

    commits: dict[str, Any] = {}

    @receive.post(ROUTES["snapshots"], summary="Commit a pushed snapshot (its manifest, last)")
    async def receive_snapshot(
        request: Request,
        graph_id: str = GraphId,
        expected_head: str = Query(..., pattern=r"^(none|" + SNAPSHOT_ID_PATTERN.strip("^$") + ")$",
                                   description="the graph's newest snapshot here as the push planned ('none')"),
        diverged: str = Query("", max_length=37 * 1000, pattern=r"^[0-9a-f\-,]*$",
                              description="this instance's snapshots the push marks diverged (source_wins)"),
    ) -> dict[str, Any]:
        import json

        # One commit of a graph at a time here: the head check and the commit go together.
        lock = commits.setdefault(graph_id, asyncio.Lock())
        async with lock, gate.turn():  # a commit waiting for its graph holds no receive turn
            data = await request.body()
            try:
                result = dict(json.loads(await manager.storage.engine.receive_snapshot_op(
                    graph_id, data, None if expected_head == "none" else expected_head,
                    [d for d in diverged.split(",") if d]).start()))
            except IntegrityError as error:  # chunks it needs were not pushed: nothing committed
                raise HTTPError(422, "integrity", str(error)) from None
        if result["status"] == "conflict":
            raise HTTPError(409, "conflict", result["message"])
        if result["diverged"]:
            log.warning("graph %s: a push replaced this instance's own newest snapshot(s); kept as diverged: %s",
                        graph_id, ", ".join(f"{d['snapshot_id']} -> {d['diverged_as']}" for d in result["diverged"]))
            # Their ids changed: the catalog follows the repository.
            await asyncio.to_thread(manager.rebuild_catalog_of, graph_id)
        # The standby's catalog lists what it received (the repository is the truth either way).
        snapshot = await manager.snapshots_of(graph_id).aget_snapshot(result["snapshot_id"])
        manager.catalog.record_snapshot(snapshot)
        if result["status"] == "committed" or result["diverged"]:
            applier.committed(graph_id)  # the head changed; after this answer: a push never waits for it
        return result

    @receive.post(ROUTES["verify"],
                  summary="Read back this instance's copy of a snapshot whole (for the primary's validation)")
    async def receive_verify(graph_id: str = GraphId,
                             snapshot_id: str = PathParam(..., pattern=SNAPSHOT_ID_PATTERN)) -> dict[str, Any]:
        snapshots = manager.snapshots_of(graph_id)
        try:
            snapshot = await snapshots.aget_snapshot(snapshot_id)
        except SnapshotNotFoundError:
            return {"snapshot_id": snapshot_id, "present": False, "ok": False, "data_hash": None,
                    "errors": [f"this instance has no snapshot {snapshot_id} of {graph_id}"]}
        report = await snapshots.averify_snapshot(snapshot_id, read_data=True)
        return {"snapshot_id": snapshot_id, "present": True, "ok": report.ok, "data_hash": snapshot.data_hash,
                "errors": list(report.errors)}

    @receive.get(ROUTES["recovery_points"], summary="The ids of the recovery points this instance has")
    async def receive_point_ids() -> dict[str, Any]:
        import json

        return dict(json.loads(await manager.storage.engine.recovery().point_ids_op().start()))

    @receive.post(ROUTES["recovery_points"], summary="A recovery point, stored once every snapshot it names is here")
    async def receive_point(request: Request) -> dict[str, Any]:
        result = await received(request, "a recovery point", manager.storage.engine.recovery().receive_point_op)
        if result["status"] == "stored":
            log.info("received recovery point %s", result["checkpoint_id"])
            await asyncio.to_thread(manager.refresh_recovery_points)
        return result

    outer.include_router(receive)
    return outer



__all__ = ["MAX_EPOCH", "ReceiveGate", "WantRequest", "create_receive_router", "parse_epoch"]
