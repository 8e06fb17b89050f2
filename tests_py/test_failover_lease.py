"""Automatic failover through the object-store lease, with real processes: three
``lightrag-backup-server`` instances (LightRAG's server with our routes, stub LLM and
embeddings on loopback), one lease location. Throughout, a watcher samples ``/primary`` on
every instance every 100 ms and fails the test if two ever answer 200 at once.

Scenarios: the primary is killed with SIGKILL (one standby takes over within TTL + 10 s,
LightRAG on it takes an insert and answers, the other standby follows it), the old primary
comes back (a standby, fenced, caught up; what it never replicated is kept as `diverged`),
a primary cut off from the lease location only (it demotes itself before a standby promotes),
writes to a standby's LightRAG routes (503 ``read_only_standby``, reads work), and a switchover
under a stream of inserts (nothing acknowledged is lost).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest

from fault_proxy import FaultProxy
from helpers import MOUNTED_API_KEY as API_KEY, answers, eventually, exists, insert, start_mounted as start

#: Short lease timings for tests: renew + 2 * timeout + margin = 1 + 3 + 1.5 <= 6.
TIMING = {"LIGHTRAG_RECOVERY_LEASE_TTL_SECONDS": "6", "LIGHTRAG_RECOVERY_LEASE_RENEW_SECONDS": "1",
          "LIGHTRAG_RECOVERY_LEASE_TIMEOUT_SECONDS": "1.5", "LIGHTRAG_RECOVERY_LEASE_MARGIN_SECONDS": "1.5"}
TTL = 6.0


pytestmark = pytest.mark.processes


class PrimaryWatcher:
    """Samples ``GET /primary`` on every instance every 100 ms (in parallel); records each
    sample's set of instances that answered 200."""

    def __init__(self, bases: dict[str, str]) -> None:
        self.bases = dict(bases)
        self.samples: list[tuple[float, frozenset[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _ask(self, client: httpx.Client, base: str) -> bool:
        try:
            return client.get(f"{base}/primary", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def _run(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        with httpx.Client() as client, ThreadPoolExecutor(len(self.bases) + 2) as pool:
            while not self._stop.is_set():
                began = time.monotonic()
                names = list(self.bases)
                answers_ = list(pool.map(lambda name: self._ask(client, self.bases[name]), names))
                self.samples.append((began, frozenset(n for n, ok in zip(names, answers_) if ok)))
                self._stop.wait(max(0.1 - (time.monotonic() - began), 0.0))

    def primaries(self) -> frozenset[str]:
        return self.samples[-1][1] if self.samples else frozenset()

    def wait_for(self, check: Callable[[frozenset[str]], bool], what: str, seconds: float) -> float:
        """Seconds until a sample satisfies ``check``."""
        began = time.monotonic()
        seen = len(self.samples)
        while True:
            for at, primaries in self.samples[seen:]:
                if at >= began and check(primaries):
                    return at - began
            seen = len(self.samples)
            assert time.monotonic() - began < seconds, f"timed out waiting for {what}: last {self.primaries()}"
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        doubled = [(at, p) for at, p in self.samples if len(p) > 1]
        assert not doubled, f"two primaries at once: {doubled[:5]}"


def instance_env(root: Path, name: str, lease_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**TIMING, "LIGHTRAG_RECOVERY_LEASE_URL": lease_url, "LIGHTRAG_RECOVERY_AUTO_FAILOVER": "true",
            "LIGHTRAG_RECOVERY_INSTANCE_NAME": name, "LIGHTRAG_REPLICATION_ENABLED": "true",
            "LIGHTRAG_REPLICATION_APPLY": "*", "LIGHTRAG_REPLICATION_CONTINUOUS": "*",
            "LIGHTRAG_REPLICATION_CONTINUOUS_POLL_SECONDS": "0.3", "LIGHTRAG_REPLICATION_CATCH_UP_SECONDS": "3",
            "LIGHTRAG_REPLICATION_TIMEOUT_SECONDS": "10",
            "LIGHTRAG_RECOVERY_CHECKPOINT_INTERVAL_HOURS": "0", "LIGHTRAG_RECOVERY_HEALTH_CHECK_INTERVAL_MINUTES": "0",
            **(extra or {})}


class Deployment:
    """Three instances over one lease location; each registers the other two as targets."""

    def __init__(self, root: Path, lease_url: str, env: dict[str, dict[str, str]] | None = None) -> None:
        self.root, self.lease_url = root, lease_url
        self.env = env or {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.bases: dict[str, str] = {}
        self.clients: dict[str, httpx.Client] = {}

    def start(self, name: str, *extra: str) -> None:
        folder = self.root / name
        folder.mkdir(exist_ok=True)
        # A restarted instance answers where it did: the others' targets name its address.
        port = int(self.bases[name].rsplit(":", 1)[1]) if name in self.bases else None
        process, base = start(folder, "--backup-repo", str(folder / "repo"), "--backup-graph-id", "live",
                              "--backup-catalog", str(folder / "catalog.sqlite3"), *extra,
                              env=instance_env(folder, name, self.lease_url, self.env.get(name)), port=port)
        self.processes[name], self.bases[name] = process, base
        old = self.clients.pop(name, None)
        if old is not None:
            old.close()
        self.clients[name] = httpx.Client(base_url=base, headers={"X-API-Key": API_KEY}, timeout=120)

    def connect(self, via: dict[tuple[str, str], str] | None = None) -> None:
        for source in self.clients:
            for target in self.clients:
                if source != target:
                    base = (via or {}).get((source, target), self.bases[target])
                    made = self.clients[source].post("/replication/targets", json={
                        "name": target, "base_url": base, "api_key": API_KEY})
                    assert made.status_code == 201, made.text

    def kill(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait(timeout=30)

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)


def role(client: httpx.Client) -> dict[str, Any]:
    return client.get("/replication/receive/info").json()


def test_the_primary_is_killed_a_standby_takes_over_and_the_old_primary_returns_as_its_standby(tmp_path: Path):
    deployment = Deployment(tmp_path, str(tmp_path / "lease"))
    watcher: PrimaryWatcher | None = None
    proxies: dict[str, FaultProxy] = {}
    try:
        deployment.start("a")
        deployment.start("b", "--backup-role", "standby")
        deployment.start("c", "--backup-role", "standby")
        a, b, c = (deployment.clients[n] for n in "abc")
        # a pushes to b and c through proxies, so its last pushes can be cut off below.
        for name in "bc":
            proxies[name] = FaultProxy(int(deployment.bases[name].rsplit(":", 1)[1]))
        deployment.connect({("a", "b"): proxies["b"].base, ("a", "c"): proxies["c"].base})
        watcher = PrimaryWatcher(deployment.bases)
        watcher.wait_for(lambda p: p == {"a"}, "a to be the primary", 30)
        lease = a.get("/recovery/lease").json()
        assert lease["holder"] == "a" and lease["holding"] and lease["epoch"] == 0, lease

        insert(a, "[[Dana Lee]] runs [[Nova Works]] in [[Tallinn]].", "d.txt")
        for standby in (b, c):
            eventually(lambda: exists(standby, "Dana Lee"), "the standbys to serve the primary's graph")

        # A standby's LightRAG serves reads and queries, and refuses writes naming the primary.
        refused = b.post("/documents/text", json={"text": "[[Mallory]] writes here.", "file_source": "m.txt"})
        assert refused.status_code == 503, refused.text
        error = refused.json()["error"]
        assert error["kind"] == "read_only_standby" and error["primary"]["name"] == "a", error
        assert error["primary"]["url"] == deployment.bases["a"]
        for path, method in (("/graph/entity/edit", "POST"), ("/documents", "DELETE"), ("/graph/entity/delete", "DELETE")):
            assert b.request(method, path, json={}).json()["error"]["kind"] == "read_only_standby", path
        assert b.get("/graph/label/list").status_code == 200
        assert b.post("/documents/paginated", json={"page": 1, "page_size": 10}).status_code == 200
        assert answers(b, "Who runs [[Nova Works]]?")

        # c falls behind (its pushes fail), b keeps up: when the primary dies, b must win.
        proxies["c"].fail_next = 10**6
        insert(a, "[[Yara Holt]] chairs [[Nova Works]].", "y.txt")
        eventually(lambda: exists(b, "Yara Holt"), "b to serve Yara")
        assert not exists(c, "Yara Holt")
        eventually(lambda: len({json.dumps(m["heads"]) for m in a.get("/recovery/status").json()["instances"]
                                if m["instance"] in "bc"}) == 2, "b and c to publish what they hold")
        # The primary's last document never reaches a standby: then it is killed.
        for proxy in proxies.values():
            proxy.fail_next = 10**6
        before = len(a.get("/backup/graphs/live/snapshots").json())
        insert(a, "[[Zed Quinn]] audits [[Nova Works]].", "z.txt")
        eventually(lambda: len(a.get("/backup/graphs/live/snapshots").json()) > before, "a's continuous snapshot")
        killed = time.monotonic()
        deployment.kill("a")
        took = watcher.wait_for(lambda p: len(p) == 1 and "a" not in p, "a standby to take over", TTL + 10)
        (new_name,) = watcher.primaries()
        assert new_name == "b", "the standby holding the newest state takes over"
        other_name = "c"
        new, other = deployment.clients[new_name], deployment.clients[other_name]
        print(f"automatic failover: SIGKILL -> {new_name} answers /primary 200 in {time.monotonic() - killed:.2f} s "
              f"(watcher: {took:.2f} s)")
        status = new.get("/recovery/status").json()
        assert status["acting_as"] == "primary" and status["epoch"] == 1, status
        assert status["lease"]["holder"] == new_name and status["lease"]["epoch"] == 1
        assert status["last_failover"]["ok"], status["last_failover"]
        # LightRAG on the new primary takes writes and answers from the graph it held.
        assert exists(new, "Dana Lee") and exists(new, "Yara Holt") and not exists(new, "Zed Quinn")
        # c deferred to b if it saw the lease expire first (test_a_standby_defers_... checks the rule).
        c_lease = other.get("/recovery/lease").json()
        assert all("b holds a newer state" in e["message"] for e in c_lease["history"] if e["event"] == "deferring")

        def roles() -> dict[str, str]:
            return {m["instance"]: m["role"] for m in new.get("/recovery/status").json()["instances"]}

        eventually(lambda: roles() == {"a": "primary", "b": "primary", "c": "standby"}, "the instances' roles")
        insert(new, "[[Gus Moe]] joins [[Nova Works]].", "g.txt")
        assert exists(new, "Gus Moe") and answers(new, "Who joins [[Nova Works]]?")
        # The other standby follows the new primary: its epoch, its pushes.
        eventually(lambda: role(other)["epoch"] == 1, "the other standby to follow epoch 1")
        eventually(lambda: exists(other, "Gus Moe"), "the other standby to apply the new primary's graph")
        assert other.get("/primary").status_code == 503 and other.get("/standby").status_code == 200
        assert other.post("/documents/text", json={"text": "x", "file_source": "x.txt"}).json()["error"][
            "primary"]["name"] == new_name

        # The old primary comes back: it finds the higher epoch, is a standby, and is brought
        # up to date; its unreplicated snapshot is kept, tagged diverged.
        for proxy in proxies.values():
            proxy.fail_next = 0
        deployment.start("a")
        a = deployment.clients["a"]
        info = role(a)
        assert info["role"] == "standby" and info["epoch"] == 1, info
        assert a.get("/primary").status_code == 503
        assert a.post("/documents/text", json={"text": "x", "file_source": "x.txt"}).status_code == 503
        eventually(lambda: exists(a, "Gus Moe"), "the old primary to be brought up to date", 60)
        tags = [s["tags"] for s in a.get("/backup/graphs/live/snapshots").json()]
        assert any("diverged" in t for t in tags), tags
        # The old primary pushes nothing: asked to, it refuses (and its epoch is fenced anyway).
        pushed = a.post("/replication/graphs/live/replicate?wait=true").json()["result"]
        assert pushed and all(r["status"] == "failed" and "only the primary pushes" in r["error"]
                              for r in pushed.values()), pushed
        assert role(other)["epoch"] == 1 and other.get("/primary").status_code == 503
        watcher.wait_for(lambda p: p == {new_name}, "one primary", 5)
    finally:
        if watcher is not None:
            watcher.stop()
        for proxy in proxies.values():
            proxy.close()
        deployment.close()


def s3_env(endpoint: str) -> dict[str, str]:
    return {"AWS_ENDPOINT": endpoint, "AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret-value",
            "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}


@pytest.mark.cloud
def test_a_primary_cut_off_from_the_lease_demotes_itself_before_a_standby_promotes(tmp_path: Path):
    from helpers import server_env

    endpoint, bucket = server_env("LRB_TEST_S3_ENDPOINT"), server_env("LRB_TEST_S3_BUCKET")
    lease_proxy = FaultProxy(int(endpoint.rsplit(":", 1)[1]))
    # Only the primary reaches the lease location through the proxy: the cut is between it and
    # the object store alone; the instances still reach each other.
    deployment = Deployment(tmp_path, f"s3://{bucket}/lease-{uuid.uuid4().hex}",
                            env={"a": s3_env(lease_proxy.base), "b": s3_env(endpoint), "c": s3_env(endpoint)})
    watcher: PrimaryWatcher | None = None
    try:
        deployment.start("a")
        deployment.start("b", "--backup-role", "standby")
        deployment.start("c", "--backup-role", "standby")
        deployment.connect()
        a = deployment.clients["a"]
        watcher = PrimaryWatcher(deployment.bases)
        watcher.wait_for(lambda p: p == {"a"}, "a to be the primary", 30)
        insert(a, "[[Ines Park]] founds [[Kelp Labs]] in [[Porto]].", "i.txt")
        for name in "bc":
            eventually(lambda: exists(deployment.clients[name], "Ines Park"), "the standbys to follow")

        cut = time.monotonic()
        lease_proxy.cut = True
        demoted = watcher.wait_for(lambda p: "a" not in p, "a to demote itself", TTL)
        assert a.get("/primary").json()["acting_as"] == "demoted"
        refused = a.post("/documents/text", json={"text": "[[Late]] write.", "file_source": "late.txt"})
        assert refused.status_code == 503 and refused.json()["error"]["kind"] == "read_only_standby", refused.text
        watcher.wait_for(lambda p: len(p) == 1 and "a" not in p, "a standby to take over", TTL + 10)
        (new_name,) = watcher.primaries()
        print(f"cut off from the lease: a demoted after {demoted + 0:.2f} s, {new_name} primary after "
              f"{time.monotonic() - cut:.2f} s")
        # Demoted first: from the cut, the standby's promotion came later by at least the margin.
        last_a = max(at for at, p in watcher.samples if "a" in p)
        first_new = min(at for at, p in watcher.samples if new_name in p)
        assert first_new - last_a >= 1.0, (first_new - last_a)
        new = deployment.clients[new_name]
        insert(new, "[[Jon Vale]] joins [[Kelp Labs]].", "j.txt")

        # Reconnected, the old primary finds the new holder and becomes its standby.
        lease_proxy.cut = False
        eventually(lambda: role(a)["role"] == "standby" and role(a)["epoch"] == 1, "a to become a standby", 30)
        eventually(lambda: exists(a, "Jon Vale"), "a to be brought up to date", 60)
        lease = a.get("/recovery/lease").json()
        assert lease["holder"] == new_name and lease["epoch"] == 1 and not lease["holding"], lease
        assert any(e["event"] == "demoted" for e in lease["history"]), lease["history"]
    finally:
        if watcher is not None:
            watcher.stop()
        deployment.close()
        lease_proxy.close()


def test_switchover_under_a_stream_of_inserts_loses_nothing(tmp_path: Path):
    deployment = Deployment(tmp_path, str(tmp_path / "lease"))
    watcher: PrimaryWatcher | None = None
    stop_writing = threading.Event()
    acknowledged: list[tuple[str, str]] = []  # (entity, instance that acknowledged it)
    refusals: list[str] = []
    try:
        deployment.start("a")
        deployment.start("b", "--backup-role", "standby")
        deployment.start("c", "--backup-role", "standby")
        deployment.connect()
        watcher = PrimaryWatcher(deployment.bases)
        watcher.wait_for(lambda p: p == {"a"}, "a to be the primary", 30)

        def writer() -> None:
            # A client that writes to whichever instance is the primary (as a load balancer
            # checking /primary would send it), and retries what was refused.
            with httpx.Client(headers={"X-API-Key": API_KEY}, timeout=30) as client:
                n = 0
                while not stop_writing.is_set():
                    primaries = watcher.primaries() if watcher else frozenset()
                    if len(primaries) != 1:
                        time.sleep(0.05)
                        continue
                    (name,) = primaries
                    entity = f"Writer{n:03d}"
                    try:
                        answer = client.post(f"{deployment.bases[name]}/documents/text", json={
                            "text": f"[[{entity}]] works at [[Stream Co]].", "file_source": f"w{n}.txt"})
                    except httpx.HTTPError as error:
                        refusals.append(f"{name}: {error}")
                        continue
                    if answer.status_code == 200:
                        acknowledged.append((entity, name))
                        n += 1
                    else:
                        refusals.append(f"{name}: {answer.status_code} {answer.text[:200]}")
                        time.sleep(0.1)
                    time.sleep(0.15)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        eventually(lambda: len(acknowledged) >= 5, "some inserts on a")
        a = deployment.clients["a"]
        began = time.monotonic()
        done = a.post("/recovery/switchover?wait=true", json={"candidate": "b"}, timeout=300)
        took = time.monotonic() - began
        assert done.status_code == 200, done.text
        report = done.json()["result"]
        assert report["ok"] and report["candidate"] == "b", report
        watcher.wait_for(lambda p: p == {"b"}, "b to be the primary", 10)
        eventually(lambda: any(n == "b" for _, n in acknowledged), "inserts to go on on b")
        stop_writing.set()
        thread.join(30)
        print(f"switchover: {took:.2f} s ({report['took_seconds']} s in the report, drain "
              f"{report['drain_seconds']} s); {len(acknowledged)} inserts acknowledged "
              f"({sum(1 for _, n in acknowledged if n == 'a')} by a), {len(refusals)} refused and retried")
        # Every insert acknowledged, by a before or b after, is answered by b.
        b = deployment.clients["b"]

        def settled() -> bool:
            status = b.get("/documents/pipeline_status").json()
            counts = b.get("/documents/status_counts").json().get("status_counts", {})
            return not status["busy"] and not any(counts.get(s) for s in ("pending", "processing", "preprocessed"))

        eventually(settled, "b's pipeline to finish", 120)
        lost = [(e, n) for e, n in acknowledged if not exists(b, e)]
        assert not lost, f"lost on the switchover: {lost}"
        assert any("switchover_in_progress" in r or "read_only_standby" in r for r in refusals), refusals
        # a is b's standby now, at b's epoch, and follows it.
        assert role(a)["role"] == "standby" and role(a)["epoch"] == 1
        last = acknowledged[-1][0]
        eventually(lambda: exists(a, last), "a to follow b", 60)
        eventually(lambda: role(deployment.clients["c"])["epoch"] == 1, "c to follow b")
        status = b.get("/recovery/status").json()
        assert status["acting_as"] == "primary" and status["epoch"] == 1, status
        assert status["lease"]["holder"] == "b" and status["lease"]["holding"], status["lease"]
        last_switchover = a.get("/recovery/status").json()["last_switchover"]
        assert last_switchover["ok"] is True and last_switchover["candidate"] == "b", last_switchover

        # Bad requests change nothing: an unknown candidate, a switchover asked of a standby,
        # a manual failover while the primary holds the lease, a promotion of the primary.
        c = deployment.clients["c"]
        unknown = b.post("/recovery/switchover?wait=true", json={"candidate": "nobody"})
        assert unknown.status_code == 422 and "nobody" in unknown.json()["error"]["message"], unknown.text
        assert b.post("/recovery/switchover", json={}).status_code == 422
        not_primary = c.post("/recovery/switchover?wait=true", json={"candidate": "a"})
        assert not_primary.status_code == 409 and not_primary.json()["error"]["kind"] == "switchover_failed"
        point = b.post("/recovery/checkpoint", json={"description": "while b is primary"}).json()
        eventually(lambda: c.get(f"/recovery/checkpoints/{point['checkpoint_id']}").status_code == 200,
                   "the point to reach c")
        held = c.post(f"/recovery/checkpoints/{point['checkpoint_id']}/failover?wait=true")
        assert held.status_code == 409 and held.json()["error"]["kind"] == "lease_held", held.text
        assert "holds the lease" in held.json()["error"]["message"]
        promote = b.post("/recovery/promote", json={"checkpoint_id": point["checkpoint_id"], "from_epoch": 0})
        assert promote.status_code == 409 and promote.json()["error"]["kind"] == "already_primary", promote.text
        watcher.wait_for(lambda p: p == {"b"}, "b still the one primary", 5)

        # Failback: the same switchover the other way, from the command line.
        cli = subprocess.run(["lightrag-backup", "recovery", "switchover", "a", "--server", deployment.bases["b"],
                              "--api-key", API_KEY], capture_output=True, text=True, timeout=300)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert "switchover to a done" in cli.stdout, cli.stdout
        watcher.wait_for(lambda p: p == {"a"}, "a to be the primary again", 10)
        assert role(b)["role"] == "standby" and role(a)["epoch"] == 2
        shown = subprocess.run(["lightrag-backup", "recovery", "lease"], capture_output=True, text=True, timeout=60,
                               env={**os.environ, "LIGHTRAG_RECOVERY_LEASE_URL": deployment.lease_url})
        assert shown.returncode == 0 and "held by a" in shown.stdout and "epoch 2" in shown.stdout, shown.stdout
        refused = subprocess.run(["lightrag-backup", "recovery", "switchover", "c", "--server", deployment.bases["b"],
                                  "--api-key", API_KEY], capture_output=True, text=True, timeout=300)
        assert refused.returncode != 0 and "switchover_failed" in refused.stderr, refused.stdout + refused.stderr
    finally:
        stop_writing.set()
        if watcher is not None:
            watcher.stop()
        deployment.close()


def test_a_lease_timing_that_breaks_the_rule_is_refused_at_start(tmp_path: Path):
    (tmp_path / "graphs").mkdir()
    subprocess.run(["lightrag-backup", "--repo", str(tmp_path / "repo"), "init"], check=True, capture_output=True)
    env = {**os.environ, "LIGHTRAG_RECOVERY_LEASE_URL": str(tmp_path / "lease"),
           "LIGHTRAG_RECOVERY_LEASE_TTL_SECONDS": "20", "LIGHTRAG_RECOVERY_LEASE_RENEW_SECONDS": "10"}
    started = subprocess.run(["lightrag-backup", "--repo", str(tmp_path / "repo"), "--catalog",
                              str(tmp_path / "catalog.sqlite3"), "serve", "--graphs-dir", str(tmp_path / "graphs"),
                              "--port", "0"], capture_output=True, text=True, timeout=60, env=env)
    assert started.returncode != 0
    assert "renew + 2 * timeout + margin <= ttl" in started.stderr and "10 + 2 * 5 + 5 = 25 > 20" in started.stderr, \
        started.stderr


def test_a_standby_defers_to_a_standby_holding_a_newer_state(tmp_path: Path):
    """Two standbys' keepers over one lease folder, each over its own repository: c holds an
    older snapshot of the graph than b. When the lease has expired, c defers to b (and says
    so) until b has been quiet for two TTLs; b does not defer to c."""
    import asyncio
    import shutil

    from helpers import build

    from lightrag.backup import BackupManager
    from lightrag.backup.storage import LocalBackupStorage
    from lightrag.recovery import DisasterRecoveryManager
    from lightrag.recovery.lease import LeaseKeeper, LeaseSettings

    build(tmp_path / "graph", 1, seed=71)
    shutil.copytree(tmp_path / "graph", tmp_path / "graph-c")
    managers = {name: BackupManager(LocalBackupStorage(tmp_path / f"repo-{name}"), tmp_path / f"{name}.sqlite3")
                for name in ("b", "c")}
    managers["c"].register_graph("live", tmp_path / "graph-c")
    managers["c"].get_graph("live").create_snapshot()  # the older state
    managers["b"].register_graph("live", tmp_path / "graph")
    managers["b"].get_graph("live").create_snapshot()
    settings = LeaseSettings(url=str(tmp_path / "lease"), ttl=6, renew=1, timeout=1.5, margin=1.5, auto_failover=True)

    async def run() -> None:
        keepers = {}
        for name, manager in managers.items():
            manager.catalog.set_state("role", "standby")
            keepers[name] = LeaseKeeper(DisasterRecoveryManager(manager), settings, name=name)
            await keepers[name]._publish()
        assert await keepers["c"]._should_take_over() is False
        assert keepers["c"].history[-1]["event"] == "deferring" and "b holds a newer state" in \
            keepers["c"].history[-1]["message"]
        assert await keepers["b"]._should_take_over() is True
        # b gone quiet past two TTLs (its record's time): c goes after all.
        keepers["c"]._deferring = ("b", keepers["c"]._deferring[1] - 2 * settings.ttl)
        assert await keepers["c"]._should_take_over() is True

    asyncio.run(run())


def test_lease_settings_follow_the_rule():
    from lightrag.backup.errors import InvalidInputError
    from lightrag.recovery.lease import LeaseSettings

    assert LeaseSettings(url="/tmp/x").ttl == 30  # the defaults keep the rule: 10 + 2 * 5 + 5 <= 30
    LeaseSettings(url="/tmp/x", ttl=6, renew=1, timeout=1.5, margin=1.5)
    for bad in ({"ttl": 24.9}, {"renew": 0}, {"margin": -1}, {"timeout": 12}):
        with pytest.raises(InvalidInputError):
            LeaseSettings(url="/tmp/x", **bad)
    with pytest.raises(InvalidInputError):
        LeaseSettings(url=" ")
