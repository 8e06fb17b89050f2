"""Automatic failover and switchover benchmark: two ``lightrag-backup-server`` processes
(LightRAG's server with our routes; stub LLM and embeddings on loopback) over one lease folder,
one LightRAG graph, in one run.

    python bench/failover.py --entities 20000 --runs 10 --out BENCHMARKS.md

The primary starts with ``version-00`` of the graphs ``run.py`` builds; the standby receives it
by continuous replication and applies it. Then:

- **automatic failover**, ``--runs`` times: the primary is killed with SIGKILL; measured are
  the time until the standby answers ``/primary`` 200 and until LightRAG on it accepts an
  insert (``POST /documents/text`` answered 200). The killed one is restarted (it comes back
  as the new primary's standby and is caught up) before the next run kills the other way.
- **switchover**, ``--runs`` times, back and forth, while a client inserts a document every
  0.2 s into whichever instance answers ``/primary``: the switchover's own time, the window
  in which the client's inserts were refused, and how many acknowledged inserts the new
  primary does not answer afterwards (RPO; must be 0).

Lease timing: TTL ``--ttl`` (default 6 s, renew 1 s, timeout 1.5 s, margin 1.5 s: the
test suite's); a failover takes about one TTL plus the promotion, so with the defaults of
production (TTL 30 s) add 24 s. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
import encryption  # noqa: E402
import run  # noqa: E402

KEY = "bench-failover-key"
LAUNCHER = Path(__file__).resolve().parents[1] / "tests_py" / "mounted_server.py"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Instance:
    def __init__(self, root: Path, name: str, lease: Path, ttl: float, dim: int) -> None:
        self.root, self.name, self.port = root / name, name, free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        self.base = f"http://127.0.0.1:{self.port}"
        renew, timeout = max(ttl / 6, 0.5), max(ttl / 4, 0.5)
        self.env = {**os.environ, "WORKING_DIR": str(self.root / "rag_storage"), "INPUT_DIR": str(self.root / "inputs"),
                    "PORT": str(self.port), "LIGHTRAG_API_KEY": KEY, "LOG_DIR": str(self.root),
                    "EMBEDDING_DIM": str(dim),
                    "LIGHTRAG_RECOVERY_LEASE_URL": str(lease), "LIGHTRAG_RECOVERY_AUTO_FAILOVER": "true",
                    "LIGHTRAG_RECOVERY_LEASE_TTL_SECONDS": str(ttl),
                    "LIGHTRAG_RECOVERY_LEASE_RENEW_SECONDS": str(renew),
                    "LIGHTRAG_RECOVERY_LEASE_TIMEOUT_SECONDS": str(timeout),
                    "LIGHTRAG_RECOVERY_LEASE_MARGIN_SECONDS": str(ttl - renew - 2 * timeout),
                    "LIGHTRAG_RECOVERY_INSTANCE_NAME": name, "LIGHTRAG_REPLICATION_ENABLED": "true",
                    "LIGHTRAG_REPLICATION_APPLY": "*", "LIGHTRAG_REPLICATION_CONTINUOUS": "*",
                    "LIGHTRAG_REPLICATION_CONTINUOUS_POLL_SECONDS": "0.3",
                    "LIGHTRAG_REPLICATION_CATCH_UP_SECONDS": "3",
                    "LIGHTRAG_RECOVERY_CHECKPOINT_INTERVAL_HOURS": "0",
                    "LIGHTRAG_RECOVERY_HEALTH_CHECK_INTERVAL_MINUTES": "0"}
        self.process: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=self.base, headers={"X-API-Key": KEY}, timeout=300)

    def start(self, *extra: str) -> None:
        log = open(self.root / "server.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--backup-repo", str(self.root / "repo"), "--backup-graph-id", "live",
             "--backup-catalog", str(self.root / "catalog.sqlite3"), *extra],
            cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 600
        while True:
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start: see {self.root / 'server.log'}")
            time.sleep(0.2)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=60)

    def is_primary(self) -> bool:
        try:
            return httpx.get(f"{self.base}/primary", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def exists(self, entity: str) -> bool:
        answer = self.client.get("/graph/entity/exists", params={"name": entity})
        return answer.status_code == 200 and bool(answer.json()["exists"])

    def settled(self) -> bool:
        status = self.client.get("/documents/pipeline_status").json()
        counts = self.client.get("/documents/status_counts").json().get("status_counts", {})
        return not status["busy"] and not any(counts.get(s) for s in ("pending", "processing", "preprocessed"))

    def close(self) -> None:
        self.client.close()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=60)


def wait(check: Any, what: str, seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def insert(instance: Instance, entity: str, n: int) -> int:
    return instance.client.post("/documents/text", json={"text": f"[[{entity}]] works at [[Bench Co]].",
                                                          "file_source": f"{entity}-{n}.txt"}).status_code


def failover_runs(instances: dict[str, Instance], runs: int) -> list[dict[str, float]]:
    results = []
    for number in range(runs):
        primary = next(i for i in instances.values() if i.is_primary())
        standby = next(i for i in instances.values() if i is not primary)
        marker = f"Before{number:02d}"
        assert insert(primary, marker, number) == 200
        wait(lambda: standby.exists(marker), "the standby to apply the last insert")
        killed = time.monotonic()
        primary.kill()
        wait(standby.is_primary, "the standby to take over", 120)
        promoted = time.monotonic()
        n = 0
        while insert(standby, f"After{number:02d}", n) != 200:
            n += 1
            time.sleep(0.05)
        accepted = time.monotonic()
        results.append({"primary": promoted - killed, "writes": accepted - killed})
        print(f"failover {number + 1}: /primary after {promoted - killed:.2f} s, writes after "
              f"{accepted - killed:.2f} s", flush=True)
        primary.start()  # back as the new primary's standby
        wait(lambda: primary.exists(f"After{number:02d}"), "the old primary to catch up")
    return results


def switchover_runs(instances: dict[str, Instance], runs: int) -> list[dict[str, float]]:
    results = []
    for number in range(runs):
        primary = next(i for i in instances.values() if i.is_primary())
        candidate = next(i for i in instances.values() if i is not primary)
        acknowledged: list[tuple[str, Instance]] = []
        accepted_at: list[tuple[float, Instance]] = []
        stop = threading.Event()

        def writer() -> None:
            n = 0
            while not stop.is_set():
                target = primary if primary.is_primary() else candidate
                entity = f"Switch{number:02d}x{n:03d}"
                status = insert(target, entity, n)
                if status == 200:
                    acknowledged.append((entity, target))
                    accepted_at.append((time.monotonic(), target))
                    n += 1
                time.sleep(0.2)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        wait(lambda: len(acknowledged) >= 3, "inserts before the switchover")
        began = time.monotonic()
        job = primary.client.post("/recovery/switchover?wait=true", json={"candidate": candidate.name}).json()
        took = time.monotonic() - began
        assert job.get("state") == "succeeded" and job["result"]["ok"], job
        wait(lambda: any(t is candidate for _, t in acknowledged), "inserts on the new primary")
        stop.set()
        thread.join(60)
        wait(candidate.settled, "the new primary's pipeline")
        lost = [e for e, _ in acknowledged if not candidate.exists(e)]
        # Writes unavailable: from the old primary's last accepted insert to the new one's first.
        last_old = max(t for t, target in accepted_at if target is primary)
        first_new = min(t for t, target in accepted_at if target is candidate)
        window = first_new - last_old
        results.append({"took": took, "refused_window": window, "lost": float(len(lost)),
                        "drain": float(job["result"]["drain_seconds"]),
                        "acknowledged": float(len(acknowledged))})
        print(f"switchover {number + 1} ({primary.name} -> {candidate.name}): {took:.2f} s, inserts refused for "
              f"{window:.2f} s, {len(acknowledged)} acknowledged, {len(lost)} lost", flush=True)
    return results


def report(args: argparse.Namespace, graph_mb: float, failovers: list[dict[str, float]],
           switchovers: list[dict[str, float]]) -> str:
    def stats(rows: list[dict[str, float]], key: str) -> str:
        values = [r[key] for r in rows]
        return f"{statistics.median(values):.2f} s | {max(values):.2f} s"

    lost = sum(int(r["lost"]) for r in switchovers)
    acknowledged = sum(int(r["acknowledged"]) for r in switchovers)
    lines = [f"## Automatic failover and switchover: {graph_mb:,.0f} MB graph ({args.entities} entities), "
             f"{args.runs} runs each", "",
             f"`python bench/failover.py --entities {args.entities} --runs {args.runs} --ttl {args.ttl:g}` "
             f"({time.strftime('%Y-%m-%d')}); two `lightrag-backup-server` processes, a lease folder, continuous "
             f"replication; lease TTL {args.ttl:g} s.", "",
             "| | median | max |", "|---|---|---|",
             f"| SIGKILL of the primary -> the standby answers `/primary` 200 | {stats(failovers, 'primary')} |",
             f"| SIGKILL of the primary -> LightRAG on the new primary accepts an insert | {stats(failovers, 'writes')} |",
             f"| switchover (request -> done) | {stats(switchovers, 'took')} |",
             f"| switchover: no insert accepted (old primary's last -> new primary's first, a client following "
             f"`/primary`, one insert every 0.2 s) | {stats(switchovers, 'refused_window')} |",
             "",
             f"- Automatic failover is bounded by the lease: a standby takes it once it has seen it unchanged for the "
             f"TTL ({args.ttl:g} s here), then promotes (warm: it applied every snapshot). With the production "
             f"defaults (TTL 30 s) add {30 - args.ttl:g} s.",
             f"- Switchover RPO: {lost} of {acknowledged} acknowledged inserts lost over {args.runs} switchovers "
             "(the primary drains its pipeline, takes a final point and pushes it before handing the lease over).",
             f"- Of a switchover, the drain (LightRAG finishing every document it accepted before writes stopped) took "
             f"{statistics.median(r['drain'] for r in switchovers):.2f} s (median); the final point, the push and the "
             f"candidate's promotion {statistics.median(r['took'] - r['drain'] for r in switchovers):.2f} s."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--ttl", type=float, default=6.0)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lightrag-backup-bench")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)
    encryption.provision(args.work)
    args.work.mkdir(parents=True, exist_ok=True)
    graph = run.prepare_versions(args.work, args.entities, 1, args.dim)[0]
    graph_mb = run.folder_size(graph) / 1e6
    root = Path(tempfile.mkdtemp(prefix="failover-", dir=args.work))
    instances = {name: Instance(root, name, root / "lease", args.ttl, args.dim) for name in ("a", "b")}
    try:
        shutil.copytree(graph, instances["a"].root / "rag_storage")
        instances["a"].start()
        instances["b"].start("--backup-role", "standby")
        for source, target in (("a", "b"), ("b", "a")):
            made = instances[source].client.post("/replication/targets", json={
                "name": target, "base_url": instances[target].base, "api_key": KEY})
            assert made.status_code == 201, made.text
        wait(instances["a"].is_primary, "a to hold the lease")
        assert insert(instances["a"], "Seed", 0) == 200
        wait(lambda: instances["b"].exists("Seed"), "the standby to apply the graph")
        failovers = failover_runs(instances, args.runs)
        switchovers = switchover_runs(instances, args.runs)
    finally:
        for instance in instances.values():
            instance.close()
    text = report(args, graph_mb, failovers, switchovers)
    run.write_section(args.out, f"failover, {args.entities} entities", text)
    print(text)
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
