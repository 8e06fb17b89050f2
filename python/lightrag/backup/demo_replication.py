"""``lightrag-backup demo --replication``: a primary and a standby on loopback, offline.

Two ``lightrag-backup serve`` processes, each with its own encrypted local repository (one
master key, as an operator provisions a pair), the primary serving a small real LightRAG graph
built here. The primary replicates continuously to the standby, takes a recovery point, and is
killed with SIGKILL; the standby fails over to the point and is the primary, serving the graph.
Each step prints its time. Only the standard library speaks HTTP here; the servers need the
``server`` extra (FastAPI, uvicorn).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional

PRIMARY_KEY, STANDBY_KEY = "demo-primary-key", "demo-standby-key"


class DemoError(RuntimeError):
    """A step of the demo did not happen in time (the message says which, with the server's log)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _call(base: str, key: str, method: str, path: str, body: Any = None, timeout: float = 60) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"X-API-Key": key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - loopback only
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _until(check: Callable[[], Any], what: str, seconds: float, log: Optional[Path] = None) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = check()
        except (OSError, ValueError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
            raise DemoError(f"timed out waiting for {what}" + (f"; the server's log ends:\n{tail}" if tail else ""))
        time.sleep(0.1)


class _Server:
    """One ``lightrag-backup serve`` process over its own repository, catalog and graphs."""

    def __init__(self, root: Path, name: str, key: str, env: dict[str, str], *extra: str) -> None:
        self.root, self.name, self.key = root / name, name, key
        self.graphs = self.root / "graphs"
        self.graphs.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = self.root / "serve.log"
        command = [sys.executable, "-m", "lightrag.backup.cli", "--repo", str(self.root / "repo"),
                   "--catalog", str(self.root / "catalog.sqlite3")]
        subprocess.run([*command, "init"], check=True, capture_output=True, env=env)
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [*command, "serve", "--graphs-dir", str(self.graphs), "--port", str(self.port), "--api-key", key, *extra],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        _until(lambda: self.process.poll() is None and self.call("GET", "/health", timeout=1)[0] == 200,
               f"the {name} to start", 60, self.log)

    def call(self, method: str, path: str, body: Any = None, timeout: float = 60) -> tuple[int, Any]:
        return _call(self.base, self.key, method, path, body, timeout)

    def snapshots(self, graph_id: str) -> list[str]:
        status, listed = self.call("GET", f"/backup/graphs/{graph_id}/snapshots")
        return [s["snapshot_id"] for s in listed] if status == 200 else []

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def run_replication_demo(directory: Optional[str], *, as_json: bool = False, verbose: bool = False) -> int:
    """Run the replication demo (see the module documentation); 0 when every check held."""
    from .demo import throwaway_password
    from .display import quiet_lightrag_logs
    from .offline_graph import build_graph, entity_names
    from .storage import LocalBackupStorage

    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        print("demo --replication runs two servers: pip install 'lightrag-backup[server]'", file=sys.stderr)
        return 1
    quiet_lightrag_logs(verbose)
    base = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="lightrag-backup-demo-replication-"))
    steps: list[str] = []
    began = time.monotonic()

    def say(line: str) -> None:
        line = f"[{time.monotonic() - began:6.2f} s] {line}"
        steps.append(line)
        if not as_json:
            print(line, flush=True)

    password = throwaway_password(base)
    export = base / "key-export.json"
    if not export.exists():
        export.write_text(LocalBackupStorage(base / "key-holder", password=password).export_key())
        export.chmod(0o600)
    env = {**os.environ, "LIGHTRAG_BACKUP_PASSWORD": password, "LIGHTRAG_BACKUP_KEY_EXPORT_FILE": str(export),
           "LIGHTRAG_REPLICATION_CONTINUOUS": "*", "LIGHTRAG_REPLICATION_CONTINUOUS_POLL_SECONDS": "0.2",
           "LIGHTRAG_RECOVERY_CHECKPOINT_INTERVAL_HOURS": "0", "LIGHTRAG_RECOVERY_HEALTH_CHECK_INTERVAL_MINUTES": "0"}

    graph_dir = base / "primary" / "graphs" / "docs"

    async def build() -> None:
        rag = await build_graph(graph_dir, 4)
        await rag.finalize_storages()

    say(f"building a LightRAG graph offline in {graph_dir}")
    asyncio.run(build())
    servers: list[_Server] = []
    ok = False
    try:
        standby = _Server(base, "standby", STANDBY_KEY, env, "--role", "standby")
        servers.append(standby)
        primary = _Server(base, "primary", PRIMARY_KEY, env)
        servers.append(primary)
        say(f"started the standby ({standby.base}) and the primary ({primary.base}), each with its own "
            "encrypted repository under one master key")
        _until(lambda: primary.snapshots("docs"), "the primary's first snapshot", 60, primary.log)
        say("the primary snapshotted graph docs (it replicates continuously)")
        status, made = primary.call("POST", "/replication/targets",
                                    {"name": "standby", "base_url": standby.base, "api_key": STANDBY_KEY})
        if status != 201:
            raise DemoError(f"registering the standby failed: {made}")
        _until(lambda: standby.snapshots("docs"), "the snapshot on the standby", 60, primary.log)
        say("replicated to the standby: the chunks it lacked, checked on both sides")
        status, point = primary.call("POST", "/recovery/checkpoint", {"description": "demo", "created_by": "demo"})
        if status != 201:
            raise DemoError(f"the recovery point failed: {point}")
        point_id = point["checkpoint_id"]
        _until(lambda: any(p["checkpoint_id"] == point_id for p in standby.call("GET", "/recovery/checkpoints")[1]),
               "the recovery point on the standby", 60, primary.log)
        say(f"recovery point {point_id[:8]} taken on the primary and on the standby")
        expected = entity_names(graph_dir)

        os.kill(primary.process.pid, signal.SIGKILL)
        primary.process.wait(timeout=30)
        killed = time.monotonic()
        say("killed the primary (SIGKILL)")
        status, job = standby.call("POST", f"/recovery/checkpoints/{point_id}/failover")
        if status != 202:
            raise DemoError(f"the failover did not start: {job}")
        job = _until(lambda: (lambda j: j if j["state"] not in ("queued", "running") else None)(
            _call(standby.base, STANDBY_KEY, "GET", job["status_url"])[1]), "the failover", 120, standby.log)
        if job["state"] != "succeeded":
            raise DemoError(f"the failover failed: {job.get('error')}")
        report = job["result"]
        is_primary = standby.call("GET", "/primary")[0] == 200
        matches = entity_names(standby.graphs / "docs") == expected
        say(f"the standby failed over to the point in {time.monotonic() - killed:.2f} s (its own RTO "
            f"{report['rto_seconds']:.2f} s, epoch {report['epoch']['before']} -> {report['epoch']['after']}): "
            f"it is the primary: {is_primary}; its graph matches the primary's: {matches}")
        ok = bool(report.get("ok")) and is_primary and matches
    except DemoError as error:
        say(f"demo FAILED: {error}")
    finally:
        for server in servers:
            server.stop()
    if as_json:
        print(json.dumps({"ok": ok, "directory": str(base), "steps": steps}, indent=2))
    elif not ok:
        print("demo FAILED: see the lines above")
    return 0 if ok else 1


__all__ = ["run_replication_demo"]
