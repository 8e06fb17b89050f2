"""Automatic failover without split brain: the primary holds a lease in an object store.

The lease (``LIGHTRAG_RECOVERY_LEASE_URL``: a folder every instance sees, ``s3://``, ``az://``
or ``gs://``) is a chain of create-only records swapped by compare-and-swap (the engine's
``_native.Lease``, see ``src/lease.rs``), so two instances can never both take it. Every
instance of a deployment runs one :class:`LeaseKeeper`:

* **The primary renews** every ``renew`` seconds. A renewal that began at ``t`` lets it act as
  primary until ``t + ttl - margin`` on its own monotonic clock. When it could not renew by
  then it **demotes itself first**: ``/primary`` answers 503, LightRAG's write routes 503,
  scheduled pushes stop. It acts again only by a successful swap while it is still the holder
  (nobody took over), so a short cut to the lease location costs writes, never a second
  primary.
* **A standby watches.** It judges expiry on its own monotonic clock: a record it has seen
  unchanged for the record's TTL has expired (no clock of another machine is trusted; the
  holder stopped acting at least ``margin`` earlier). With ``LIGHTRAG_RECOVERY_AUTO_FAILOVER=
  true`` it then takes the lease with epoch + 1, makes the newest snapshot it holds of every
  graph into a recovery point and fails over to it exactly as the manual failover does. With
  several standbys exactly one swap succeeds; the others follow the winner's epoch and accept
  its pushes. A released lease (a clean stop) may be taken at once; one handed over by a
  switchover only by its candidate (until its TTL runs out).
* **Anyone else who finds another holder is not the primary**: a returning old primary sees
  the higher epoch, becomes a standby, and allows the new primary to re-issue what it had that
  was never replicated as ``diverged`` snapshots (kept, never deleted) while bringing it up to
  date.

The timing rule (as Patroni's ``loop_wait + 2*retry_timeout <= ttl``): ``renew + 2 * timeout +
margin <= ttl``, so a primary gets two full renewal attempts before it must demote, and a
configuration that breaks it is refused at start. Defaults: TTL 30 s, renew 10 s, timeout 5 s,
margin 5 s (``LIGHTRAG_RECOVERY_LEASE_TTL_SECONDS``, ``..._RENEW_SECONDS``,
``..._TIMEOUT_SECONDS``, ``..._MARGIN_SECONDS``). The margin covers the rate drift of two
clocks and the time a demotion takes to show; it never has to cover clock offsets, because
no instance compares its clock with another's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

from lightrag.backup.background import BackgroundTask
from lightrag.backup.environment import env_flag, env_number
from lightrag.backup.errors import BackupError, InvalidInputError
from lightrag.backup.instance import (
    fencing_state,
    instance_epoch,
    instance_name,
    instance_role,
    set_instance_epoch,
    set_instance_role,
)

from .errors import LeaseHeldError
from .points import promoted

if TYPE_CHECKING:
    from .disaster_recovery import DisasterRecoveryManager

logger = logging.getLogger("lightrag.recovery.lease")

#: Lease changes kept in memory for the status (each is also logged and in the catalog).
_HISTORY = 50


@dataclass(frozen=True)
class LeaseSettings:
    """Where the lease is and its timing (seconds); checked against the timing rule."""

    url: str
    name: str = "lightrag"
    ttl: float = 30.0
    renew: float = 10.0
    timeout: float = 5.0
    margin: float = 5.0
    auto_failover: bool = False

    def __post_init__(self) -> None:
        if not self.url or not str(self.url).strip():
            raise InvalidInputError("the lease needs a location (LIGHTRAG_RECOVERY_LEASE_URL)")
        for field in ("ttl", "renew", "timeout", "margin"):
            value = getattr(self, field)
            if not isinstance(value, (int, float)) or not value > 0:
                raise InvalidInputError(f"lease {field} must be a number of seconds above zero, not {value!r}")
        needed = self.renew + 2 * self.timeout + self.margin
        if needed > self.ttl + 1e-9:
            raise InvalidInputError(
                f"lease timing breaks the rule renew + 2 * timeout + margin <= ttl: {self.renew:g} + 2 * "
                f"{self.timeout:g} + {self.margin:g} = {needed:g} > {self.ttl:g} (a primary must get two renewal "
                "attempts before it demotes itself): raise LIGHTRAG_RECOVERY_LEASE_TTL_SECONDS or lower the others")

    @classmethod
    def from_environment(cls) -> Optional["LeaseSettings"]:
        """The settings from ``LIGHTRAG_RECOVERY_LEASE_*``; ``None`` without a lease URL (then
        failover stays manual and the role comes from the catalog alone)."""
        url = os.environ.get("LIGHTRAG_RECOVERY_LEASE_URL", "").strip()
        if not url:
            return None
        return cls(
            url=url,
            name=os.environ.get("LIGHTRAG_RECOVERY_LEASE_NAME", "").strip() or "lightrag",
            ttl=env_number("LIGHTRAG_RECOVERY_LEASE_TTL_SECONDS", 30.0),
            renew=env_number("LIGHTRAG_RECOVERY_LEASE_RENEW_SECONDS", 10.0),
            timeout=env_number("LIGHTRAG_RECOVERY_LEASE_TIMEOUT_SECONDS", 5.0),
            margin=env_number("LIGHTRAG_RECOVERY_LEASE_MARGIN_SECONDS", 5.0),
            auto_failover=env_flag("LIGHTRAG_RECOVERY_AUTO_FAILOVER"),
        )


def _iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class LeaseKeeper(BackgroundTask):
    """Holds, renews, watches and takes the lease for one instance (the service the servers
    run, ``await start()`` / ``await stop()``). ``acting_primary()`` is the one answer to "may
    this instance act as the primary now" that the role endpoints, LightRAG's write routes and
    the replicators ask."""

    def __init__(self, recovery: "DisasterRecoveryManager", settings: LeaseSettings, *,
                 name: Optional[str] = None, url: Optional[str] = None) -> None:
        from lightrag.backup import _native

        self.recovery = recovery
        self.settings = settings
        self.catalog = recovery.catalog
        self.name = name or instance_name(self.catalog)
        #: Where this instance answers (named in the lease, so standbys can point writers at it).
        self.url = url or os.environ.get("LIGHTRAG_RECOVERY_ADVERTISE_URL") or None
        try:
            self._lease = _native.Lease(settings.url, settings.name, settings.timeout)
        except BackupError as error:
            raise InvalidInputError(f"the lease location {settings.url!r} cannot be used: {error}") from None
        #: The newest lease record seen (a dict as the engine writes it), or None.
        self.record: Optional[dict[str, Any]] = None
        self._held_until: Optional[float] = None  # monotonic: act as primary until then
        self._observed: Optional[tuple[int, float]] = None  # (slot, monotonic time first seen)
        self._promoting = False
        self._swap_lock = asyncio.Lock()
        self._stopping: Optional[asyncio.Event] = None
        self._demoted_logged = False
        self.last_error: Optional[str] = None
        self.history: deque[dict[str, Any]] = deque(maxlen=_HISTORY)
        self._published_at = 0.0  # monotonic: when this instance's member record was last written
        self._not_before = 0.0  # monotonic: no takeover before (after one that failed)
        self._deferring: Optional[tuple[str, float]] = None  # (to whom, since) while another standby is ahead

    # -- what others ask ---------------------------------------------------------------------

    @property
    def location(self) -> str:
        return str(self._lease.location)

    def acting_primary(self) -> bool:
        """Whether this instance holds the lease now (by its own clock, renewal start + TTL -
        margin). The catalog's role must say primary as well for it to act as one."""
        held = self._held_until
        return held is not None and time.monotonic() < held and not self._promoting

    def holding(self) -> bool:
        """Holds the lease (also while a takeover's failover runs, before it acts as primary)."""
        held = self._held_until
        return held is not None and time.monotonic() < held

    def primary(self) -> Optional[dict[str, Any]]:
        """Who holds the lease, as far as this instance knows: ``{name, url, epoch}``."""
        record = self.record
        if record is None or record.get("state") != "held":
            return None
        return {"name": record["holder"], "url": record.get("holder_url"), "epoch": record["epoch"]}

    def status(self) -> dict[str, Any]:
        record = self.record
        held = self._held_until
        return {
            "configured": True,
            "location": self.location,
            "name": self.settings.name,
            "instance": self.name,
            "holder": record["holder"] if record else None,
            "holder_url": record.get("holder_url") if record else None,
            "epoch": record["epoch"] if record else None,
            "state": record["state"] if record else None,
            "handover_to": record.get("handover_to") if record else None,
            "expires_at": record["expires_at"] if record else None,
            "slot": record["slot"] if record else None,
            "holding": self.holding(),
            "acting_primary": self.acting_primary(),
            "promoting": self._promoting,
            "valid_for_seconds": round(max(held - time.monotonic(), 0.0), 3) if held is not None else None,
            "auto_failover": self.settings.auto_failover,
            "timing": {k: v for k, v in asdict(self.settings).items() if k not in ("url",)},
            "last_error": self.last_error,
            "history": list(self.history)[-10:],
        }

    # -- the service -------------------------------------------------------------------------

    async def start(self) -> None:
        if self.running:
            return
        self._stopping = asyncio.Event()
        async with self._swap_lock:
            await self._tick()  # a primary holds the lease before it serves writes
        await self._publish()
        self._launch(self._run(), "lightrag-recovery-lease")

    async def stop(self) -> None:
        """Stop; a primary releases the lease so a standby need not wait for the TTL."""
        if self._stopping is not None:
            self._stopping.set()
        await self._join()
        async with self._swap_lock:
            if self.holding() and self.record is not None and self.record.get("holder") == self.name:
                try:
                    await self._swap(self.record["slot"], self.record["epoch"], state="released")
                    self._change("released", "this instance stopped")
                except BackupError as error:
                    logger.warning("could not release the lease at %s on stop (it expires by itself): %s",
                                   self.location, error)
            self._held_until = None

    async def _run(self) -> None:
        assert self._stopping is not None
        while not self._stopping.is_set():
            period = self.settings.renew if self.holding() else min(self.settings.renew, 1.0)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=period)
                break
            except asyncio.TimeoutError:
                pass
            try:
                async with self._swap_lock:
                    await self._tick()
                if time.monotonic() - self._published_at >= self.settings.renew:
                    await self._publish()
            except Exception as error:  # noqa: BLE001 - the keeper never dies of one round
                self.last_error = f"{type(error).__name__}: {error}"
                logger.exception("lease round failed")

    # -- one round ---------------------------------------------------------------------------

    async def _tick(self) -> None:
        role = await asyncio.to_thread(instance_role, self.catalog)
        epoch = await asyncio.to_thread(instance_epoch, self.catalog)
        if self._held_until is not None and self.record is not None and self.record.get("holder") == self.name:
            if role != "primary" and not self._promoting:
                self._held_until = None  # handed over (switchover) or demoted meanwhile
            else:
                await self._renew()
                return
        try:
            current = await self._read()
        except BackupError as error:
            self._failed("read", error)
            return
        await self._decide(current, role, epoch)

    async def _renew(self) -> None:
        assert self.record is not None
        try:
            won, current = await self._swap(self.record["slot"], self.record["epoch"])
        except BackupError as error:
            self._failed("renew", error)
            if not self.holding():
                self._held_until = None
                if not self._demoted_logged:
                    self._demoted_logged = True
                    self._change("demoted", f"could not renew the lease within its TTL ({error}): this instance "
                                            "stopped acting as the primary (503 on /primary, writes refused)",
                                 level=logging.ERROR)
            return
        if won:
            self.last_error = None
            if self._demoted_logged:
                self._demoted_logged = False
                self._change("renewed", "the lease is renewed again: acting as the primary")
            return
        self._held_until = None
        self._change("lost", f"the lease was taken by {current['holder'] if current else 'nobody'}",
                     level=logging.ERROR)
        role = await asyncio.to_thread(instance_role, self.catalog)
        await self._decide(current, role, await asyncio.to_thread(instance_epoch, self.catalog))

    async def _decide(self, current: Optional[dict[str, Any]], role: str, epoch: int) -> None:
        fenced = await asyncio.to_thread(fencing_state, self.catalog)
        if current is None:
            if role == "primary" and fenced is None:
                await self._acquire(None, epoch, "no lease yet: this primary takes it")
            return
        if current["holder"] == self.name:
            handed_elsewhere = current["state"] == "released" and current.get("handover_to") not in (None, self.name)
            if role == "primary" and fenced is None and epoch >= current["epoch"] and not handed_elsewhere:
                await self._acquire(current["slot"], max(epoch, current["epoch"]), "this primary holds the lease again")
            return
        if current["epoch"] > epoch:
            await asyncio.to_thread(set_instance_epoch, self.catalog, current["epoch"])
        if role == "primary":
            if epoch > current["epoch"] and self._expired(current):
                await self._acquire(current["slot"], epoch, "promoted while the lease was elsewhere")
            elif epoch <= current["epoch"]:
                await self._become_standby(current)
            return
        if self._promoting:
            return
        for_me = current["state"] == "released" and current.get("handover_to") == self.name
        if for_me:
            # The switchover's primary calls this instance's /recovery/promote, which takes it;
            # only when that never came (the primary died mid-switchover) does this, a TTL later.
            if self._expired(current):
                await self._take_over(current, epoch, fenced, "handed over by a switchover that did not finish")
        elif self.settings.auto_failover and self._expired(current) and await self._should_take_over():
            await self._take_over(current, epoch, fenced,
                                  f"the lease of {current['holder']} (epoch {current['epoch']}) expired")

    async def _should_take_over(self) -> bool:
        """Whether this standby should take an expired lease now: it holds a state to fail over
        to, its last attempt did not just fail, and no other standby that fails over
        automatically holds a strictly newer state (that one goes first; after twice the TTL
        without it, this one goes anyway)."""
        if time.monotonic() < self._not_before:
            return False
        mine = await asyncio.to_thread(self.recovery.held_state)
        if not mine:
            if self._deferring is None or self._deferring[0] != "":
                self._deferring = ("", time.monotonic())
                logger.warning("lease expired, but this standby holds no snapshot: it does not take over")
            return False
        ahead = await self._standby_ahead(mine)
        if ahead is None:
            self._deferring = None
            return True
        if self._deferring is None or self._deferring[0] != ahead:
            self._deferring = (ahead, time.monotonic())
            self._change("deferring", f"{ahead} holds a newer state: it takes over first", level=logging.WARNING)
        return time.monotonic() - self._deferring[1] >= 2 * self.settings.ttl

    async def _standby_ahead(self, mine: dict[str, Any]) -> Optional[str]:
        try:
            members = json.loads(await self._lease.members_op().start())
        except BackupError as error:
            self._failed("read the member records", error)
            return None
        now = datetime.now(timezone.utc)
        ours = {g: s.timestamp for g, s in mine.items()}
        for member in members:
            if (member.get("instance") == self.name or member.get("role") != "standby"
                    or not member.get("auto_failover")):
                continue
            try:
                written = datetime.fromisoformat(member["written_at"])
                theirs = {g: datetime.fromisoformat(h["time"]) for g, h in (member.get("heads") or {}).items()}
            except (KeyError, TypeError, ValueError):
                continue
            if abs((now - written).total_seconds()) > 2 * self.settings.ttl:
                continue  # gone quiet: not a candidate
            newer = any(g not in ours or t > ours[g] for g, t in theirs.items())
            older = any(g not in theirs or t > theirs[g] for g, t in ours.items())
            if newer and not older:
                return str(member["instance"])
        return None

    async def _publish(self) -> None:
        """Write this instance's member record: role, epoch, and the newest state it holds."""
        self._published_at = time.monotonic()
        try:
            heads = await asyncio.to_thread(self.recovery.held_state)
            record = {"instance": self.name, "url": self.url,
                      "role": await asyncio.to_thread(instance_role, self.catalog),
                      "epoch": await asyncio.to_thread(instance_epoch, self.catalog),
                      "acting_primary": self.acting_primary(), "auto_failover": self.settings.auto_failover,
                      "heads": {g: {"snapshot_id": s.snapshot_id, "time": s.timestamp.isoformat()}
                                for g, s in heads.items()},
                      "written_at": _iso()}
            await self._lease.publish_member_op(self.name, json.dumps(record)).start()
        except BackupError as error:
            self._failed("publish the member record", error)

    def instances(self) -> list[dict[str, Any]]:
        """Every instance's member record (role, epoch, what it holds, as it last said), for
        the status; an unreadable lease location gives an empty list."""
        try:
            members = json.loads(self._lease.members_op().run())
        except BackupError as error:
            self._failed("read the member records", error)
            return []
        now = datetime.now(timezone.utc)
        for member in members:
            try:
                age = (now - datetime.fromisoformat(member["written_at"])).total_seconds()
            except (KeyError, TypeError, ValueError):
                age = None
            # Quiet for two TTLs: gone, or cut off (what it says is how it last was).
            member["silent"] = age is None or age > 2 * self.settings.ttl
            member["age_seconds"] = round(age, 1) if age is not None else None
        return sorted(members, key=lambda m: str(m.get("instance")))

    def _expired(self, record: dict[str, Any]) -> bool:
        """Expired by this instance's clock: released without a candidate, or seen unchanged for
        its whole TTL (a lease released for a switchover's candidate is the candidate's to take
        through the switchover; anyone's once its TTL ran out)."""
        if record["state"] == "released" and not record.get("handover_to"):
            return True
        observed = self._observed
        return (observed is not None and observed[0] == record["slot"]
                and time.monotonic() - observed[1] >= record["ttl_ms"] / 1000.0)

    async def _acquire(self, expected: Optional[int], epoch: int, why: str) -> bool:
        try:
            won, current = await self._swap(expected, epoch)
        except BackupError as error:
            self._failed("take", error)
            return False
        if won:
            self._demoted_logged = False
            self._change("acquired", why)
            return True
        logger.info("lease: %s took it first", current["holder"] if current else "another instance")
        return False

    async def _become_standby(self, current: dict[str, Any]) -> None:
        await asyncio.to_thread(set_instance_epoch, self.catalog, current["epoch"])
        await asyncio.to_thread(set_instance_role, self.catalog, "standby")
        # What this instance has that the new primary never got is re-issued as `diverged`
        # snapshots by the new primary's first push (kept, never deleted), not refused.
        await asyncio.to_thread(self.catalog.set_state, "rewind_allowed",
                                json.dumps({"epoch": current["epoch"], "by": current["holder"], "at": _iso()}))
        self._published_at = 0.0
        self._change("standby", f"{current['holder']} holds the lease with epoch {current['epoch']}: this instance "
                                "is a standby now and follows it", level=logging.WARNING)

    async def _take_over(self, current: dict[str, Any], epoch: int, fenced: Optional[dict[str, Any]],
                         why: str) -> None:
        new_epoch = max(int(current["epoch"]), epoch, int((fenced or {}).get("epoch") or 0)) + 1
        try:
            won, winner = await self._swap(current["slot"], new_epoch)
        except BackupError as error:
            self._failed("take over", error)
            return
        if not won:
            logger.warning("lease: %s took over first; this standby follows it",
                           winner["holder"] if winner else "another instance")
            return
        self._promoting = True
        self._change("taken", f"{why}: this standby took the lease with epoch {new_epoch} and fails over",
                     level=logging.WARNING)
        asyncio.create_task(self._promote(new_epoch), name="lightrag-recovery-auto-failover")

    async def _promote(self, epoch: int) -> None:
        report: Optional[dict[str, Any]] = None
        try:
            point = await self.recovery.acreate_point_of_held_state(
                f"automatic failover (epoch {epoch}): the newest state this standby holds")
            report = await self.recovery.afailover(point.checkpoint_id, epoch=epoch)
        except Exception as error:  # noqa: BLE001 - reported, and the lease given back
            self.last_error = f"{type(error).__name__}: {error}"
            logger.exception("automatic failover failed")
        finally:
            self._promoting = False
        if promoted(report):
            assert report is not None
            self._not_before = 0.0
            self._published_at = 0.0  # say so at the next round
            if report.get("ok"):
                self._change("promoted", f"automatic failover done: primary with epoch {epoch}, RTO "
                                         f"{report['rto_seconds']} s", level=logging.WARNING)
            else:
                # Restored and promoted, but the validation found problems: this is the best
                # state there is, so this instance stays the primary; the report says what.
                self._change("promoted", f"automatic failover: primary with epoch {epoch}, but the validation "
                                         "of the restored graphs failed: see the failover report", level=logging.ERROR)
            return
        # Give the lease back, so another standby may try (this one waits a TTL first).
        self._not_before = time.monotonic() + self.settings.ttl
        async with self._swap_lock:
            try:
                if self.record is not None and self.record.get("holder") == self.name:
                    await self._swap(self.record["slot"], epoch, state="released")
                    self._change("released", "the automatic failover did not complete: lease given back",
                                 level=logging.ERROR)
            except BackupError as error:
                self._failed("release", error)
            self._held_until = None

    async def atake_for_failover(self) -> int:
        """For a manual failover on this instance: take the lease (it must have expired, been
        released, or be this instance's) and return the epoch to fail over with. Raises
        :class:`LeaseHeldError` while another instance holds it."""
        async with self._swap_lock:
            current = await self._read()
            epoch = await asyncio.to_thread(instance_epoch, self.catalog)
            fenced = await asyncio.to_thread(fencing_state, self.catalog)
            if current is not None and current["holder"] != self.name and not self._expired(current):
                observed = self._observed
                waited = time.monotonic() - observed[1] if observed else 0.0
                raise LeaseHeldError(
                    f"{current['holder']} holds the lease (epoch {current['epoch']}, written {current['written_at']}); "
                    f"this instance has seen it unchanged for {waited:.0f} of its {current['ttl_ms'] / 1000:g} s: "
                    "wait until it expires, or switch over from the primary (POST /recovery/switchover)")
            new_epoch = max(int(current["epoch"]) if current else 0, epoch, int((fenced or {}).get("epoch") or 0)) + 1
            won, winner = await self._swap(current["slot"] if current else None, new_epoch)
            if not won:
                raise LeaseHeldError(f"{winner['holder'] if winner else 'another instance'} took the lease first")
            self._promoting = True
            self._change("taken", f"manual failover: took the lease with epoch {new_epoch}", level=logging.WARNING)
            return new_epoch

    async def afailover_done(self, ok: bool) -> None:
        """After :meth:`atake_for_failover`'s failover: act as primary (``ok``: it was
        promoted), or give the lease back."""
        self._promoting = False
        if ok:
            self._change("promoted", "failover done: acting as the primary", level=logging.WARNING)
            return
        async with self._swap_lock:
            if self.record is not None and self.record.get("holder") == self.name:
                try:
                    await self._swap(self.record["slot"], self.record["epoch"], state="released")
                except BackupError as error:
                    self._failed("release", error)
            self._held_until = None

    async def ahand_over(self, candidate: str) -> dict[str, Any]:
        """For a switchover: release the lease to ``candidate`` (only it may take it before the
        TTL runs out); this instance stops acting as primary at once."""
        async with self._swap_lock:
            if self.record is None or self.record.get("holder") != self.name or not self.holding():
                raise LeaseHeldError("this instance does not hold the lease: only the primary hands it over")
            won, current = await self._swap(self.record["slot"], self.record["epoch"], state="released",
                                            handover_to=candidate)
            if not won:
                raise LeaseHeldError(f"the lease was taken by {current['holder'] if current else 'nobody'} meanwhile")
            self._held_until = None
            self._change("handed over", f"released for {candidate}", level=logging.WARNING)
            return dict(current or {})

    async def atake_back(self) -> None:
        """A switchover whose candidate did not promote: hold the lease again (released for the
        candidate, or given back by it); refused while the candidate holds it."""
        async with self._swap_lock:
            current = await self._read()
            if current is not None and current["holder"] != self.name and current["state"] == "held":
                raise LeaseHeldError(f"{current['holder']} holds the lease (epoch {current['epoch']}): it is the "
                                     "primary now")
            epoch = max(int(current["epoch"]) if current else 0, await asyncio.to_thread(instance_epoch, self.catalog))
            won, winner = await self._swap(current["slot"] if current else None, epoch)
            if not won:
                raise LeaseHeldError(f"{winner['holder'] if winner else 'another instance'} took the lease first")
            await asyncio.to_thread(set_instance_epoch, self.catalog, epoch)
            self._change("acquired", "switchover rolled back: this instance holds the lease again",
                         level=logging.WARNING)

    async def atake_handover(self) -> int:
        """For a switchover's candidate: take the lease handed over to it; returns the epoch."""
        async with self._swap_lock:
            current = await self._read()
            if current is None or current["state"] != "released" or current.get("handover_to") != self.name:
                raise LeaseHeldError(f"the lease was not handed over to {self.name}: "
                                     f"{json.dumps(current) if current else 'nobody holds it'}")
            epoch = max(int(current["epoch"]), await asyncio.to_thread(instance_epoch, self.catalog)) + 1
            won, winner = await self._swap(current["slot"], epoch)
            if not won:
                raise LeaseHeldError(f"{winner['holder'] if winner else 'another instance'} took the lease first")
            self._promoting = True
            self._change("taken", f"switchover: took the lease with epoch {epoch}", level=logging.WARNING)
            return epoch

    # -- the store ---------------------------------------------------------------------------

    async def _read(self) -> Optional[dict[str, Any]]:
        raw = await self._lease.current_op().start()
        current = json.loads(raw)
        self._see(current)
        return current

    async def _swap(self, expected: Optional[int], epoch: int, *, state: str = "held",
                    handover_to: Optional[str] = None) -> tuple[bool, Optional[dict[str, Any]]]:
        proposal = {"holder": self.name, "holder_url": self.url, "epoch": int(epoch),
                    "ttl_ms": int(self.settings.ttl * 1000), "state": state, "handover_to": handover_to}
        began = time.monotonic()
        outcome = json.loads(await self._lease.write_op(expected, json.dumps(proposal)).start())
        if outcome["outcome"] == "won":
            self._see(outcome["record"])
            self._held_until = began + self.settings.ttl - self.settings.margin if state == "held" else None
            return True, outcome["record"]
        self._see(outcome["current"])
        return False, outcome["current"]

    def _see(self, record: Optional[dict[str, Any]]) -> None:
        previous = self.record
        self.record = record
        if record is None:
            self._observed = None
        elif self._observed is None or self._observed[0] != record["slot"]:
            self._observed = (int(record["slot"]), time.monotonic())
        before = (previous or {}).get("holder"), (previous or {}).get("epoch")
        if record is not None and record.get("holder") != self.name and before != (record["holder"], record["epoch"]):
            self._change("seen", f"{record['holder']} holds the lease with epoch {record['epoch']} "
                                 f"({record['state']})")

    def _failed(self, what: str, error: BackupError) -> None:
        self.last_error = f"{what}: {type(error).__name__}: {error}"
        logger.warning("lease %s at %s failed: %s", what, self.location, error)

    def _change(self, event: str, message: str, *, level: int = logging.INFO) -> None:
        record = self.record or {}
        entry = {"at": _iso(), "event": event, "message": message, "holder": record.get("holder"),
                 "epoch": record.get("epoch"), "instance": self.name}
        self.history.append(entry)
        logger.log(level, "lease %s: %s", event, message)
        try:
            self.catalog.record_recovery_event({
                "event_id": str(uuid.uuid4()), "kind": "lease", "checkpoint_id": None, "started_at": entry["at"],
                "finished_at": entry["at"], "ok": None, "rto_seconds": None, "rpo_seconds": None, "report": entry})
        except Exception as error:  # noqa: BLE001 - the catalog is a mirror; the log has it
            logger.warning("could not record a lease change in the catalog: %s", error)


_KEEPERS: dict[int, LeaseKeeper] = {}


def lease_keeper_for(recovery: "DisasterRecoveryManager") -> Optional[LeaseKeeper]:
    """The process's keeper for ``recovery`` when ``LIGHTRAG_RECOVERY_LEASE_URL`` is set (made
    on first call, then shared), else ``None``."""
    keeper = _KEEPERS.get(id(recovery))
    if keeper is not None and keeper.recovery is recovery:
        return keeper
    settings = LeaseSettings.from_environment()
    if settings is None:
        return None
    keeper = _KEEPERS[id(recovery)] = LeaseKeeper(recovery, settings)
    recovery.lease = keeper
    return keeper

__all__ = ["LeaseKeeper", "LeaseSettings", "instance_name", "lease_keeper_for"]
