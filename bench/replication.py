"""Replication benchmark: lightrag-backup pushing to a standby instance and copying to a
repository target, against ``restic copy`` between two repositories and ``rsync`` of the
working dir, on the same LightRAG graph, in one run.

    python bench/replication.py --entities 20000 --rounds 2 --out BENCHMARKS.md

Uses the graph versions ``run.py`` builds (``version-00`` and its changed ``version-01``,
built here when missing). Each round, in a rotated order: the first sync of version-00 (our
push to a fresh ``serve --role standby`` process on loopback, our copy into a fresh ``file://``
repository, ``restic copy`` into a fresh repository with the source's chunker parameters, and
``rsync -a`` into an empty folder), then the change step to version-01 (the snapshot or
backup on the primary side is taken first and not timed; what is timed is what the transfer
adds). Bytes sent: ours from the engine's report, restic's as what the target repository
grew by, rsync's ``Total bytes sent`` (with ``--no-whole-file``: the delta algorithm, as rsync
runs between two machines; locally it would copy whole files). The time from the snapshot's
commit on the primary to its commit on the standby is the engine's transfer duration. Peak
RSS: the pushing CLI's from ``/usr/bin/time``, the standby's from its ``VmHWM``. Then the RPO
of continuous mode under a steady insert load (:func:`continuous_rpo`). Nothing here asserts a
timing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import encryption  # noqa: E402
import lightrag_graph  # noqa: E402
import run  # noqa: E402

KEY = "bench-standby-key"
STEPS = ["first sync", "change step"]
TOOLS = ["push to standby", "copy to repository", "restic copy", "rsync"]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Ours:
    """A primary repository with the graph's snapshots, a standby server and a repository target."""

    def __init__(self, work: Path, cli: str) -> None:
        self.work, self.cli = work / "repl-ours", cli
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.base = [cli, "--repo", str(self.work / "primary"), "--catalog", str(self.work / "p.sqlite3"),
                     "--no-progress"]
        subprocess.run([*self.base, "init"], check=True, capture_output=True)
        (self.work / "s-graphs").mkdir()
        subprocess.run([cli, "--repo", str(self.work / "standby"), "init"], check=True, capture_output=True)
        self.port = free_port()
        # The server needs FastAPI and uvicorn, which the operator venv of the CLI lacks.
        self.standby = subprocess.Popen(
            [sys.executable, "-m", "lightrag.backup.cli", "--repo", str(self.work / "standby"), "--catalog", str(self.work / "s.sqlite3"), "serve",
             "--graphs-dir", str(self.work / "s-graphs"), "--port", str(self.port), "--api-key", KEY,
             "--role", "standby", "--no-scheduler"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_up()
        for name, url in (("standby", f"http://127.0.0.1:{self.port}"),
                          ("offsite", f"file://{self.work / 'offsite'}")):
            subprocess.run([*self.base, "target", "add", name, url, "--api-key", KEY], check=True, capture_output=True)

    def _wait_up(self) -> None:
        import urllib.request

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the standby did not start")

    def snapshot(self, graph: Path) -> None:
        subprocess.run([*self.base, "snapshot", "-w", str(graph), "-g", "bench"], check=True, capture_output=True)

    def replicate(self, target: str) -> tuple[run.Measure, int, float]:
        measure = run.timed([*self.base, "--json", "replicate", "-g", "bench", "--target", target], dict(os.environ))
        result = json.loads(measure.stdout)["bench"][target]
        assert result["status"] == "completed", result
        return measure, int(result["bytes_sent"]), result["duration_ms"] / 1000

    def close(self) -> float:
        rss = peak_rss_mb(self.standby.pid)
        self.standby.terminate()
        self.standby.wait(timeout=60)
        shutil.rmtree(self.work, ignore_errors=True)
        return rss


class Restic:
    def __init__(self, work: Path) -> None:
        self.work = work / "repl-restic"
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.env = {**os.environ, "RESTIC_PASSWORD": "bench", "RESTIC_FROM_PASSWORD": "bench",
                    "RESTIC_CACHE_DIR": str(self.work / "cache")}
        self.source, self.target = str(self.work / "a"), str(self.work / "b")
        subprocess.run(["restic", "-r", self.source, "init", "-q"], env=self.env, check=True, capture_output=True)
        # The target shares the source's chunker parameters, or nothing would deduplicate.
        subprocess.run(["restic", "-r", self.target, "init", "-q", "--from-repo", self.source,
                        "--copy-chunker-params"], env=self.env, check=True, capture_output=True)

    def backup(self, graph: Path) -> None:
        subprocess.run(["restic", "-r", self.source, "backup", "-q", str(graph)], env=self.env, check=True,
                       capture_output=True)

    def copy(self) -> tuple[run.Measure, int]:
        before = run.folder_size(Path(self.target))
        measure = run.timed(["restic", "-r", self.target, "copy", "-q", "--from-repo", self.source], self.env)
        return measure, run.folder_size(Path(self.target)) - before

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


class Rsync:
    def __init__(self, work: Path) -> None:
        self.target = work / "repl-rsync"
        shutil.rmtree(self.target, ignore_errors=True)
        self.target.mkdir(parents=True)

    def sync(self, graph: Path) -> tuple[run.Measure, int]:
        measure = run.timed(["rsync", "-a", "--delete", "--no-whole-file", "--stats", f"{graph}/",
                             f"{self.target}/"], dict(os.environ))
        sent = next(line for line in measure.stdout.splitlines() if line.startswith("Total bytes sent"))
        return measure, int(sent.split(":")[1].strip().replace(",", ""))

    def close(self) -> None:
        shutil.rmtree(self.target, ignore_errors=True)


def one_round(work: Path, cli: str, versions: list[Path], order: list[str]) -> dict[str, dict[str, tuple]]:
    """Every tool's first sync and change step; per tool and step: (seconds, bytes, rss, extra)."""
    graph = work / "graph" / "rag_storage"
    out: dict[str, dict[str, tuple]] = {}
    for tool in order:
        run.load(versions[0], graph)
        steps: dict[str, tuple] = {}
        if tool in ("push to standby", "copy to repository"):
            ours = Ours(work, cli)
            target = "standby" if tool == "push to standby" else "offsite"
            ours.snapshot(graph)
            measure, sent, engine = ours.replicate(target)
            steps["first sync"] = (measure.seconds, sent, measure.rss_mb, engine)
            run.load(versions[1], graph)
            ours.snapshot(graph)
            measure, sent, engine = ours.replicate(target)
            steps["change step"] = (measure.seconds, sent, measure.rss_mb, engine)
            standby_rss = ours.close()
            if tool == "push to standby":
                steps["standby peak RSS"] = (0.0, 0, standby_rss, 0.0)
        elif tool == "restic copy":
            restic = Restic(work)
            restic.backup(graph)
            measure, sent = restic.copy()
            steps["first sync"] = (measure.seconds, sent, measure.rss_mb, measure.seconds)
            run.load(versions[1], graph)
            restic.backup(graph)
            measure, sent = restic.copy()
            steps["change step"] = (measure.seconds, sent, measure.rss_mb, measure.seconds)
            restic.close()
        else:
            rsync = Rsync(work)
            measure, sent = rsync.sync(graph)
            steps["first sync"] = (measure.seconds, sent, measure.rss_mb, measure.seconds)
            run.load(versions[1], graph)
            measure, sent = rsync.sync(graph)
            steps["change step"] = (measure.seconds, sent, measure.rss_mb, measure.seconds)
            rsync.close()
        out[tool] = steps
    return out


def report(rounds: list[dict[str, dict[str, tuple]]], args: argparse.Namespace, graph_mb: float,
           continuous: dict[str, float]) -> str:
    def median(tool: str, step: str, index: int) -> float:
        return statistics.median(r[tool][step][index] for r in rounds)

    lines = [f"## Replication: {graph_mb:,.0f} MB graph ({args.entities} entities), {len(rounds)} rounds",
             "", f"`python bench/replication.py --entities {args.entities} --rounds {args.rounds}` "
             f"({time.strftime('%Y-%m-%d')}, {run.version_of(['restic', 'version'])}, "
             f"{run.version_of(['rsync', '--version'])}); medians; wall time includes each command's start.", "",
             "| | first sync | bytes | change step | bytes | commit -> standby commit | peak RSS |",
             "|---|---|---|---|---|---|---|"]
    for tool in TOOLS:
        rss = max(median(tool, s, 2) for s in STEPS)
        engine = f"{median(tool, 'change step', 3):.2f} s" if tool in ("push to standby", "copy to repository") else ""
        lines.append(f"| {tool} | {median(tool, 'first sync', 0):.2f} s | {median(tool, 'first sync', 1) / 1e6:.1f} MB "
                     f"| {median(tool, 'change step', 0):.2f} s | {median(tool, 'change step', 1) / 1e6:.1f} MB "
                     f"| {engine} | {rss:.0f} MB |")
    lines.append("")
    push, copy_ = "push to standby", "copy to repository"
    for ours in (push, copy_):
        lines.append(f"- {ours}: first sync {median('restic copy', 'first sync', 0) / median(ours, 'first sync', 0):.1f}x "
                     f"faster than restic copy; change step sends "
                     f"{median('restic copy', 'change step', 1) / max(median(ours, 'change step', 1), 1):.1f}x fewer bytes "
                     f"than restic copy and {median('rsync', 'change step', 1) / max(median(ours, 'change step', 1), 1):.1f}x "
                     f"fewer than rsync.")
    lines.append(f"- The standby server's peak RSS over a round: {median(push, 'standby peak RSS', 2):.0f} MB.")
    lines.append(f"- Continuous mode under a steady insert load ({continuous['inserts']} batches of 50 entities, one "
                 f"every {continuous['gap']:.0f} s after the previous one was written; LightRAG itself took "
                 f"{continuous['insert_s']:.1f} s per batch to write the graph): RPO (batch written on the primary "
                 f"-> a snapshot holding it on the standby) median {continuous['rpo_median']:.2f} s, "
                 f"max {continuous['rpo_max']:.2f} s.")
    return "\n".join(lines) + "\n"


def continuous_rpo(work: Path, version: Path, inserts: int, gap: float, dim: int) -> dict[str, float]:
    """RPO in continuous mode under a steady insert load: a LightRAG instance (this process)
    inserts a small batch into the graph's folder every ``gap`` seconds while a ``serve``
    primary watches it continuously and pushes to a ``serve --role standby``. For each batch,
    the time from LightRAG having written it (``ainsert_custom_kg`` returned) to the standby
    holding a snapshot taken after that (a snapshot's time is set once its pass saw the files
    unchanged throughout, so a later time means the batch is in it)."""
    import asyncio
    import threading
    import urllib.request
    from datetime import datetime

    from lightrag.backup.offline_graph import new_rag

    root = work / "repl-continuous"
    shutil.rmtree(root, ignore_errors=True)
    (root / "p-graphs").mkdir(parents=True)
    (root / "s-graphs").mkdir()
    shutil.copytree(version, root / "p-graphs" / "bench")
    servers = []

    def serve(name: str, *extra: str, env: dict[str, str]) -> int:
        repo = root / f"{name}-repo"
        subprocess.run([sys.executable, "-m", "lightrag.backup.cli", "--repo", str(repo), "init"], check=True,
                       capture_output=True)
        port = free_port()
        servers.append(subprocess.Popen(
            [sys.executable, "-m", "lightrag.backup.cli", "--repo", str(repo), "--catalog", str(root / f"{name}.db"),
             "serve", "--graphs-dir", str(root / f"{name}-graphs"), "--port", str(port), "--api-key", KEY,
             "--no-scheduler", *extra], env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                return port
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start") from None
                time.sleep(0.2)

    def call(port: int, method: str, path: str, body: object = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                         headers={"X-API-Key": KEY, "content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as answer:
            return json.loads(answer.read())

    try:
        standby = serve("s", "--role", "standby", env={})
        primary = serve("p", env={"LIGHTRAG_REPLICATION_CONTINUOUS": "bench"})
        call(primary, "POST", "/replication/targets", {"name": "standby", "base_url": f"http://127.0.0.1:{standby}",
                                                       "api_key": KEY})
        seen: dict[str, float] = {}  # snapshot time (epoch s) -> when the standby first listed it
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                try:
                    for snapshot in call(standby, "GET", "/backup/graphs/bench/snapshots"):  # type: ignore[union-attr]
                        taken = datetime.fromisoformat(snapshot["timestamp"]).timestamp()
                        seen.setdefault(f"{taken}", time.time())
                except OSError:
                    pass  # the graph has no snapshot there yet
                time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        deadline = time.monotonic() + 300
        while not seen:  # the initial sync of the whole graph
            assert time.monotonic() < deadline, "the standby never got the graph"
            time.sleep(0.2)
        written: list[float] = []
        durations: list[float] = []

        async def load() -> None:
            rag = await new_rag(root / "p-graphs" / "bench", embedding_dim=dim)
            try:
                for number in range(inserts):
                    started = time.monotonic()
                    await rag.ainsert_custom_kg(lightrag_graph.custom_kg(10_000_000 + number * 100, 50, number))
                    durations.append(time.monotonic() - started)
                    written.append(time.time())
                    await asyncio.sleep(gap)
            finally:
                await rag.finalize_storages()

        asyncio.run(load())
        rpo: list[float] = []
        for at in written:
            deadline = time.monotonic() + 120
            while True:
                covering = [arrived for taken, arrived in list(seen.items()) if float(taken) >= at]
                if covering:
                    rpo.append(min(covering) - at)
                    break
                assert time.monotonic() < deadline, "a batch never reached the standby"
                time.sleep(0.1)
        stop.set()
        watcher.join()
        return {"inserts": inserts, "gap": gap, "insert_s": statistics.median(durations),
                "rpo_median": statistics.median(rpo), "rpo_max": max(rpo)}
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lightrag-backup-bench")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--inserts", type=int, default=8, help="insert batches of the continuous-mode RPO run")
    parser.add_argument("--gap", type=float, default=2.0, help="seconds between two insert batches")
    args = parser.parse_args(argv)
    encryption.provision(args.work)
    args.work.mkdir(parents=True, exist_ok=True)
    cli = run.operator_venv(args.work)
    versions = run.prepare_versions(args.work, args.entities, 1, args.dim)
    graph_mb = run.folder_size(versions[0]) / 1e6
    rounds = []
    for number in range(args.rounds):
        order = TOOLS[number % len(TOOLS):] + TOOLS[:number % len(TOOLS)]
        rounds.append(one_round(args.work, cli, versions, order))
        print(f"round {number + 1} done", flush=True)
    continuous = continuous_rpo(args.work, versions[0], args.inserts, args.gap, args.dim)
    text = report(rounds, args, graph_mb, continuous)
    run.write_section(args.out, f"replication, {args.entities} entities", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
