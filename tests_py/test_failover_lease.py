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

import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from fault_proxy import FaultProxy
from test_mounted_server import API_KEY, answers, exists, insert, start, stop

#: Short lease timings for tests: renew + 2 * timeout + margin = 1 + 3 + 1.5 <= 6.
TIMING = {"LIGHTRAG_RECOVERY_LEASE_TTL_SECONDS": "6", "LIGHTRAG_RECOVERY_LEASE_RENEW_SECONDS": "1",
          "LIGHTRAG_RECOVERY_LEASE_TIMEOUT_SECONDS": "1.5", "LIGHTRAG_RECOVERY_LEASE_MARGIN_SECONDS": "1.5"}
TTL = 6.0


def eventually(check: Callable[[], Any], what: str, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


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
        other_name = "c" if new_name == "b" else "b"
        new, other = deployment.clients[new_name], deployment.clients[other_name]
        print(f"automatic failover: SIGKILL -> {new_name} answers /primary 200 in {time.monotonic() - killed:.2f} s "
              f"(watcher: {took:.2f} s)")
        status = new.get("/recovery/status").json()
        assert status["acting_as"] == "primary" and status["epoch"] == 1, status
        assert status["lease"]["holder"] == new_name and status["lease"]["epoch"] == 1
        assert status["last_failover"]["ok"], status["last_failover"]
        # LightRAG on the new primary takes writes and answers from the graph it held.
        assert exists(new, "Dana Lee") and not exists(new, "Zed Quinn")
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
        # Pushes from the old primary would be refused everywhere: it pushes nothing.
        assert role(other)["epoch"] == 1 and other.get("/primary").status_code == 503
        watcher.wait_for(lambda p: p == {new_name}, "one primary", 5)
    finally:
        if watcher is not None:
            watcher.stop()
        for proxy in proxies.values():
            proxy.close()
        deployment.close()
