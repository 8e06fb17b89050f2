"""Database-backed graphs: lightrag-backup's records snapshots of a LightRAG graph kept in
PostgreSQL or Redis, beside the same graph in files, and beside the native tools an operator
would otherwise use (``pg_dump`` of LightRAG's tables, ``redis-cli --rdb``), in one run.

    python bench/databases.py --entities 20000 --change-rounds 3 --out BENCHMARKS.md

Needs the test servers (``bash scripts/test-servers.sh start``; the PostgreSQL and Redis of
``scripts/test-servers.sh env``). For each backend the graph is built in it by LightRAG
(``ainsert_custom_kg``, as ``run.py`` builds file graphs: same entities, same change steps),
then, timed in this process: the first snapshot of the live instance (and the pause it held
LightRAG's pipeline for), each change step's snapshot and the bytes it added to the
repository, and restores of the newest snapshot into a fresh workspace beside the graph
(PostgreSQL: the same tables) and into a fresh database (disaster recovery: tables of its own),
beside ``pg_restore`` of the last dump into a fresh database and a Redis server loading the last
RDB. The native tools are
timed as commands on the same data: a ``pg_dump -Fc`` of LightRAG's tables (LightRAG's
PostgreSQL storages keep every workspace in the same tables, so this is what an operator
dumps) and ``redis-cli --rdb``; neither has increments, so each change step costs a full
dump. In the PostgreSQL and Redis columns the vectors stay in NanoVectorDB files beside the
databases (lightrag-backup captures them with the records; the native tools do not see them);
the pgvector column keeps everything, vectors included, in PostgreSQL 16 + pgvector (the
pgserver wheel's server of ``scripts/test-servers.sh``), which its ``pg_dump`` dumps whole.
Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import encryption  # noqa: E402
import lightrag_graph  # noqa: E402
from run import folder_size, write_section  # noqa: E402

BACKENDS: dict[str, dict[str, str] | None] = {
    "files": None,
    "postgres": {"kv_storage": "PGKVStorage", "doc_status_storage": "PGDocStatusStorage",
                 "graph_storage": "PGTableGraphStorage"},
    "redis": {"kv_storage": "RedisKVStorage", "doc_status_storage": "RedisDocStatusStorage"},
    # Everything in PostgreSQL, vectors in pgvector (PostgreSQL 16 from the pgserver wheel).
    "pgvector": {"kv_storage": "PGKVStorage", "doc_status_storage": "PGDocStatusStorage",
                 "graph_storage": "PGTableGraphStorage", "vector_storage": "PGVectorStorage"},
}


def server_env(work: Path) -> tuple[dict[str, str], Any]:
    """The benchmark's own PostgreSQL database (on the test server) and its own Redis server,
    so the native dumps hold this graph only. Returns the variables and a cleanup."""
    import socket

    try:
        host, port, user = os.environ["LRB_TEST_PG_HOST"], os.environ["LRB_TEST_PG_PORT"], os.environ["LRB_TEST_PG_USER"]
    except KeyError as missing:
        raise SystemExit(f"{missing} is not set: eval \"$(bash scripts/test-servers.sh env)\" first") from None
    database = "lrb_bench_" + uuid.uuid4().hex[:8]
    psql = ["psql", "-h", host, "-p", port, "-U", user, "-v", "ON_ERROR_STOP=1", "-c"]
    subprocess.run([*psql, f"CREATE DATABASE {database}"], check=True, capture_output=True)
    vector_port = os.environ.get("LRB_TEST_PGVECTOR_PORT")
    vector_psql = ["psql", "-h", host, "-p", vector_port or "", "-U", user, "-v", "ON_ERROR_STOP=1", "-c"]
    if vector_port:
        subprocess.run([*vector_psql, f"CREATE DATABASE {database}"], check=True, capture_output=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        redis_port = probe.getsockname()[1]
    redis = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--dir", str(work),
                              "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", redis_port)) == 0:
                break
        time.sleep(0.1)

    def cleanup() -> None:
        redis.kill()
        # The benchmark's database and those its restores created (fresh_database).
        for suffix in ("", *FRESH_SUFFIXES):
            subprocess.run([*psql, f"DROP DATABASE IF EXISTS {database}{suffix} WITH (FORCE)"], capture_output=True)
            if vector_port:
                subprocess.run([*vector_psql, f"DROP DATABASE IF EXISTS {database}{suffix} WITH (FORCE)"],
                               capture_output=True)

    env = {"POSTGRES_HOST": host, "POSTGRES_PORT": port, "POSTGRES_USER": user, "POSTGRES_PASSWORD": "",
           "POSTGRES_DATABASE": database, "REDIS_URI": f"redis://127.0.0.1:{redis_port}",
           "LRB_VECTOR_PORT": vector_port or ""}
    return env, cleanup


FRESH_SUFFIXES = ("_restored", "_native")


def fresh_database(env: dict[str, str], suffix: str, vector: bool = False) -> dict[str, str]:
    """``env`` pointed at a new, empty database ``<benchmark database><suffix>`` on the same
    server (with the vector extension where ``vector``); dropped by the cleanup."""
    database = env["POSTGRES_DATABASE"] + suffix
    psql = ["psql", "-h", env["POSTGRES_HOST"], "-p", env["POSTGRES_PORT"], "-U", env["POSTGRES_USER"], "-v",
            "ON_ERROR_STOP=1"]
    subprocess.run([*psql, "-c", f"CREATE DATABASE {database}"], check=True, capture_output=True)
    if vector:
        subprocess.run([*psql, "-d", database, "-c", "CREATE EXTENSION IF NOT EXISTS vector"], check=True,
                       capture_output=True)
    return dict(env, POSTGRES_DATABASE=database)


def pg_restore(env: dict[str, str], dump: Path, dump_binary: str = "") -> float:
    """Seconds of ``pg_restore`` of a dump into a fresh database (what an operator restoring
    from ``pg_dump`` runs)."""
    binary = str(Path(dump_binary).with_name("pg_restore")) if dump_binary else (
        shutil.which("pg_restore") or "/usr/lib/postgresql/15/bin/pg_restore")
    target = fresh_database(env, "_native", vector=bool(dump_binary))
    seconds, _ = timed_command([binary, "-h", target["POSTGRES_HOST"], "-p", target["POSTGRES_PORT"], "-U",
                                target["POSTGRES_USER"], "-d", target["POSTGRES_DATABASE"], "--no-owner", str(dump)])
    return seconds


def redis_load(rdb: Path) -> float:
    """Seconds from starting a Redis server on an RDB file to it answering with the data
    loaded (how an ``redis-cli --rdb`` dump is restored)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.perf_counter()
    server = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(rdb.parent),
                               "--dbfilename", rdb.name, "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL)
    try:
        while True:
            info = subprocess.run(["redis-cli", "-p", str(port), "info", "persistence"], capture_output=True,
                                  text=True)
            if "loading:0" in info.stdout:
                return time.perf_counter() - started
            if time.perf_counter() - started > 600:
                raise RuntimeError("redis-server did not load the RDB in 600 s")
            time.sleep(0.02)
    finally:
        server.kill()
        server.wait()


def timed_command(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of a command under /usr/bin/time."""
    os.sync()
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        started = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", report.name, *command], capture_output=True,
                              text=True, env={**os.environ, **(env or {})})
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-2000:]}")
        rss = int(report.read().split()[-1]) / 1024
    return seconds, rss


def pg_dump(env: dict[str, str], out: Path, binary: str = "") -> tuple[float, int]:
    binary = binary or shutil.which("pg_dump") or "/usr/lib/postgresql/15/bin/pg_dump"
    seconds, _ = timed_command([binary, "-h", env["POSTGRES_HOST"], "-p", env["POSTGRES_PORT"], "-U",
                                env["POSTGRES_USER"], "-d", env["POSTGRES_DATABASE"], "-Fc", "-t", "lightrag_*",
                                "-f", str(out)])
    return seconds, out.stat().st_size


def redis_rdb(env: dict[str, str], out: Path) -> tuple[float, int]:
    host, port = env["REDIS_URI"].split("//", 1)[1].split(":")
    seconds, _ = timed_command(["redis-cli", "-h", host, "-p", port.split("/")[0], "--rdb", str(out)])
    return seconds, out.stat().st_size


async def measure(backend: str, storages: dict[str, str] | None, args: argparse.Namespace, work: Path,
                  env: dict[str, str]) -> dict[str, Any]:
    from lightrag.backup import GraphBackup
    from lightrag.backup.offline_graph import new_rag
    from lightrag.backup.records import StorageConfig
    from lightrag.backup.storage import LocalBackupStorage
    from lightrag.kg.shared_storage import finalize_share_data

    workspace = "b" + uuid.uuid4().hex[:10]
    folder = work / f"graph-{backend}"
    repo_dir = work / f"repo-{backend}"
    for path in (folder, repo_dir):
        shutil.rmtree(path, ignore_errors=True)
    if backend == "pgvector":
        if not env.get("LRB_VECTOR_PORT"):
            raise SystemExit("LRB_TEST_PGVECTOR_PORT is not set: the pgvector server of scripts/test-servers.sh")
        env = dict(env, POSTGRES_PORT=env["LRB_VECTOR_PORT"])
    env = {k: v for k, v in env.items() if k != "LRB_VECTOR_PORT"}
    os.environ.update(env)
    started = time.perf_counter()
    await lightrag_graph.build(folder, args.entities, dim=args.dim, workspace=workspace, storages=storages)
    built_s = time.perf_counter() - started
    repo = LocalBackupStorage(repo_dir)
    result: dict[str, Any] = {"backend": backend, "build_s": built_s, "steps": []}

    async def snapshot(label: str) -> Any:
        rag = await new_rag(folder, workspace=workspace, embedding_dim=args.dim, storages=storages)
        try:
            backup = GraphBackup.from_rag(backend, rag, repo)
            before = folder_size(repo_dir) if repo_dir.exists() else 0
            began = time.perf_counter()
            made = await backup.acreate_snapshot(label)
            seconds = time.perf_counter() - began
            return made, seconds, folder_size(repo_dir) - before
        finally:
            await rag.finalize_storages()

    first, seconds, added = await snapshot("first")
    result.update(first_s=seconds, pause_ms=first.metadata["live_pause_ms"], repo_first=added,
                  logical=first.size_bytes, records_status=(first.metadata.get("records") or {}).get("status"))
    native_dir = work / f"native-{backend}"
    shutil.rmtree(native_dir, ignore_errors=True)
    native_dir.mkdir()
    # pgserver's own pg_dump for its PostgreSQL 16 (Debian's 15 refuses a newer server).
    dump_bin = os.environ.get("LRB_TEST_PGVECTOR_PG_DUMP", "") if backend == "pgvector" else ""
    if backend in ("postgres", "pgvector"):
        result["native"] = [pg_dump(env, native_dir / "first.dump", dump_bin)]
    elif backend == "redis":
        result["native"] = [redis_rdb(env, native_dir / "first.rdb")]
    made = first
    for step in range(1, args.change_rounds + 1):
        await lightrag_graph.change(folder, args.entities, round_number=step, dim=args.dim, workspace=workspace,
                                    storages=storages)
        made, seconds, added = await snapshot(f"step {step}")
        result["steps"].append({"seconds": seconds, "added": added, "pause_ms": made.metadata["live_pause_ms"]})
        if backend in ("postgres", "pgvector"):
            result["native"].append(pg_dump(env, native_dir / f"step{step}.dump", dump_bin))
        elif backend == "redis":
            result["native"].append(redis_rdb(env, native_dir / f"step{step}.rdb"))
    result["repo_total"] = folder_size(repo_dir)

    # Restores of the newest snapshot: beside the graph (a fresh workspace of the same
    # database, so the same tables), and into a fresh database (disaster recovery onto another
    # server: tables of its own); Redis and files have no tables, so one restore each.
    backup = GraphBackup(backend, repo, os.devnull)
    targets = {"beside": env}
    if backend in ("postgres", "pgvector"):
        targets["fresh"] = fresh_database(env, "_restored", vector=backend == "pgvector")
    for kind, target_env in targets.items():
        target = StorageConfig(**(storages or {}), working_dir=str(work / f"restored-{backend}"),
                               workspace="r" + uuid.uuid4().hex[:10], env=target_env)
        began = time.perf_counter()
        await backup.arestore_snapshot(made.snapshot_id, into=target)
        result[f"restore_{kind}_s"] = time.perf_counter() - began
        result[f"restore_{kind}_writes"] = sorted(set(backup.last_restore["restored"].get("vector_writes", {}).values()))
        finalize_share_data()
        shutil.rmtree(work / f"restored-{backend}", ignore_errors=True)
    if backend in ("postgres", "pgvector"):
        result["native_restore_s"] = pg_restore(env, native_dir / f"step{args.change_rounds}.dump", dump_bin)
    elif backend == "redis":
        result["native_restore_s"] = redis_load(native_dir / f"step{args.change_rounds}.rdb")
    return result


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    import importlib.metadata as md

    lines = [
        f"## Database-backed graph ({args.entities} entities, dim {args.dim}): files, PostgreSQL, Redis, pgvector",
        "",
        f"Graph: the `run.py` graph of {args.entities} entities built by LightRAG into each backend "
        f"(`ainsert_custom_kg`), {args.change_rounds} change steps (1% added, 0.2% deleted, a few edits). PostgreSQL "
        "15: `PGKVStorage`, `PGDocStatusStorage`, `PGTableGraphStorage`; Redis 7: `RedisKVStorage`, "
        "`RedisDocStatusStorage` (graph in NetworkX), vectors in NanoVectorDB files in both, captured with the "
        "records; PostgreSQL 16 + pgvector 0.6: the same PostgreSQL storages and `PGVectorStorage`. Timed in-process on the live instance (snapshot) and on restores of the last "
        "snapshot beside the graph and into a fresh database; native tools as commands on the same databases. Command: "
        f"`python bench/databases.py --entities {args.entities} --change-rounds {args.change_rounds}`. Run of "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}. Versions: lightrag-hku {md.version('lightrag-hku')}, "
        f"lightrag-backup {md.version('lightrag-backup')}.",
        "",
        "| | files | PostgreSQL | Redis | PostgreSQL + pgvector |",
        "|---|---|---|---|---|",
    ]
    by = {r["backend"]: r for r in results}

    def row(label: str, value: Any) -> None:
        lines.append(f"| {label} | " + " | ".join(value(by[b]) if b in by else "-" for b in BACKENDS) + " |")

    row("graph logical size (snapshot)", lambda r: mb(r["logical"]))
    row("first snapshot (time)", lambda r: f"{r['first_s']:.2f} s")
    row("pause of LightRAG's pipeline (first)", lambda r: f"{r['pause_ms']:.0f} ms")
    row("snapshot after a change (median)", lambda r: f"{statistics.median(s['seconds'] for s in r['steps']):.2f} s")
    row("pause after a change (median)", lambda r: f"{statistics.median(s['pause_ms'] for s in r['steps']):.0f} ms")
    row("repository after the first snapshot", lambda r: mb(r["repo_first"]))
    row("bytes added per change step (median)", lambda r: mb(statistics.median(s["added"] for s in r["steps"])))
    row(f"repository after {args.change_rounds} steps", lambda r: mb(r["repo_total"]))
    row("restore beside the graph (fresh workspace, same tables)", lambda r: f"{r['restore_beside_s']:.2f} s")
    row("restore into a fresh database", lambda r: f"{r['restore_fresh_s']:.2f} s" if "restore_fresh_s" in r else "-")
    row("capture status", lambda r: r["records_status"] or "files")
    native = {"postgres": "pg_dump -Fc of lightrag_* tables", "redis": "redis-cli --rdb",
              "pgvector": "pg_dump -Fc of lightrag_* tables"}
    row("native tool", lambda r: native.get(r["backend"], "-"))
    row("native: first dump (time, size)",
        lambda r: f"{r['native'][0][0]:.2f} s, {mb(r['native'][0][1])}" if "native" in r else "-")
    row("native: bytes per change step (a full dump)",
        lambda r: mb(statistics.median(n[1] for n in r["native"][1:])) if "native" in r else "-")
    row(f"native: after {args.change_rounds} steps (every dump kept)",
        lambda r: mb(sum(n[1] for n in r["native"])) if "native" in r else "-")
    row("native: restore of the last dump (pg_restore into a fresh database; redis-server loading the RDB)",
        lambda r: f"{r['native_restore_s']:.2f} s" if "native_restore_s" in r else "-")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--change-rounds", type=int, default=3)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lightrag-backup-bench-db")
    parser.add_argument("--out", type=Path, default=None, help="write this run's section into this file")
    args = parser.parse_args(argv)
    encryption.provision(args.work)
    args.work.mkdir(parents=True, exist_ok=True)
    env, cleanup = server_env(args.work)
    results = []
    try:
        for backend in args.backends.split(","):
            results.append(asyncio.run(measure(backend, BACKENDS[backend], args, args.work, env)))
            print(f"{backend}: {results[-1]}", flush=True)
    finally:
        cleanup()
    text = report(results, args)
    if args.out:
        write_section(args.out, f"databases {args.entities} entities", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
