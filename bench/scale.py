"""What an operation costs as the history grows to 100, 1,000 and 10,000 snapshots over 100
small graphs: time, peak memory and object-store requests of the CLI's commands (each a new
process), of a snapshot in a long-running process and of the server's status routes, on a
local folder and on an S3 server on loopback; the same history in restic 0.18 beside it.

    bash scripts/test-servers.sh start && eval "$(bash scripts/test-servers.sh env)"
    bash bench/peers.sh   # restic 0.18 as restic18 (optional: --restic-max 0 leaves it out)
    python bench/scale.py --sizes 100,1000,10000 --out BENCHMARKS.md

Requests are counted by the S3 server: this bench starts its own moto (the test servers' build,
requests served one at a time) with its request log, and counts the lines a command adds. The
history is built once, in one long-running process on a local repository (the time of its
snapshots is the "long-running process" figure at each size), and copied object by object into
a fresh bucket prefix at each size: the bytes are the same, what is measured is what each tool
does with them. A command's cache starts warm, as on any host that ran one command before (the
first command's cost is shown apart), for us and for restic alike.

Results replace this benchmark's section of ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from encryption import provision  # noqa: E402
from run import Measure, operator_venv, timed, write_section  # noqa: E402

GRAPHS = 100
RESTIC_PASSWORD = "lightrag-backup bench password"


# --- the graphs ---------------------------------------------------------------------------------

def graph_dir(work: Path, n: int) -> Path:
    return work / "graphs" / graph_name(n)


def graph_name(n: int) -> str:
    return f"g{n:03d}"


def make_graphs(work: Path) -> None:
    """100 small LightRAG-shaped folders (about 30 KB each): a document store that changes at
    every snapshot, chunks and a GraphML graph that do not."""
    shutil.rmtree(work / "graphs", ignore_errors=True)
    for n in range(GRAPHS):
        folder = graph_dir(work, n)
        folder.mkdir(parents=True)
        chunks = {f"chunk-{n}-{c}": {"content": f"graph {n} chunk {c} " * 30, "full_doc_id": f"doc-{n}"}
                  for c in range(20)}
        (folder / "kv_store_text_chunks.json").write_text(json.dumps(chunks))
        nodes = "".join(f'<node id="e{n}-{e}"><data key="d0">entity {e} of graph {n}</data></node>' for e in range(60))
        (folder / "graph_chunk_entity_relation.graphml").write_text(
            '<?xml version="1.0"?><graphml><key id="d0" for="node" attr.name="description"/>'
            f'<graph edgedefault="undirected">{nodes}</graph></graphml>')
        change(work, n, 0)


def change(work: Path, n: int, step: int) -> None:
    (graph_dir(work, n) / "kv_store_full_docs.json").write_text(
        json.dumps({f"doc-{n}": {"content": f"graph {n} version {step} " * 40}}))


# --- the S3 server and its request log -----------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Moto:
    """moto on loopback with its request log (one line per request, werkzeug's)."""

    def __init__(self, work: Path) -> None:
        moto_bin = os.environ.get("LRB_TEST_MOTO_BIN")
        if not moto_bin:
            raise SystemExit("LRB_TEST_MOTO_BIN is not set: start the servers with `bash scripts/test-servers.sh "
                             'start` and eval "$(bash scripts/test-servers.sh env)"')
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = work / "moto.log"
        serial = Path(__file__).resolve().parent.parent / "scripts" / "moto_serial.py"
        self.process = subprocess.Popen([str(Path(moto_bin).parent / "python"), str(serial), "127.0.0.1",
                                         str(self.port)], stdout=subprocess.DEVNULL, stderr=self.log.open("w"))
        for _ in range(200):
            try:
                urllib.request.urlopen(self.endpoint, timeout=1)
                break
            except OSError:
                if self.process.poll() is not None:
                    raise SystemExit(f"moto exited: {self.log.read_text()[-2000:]}")
                time.sleep(0.1)
        self.bucket = "lrb-scale"
        self.client().create_bucket(Bucket=self.bucket)

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="test",
                            aws_secret_access_key="test", region_name="us-east-1")

    def requests(self) -> int:
        """Requests served so far (a request's line is written once its answer is sent)."""
        time.sleep(0.3)
        with self.log.open("rb") as log:
            return sum(1 for line in log if b'" 2' in line or b'" 3' in line or b'" 4' in line or b'" 5' in line)

    def upload(self, folder: Path, prefix: str, skip: Callable[[Path], bool] = lambda p: False) -> int:
        """Copy a local repository's files to ``prefix`` (the object names are the same)."""
        from concurrent.futures import ThreadPoolExecutor

        client = self.client()
        files = [p for p in folder.rglob("*") if p.is_file() and not skip(p)]

        def put(path: Path) -> None:
            client.put_object(Bucket=self.bucket, Key=f"{prefix}/{path.relative_to(folder)}", Body=path.read_bytes())

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, files))
        return len(files)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


# --- measuring a command -------------------------------------------------------------------------

class Counted:
    """A command's time, peak RSS and (on S3) the requests the server saw."""

    def __init__(self, moto: "Moto | None") -> None:
        self.moto = moto

    def __call__(self, command: list[str], env: dict[str, str]) -> dict[str, float]:
        before = self.moto.requests() if self.moto else 0
        measure: Measure = timed(command, env)
        after = self.moto.requests() if self.moto else 0
        return {"seconds": measure.seconds, "rss_mb": measure.rss_mb, "requests": after - before,
                "stdout": measure.stdout}  # type: ignore[dict-item]


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(float(r[key]) for r in runs) for key in ("seconds", "rss_mb", "requests")}


class History:
    """A tool's history over the graphs, one changed graph per snapshot, round robin."""

    name = ""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.taken = 0
        self.step = 1

    def snapshot(self, n: int) -> None:
        raise NotImplementedError

    def take(self, count: int, report_every: int = 0) -> list[float]:
        """Change a graph and snapshot it, ``count`` times; the milliseconds of each."""
        times = []
        for _ in range(count):
            n = self.taken % GRAPHS
            change(self.work, n, self.step)
            self.step += 1
            started = time.perf_counter()
            self.snapshot(n)
            times.append((time.perf_counter() - started) * 1000)
            self.taken += 1
            if report_every and self.taken % report_every == 0:
                print(f"  {self.name}: {self.taken} snapshots, last 50 at {statistics.median(times[-50:]):.1f} ms",
                      file=sys.stderr, flush=True)
        return times


# --- lightrag-backup -----------------------------------------------------------------------------

class Ours(History):
    name = "ours"

    def __init__(self, work: Path, cli: str) -> None:
        super().__init__(work)
        self.cli = cli
        self.repo = work / "repo-ours"
        self.env = dict(os.environ)
        self.env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1")

    def snapshot(self, n: int) -> None:
        self.backups[n].create_snapshot()

    def build(self, total: int) -> list[float]:
        """Take snapshots in this process until the history holds ``total``; the milliseconds
        of the last 50."""
        from lightrag.backup import GraphBackup
        from lightrag.backup.storage import LocalBackupStorage

        if not hasattr(self, "backups"):
            shutil.rmtree(self.repo, ignore_errors=True)
            storage = LocalBackupStorage(self.repo, password=os.environ["LIGHTRAG_BACKUP_PASSWORD"])
            self.backups = [GraphBackup(graph_name(n), storage, working_dir=graph_dir(self.work, n))
                            for n in range(GRAPHS)]
        return self.take(total - self.taken, report_every=1000)[-50:]

    def steady(self, count: int = 20) -> list[float]:
        """Milliseconds of ``count`` snapshots of changed graphs that have a history, in the
        process that built it (at 100 snapshots the build's own are every graph's first)."""
        return self.take(count)

    def location(self, s3: "tuple[Moto, str] | None") -> list[str]:
        if s3 is None:
            return ["--repo", str(self.repo)]
        moto, prefix = s3
        return ["--repo", f"s3://{moto.bucket}/{prefix}", "-o", f"endpoint={moto.endpoint}"]

    def commands(self, s3: "tuple[Moto, str] | None", counted: Counted, cache: Path) -> dict[str, dict[str, float]]:
        env = dict(self.env, LIGHTRAG_BACKUP_CACHE_DIR=str(cache),
                   LIGHTRAG_BACKUP_CATALOG_PATH=str(cache.parent / f"{cache.name}-catalog.sqlite3"))
        base = [self.cli, *self.location(s3), "--no-progress"]
        rows: dict[str, dict[str, float]] = {}
        rows["first command on this host: list -g"] = counted([*base, "list", "-g", "g000"], env)
        snapshots = json.loads(counted([*base, "--json", "list", "-g", "g000"], env)["stdout"])  # type: ignore[arg-type]
        oldest = snapshots[0]["snapshot_id"]
        rows["list -g"] = median_of([counted([*base, "list", "-g", "g000"], env) for _ in range(3)])
        changed = []
        for round_ in range(3):
            change(self.work, 1, 10_000_000 + round_)
            changed.append(counted([*base, "snapshot", "-g", "g001", "-w", str(graph_dir(self.work, 1))], env))
        rows["snapshot (changed graph)"] = median_of(changed)
        rows["snapshot (unchanged graph)"] = median_of(
            [counted([*base, "snapshot", "-g", "g001", "-w", str(graph_dir(self.work, 1))], env) for _ in range(3)])
        rows["verify one snapshot"] = median_of([counted([*base, "verify", "-g", "g000", oldest], env)
                                                 for _ in range(3)])
        restores = []
        for _ in range(3):
            target = self.work / "restored"
            shutil.rmtree(target, ignore_errors=True)
            restores.append(counted([*base, "restore", "-g", "g000", oldest, "--target", str(target),
                                     "--no-safety-snapshot"], env))
        rows["restore one snapshot"] = median_of(restores)
        rows["stats -g"] = median_of([counted([*base, "stats", "-g", "g000"], env) for _ in range(3)])
        return rows

    def in_process(self, s3: "tuple[Moto, str]", cache: Path) -> list[float]:
        """Milliseconds of 20 snapshots in one process on the S3 copy (after 5 to warm up)."""
        from lightrag.backup import GraphBackup
        from lightrag.backup.storage import S3BackupStorage

        moto, prefix = s3
        os.environ["LIGHTRAG_BACKUP_CACHE_DIR"] = str(cache)
        storage = S3BackupStorage(moto.bucket, prefix, endpoint_url=moto.endpoint, access_key_id="test",
                                  secret_access_key="test", region="us-east-1", allow_http=True)
        backups = [GraphBackup(graph_name(n), storage, working_dir=graph_dir(self.work, n)) for n in range(5)]
        times = []
        for i in range(25):
            change(self.work, i % 5, 20_000_000 + i)
            started = time.perf_counter()
            backups[i % 5].create_snapshot()
            times.append((time.perf_counter() - started) * 1000)
        return times[5:]

    def server(self, s3: "tuple[Moto, str] | None", counted: Counted, cache: Path) -> dict[str, dict[str, float]]:
        """The status routes of `lightrag-backup serve`: the first answer, then 20 each."""
        port = free_port()
        env = dict(self.env, LIGHTRAG_BACKUP_CACHE_DIR=str(cache), LIGHTRAG_BACKUP_REFRESH_SECONDS="3600",
                   LIGHTRAG_BACKUP_CATALOG_PATH=str(cache.parent / f"{cache.name}-serve.sqlite3"))
        log = (self.work / "serve.log").open("w")
        # The operator venv holds the CLI alone; the server needs FastAPI and uvicorn: this
        # interpreter's installation (the same build) has them.
        process = subprocess.Popen([sys.executable, "-m", "lightrag.backup.cli", *self.location(s3), "serve", "--graphs-dir",
                                    str(self.work / "graphs"), "--port", str(port), "--no-scheduler", "--no-auth"],
                                   env=env, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{port}"
        try:
            started = time.monotonic()
            while True:
                try:
                    urllib.request.urlopen(f"{base}/health", timeout=2)
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() - started > 300:
                        raise SystemExit(f"serve did not start: {(self.work / 'serve.log').read_text()[-3000:]}")
                    time.sleep(0.2)
            rows: dict[str, dict[str, float]] = {}
            for route in ("/metrics", "/backup/graphs", "/recovery/status", "/backup/graphs/g000/snapshots"):
                first_started = time.perf_counter()
                with urllib.request.urlopen(f"{base}{route}", timeout=600) as answer:
                    answer.read()
                first = (time.perf_counter() - first_started) * 1000
                before = counted.moto.requests() if counted.moto else 0
                times = []
                for _ in range(20):
                    t = time.perf_counter()
                    with urllib.request.urlopen(f"{base}{route}", timeout=600) as answer:
                        answer.read()
                    times.append((time.perf_counter() - t) * 1000)
                after = counted.moto.requests() if counted.moto else 0
                rows[route] = {"first_ms": first, "ms": statistics.median(times), "requests": (after - before) / 20}
            return rows
        finally:
            process.terminate()
            process.wait(30)
            log.close()


# --- restic 0.18 ---------------------------------------------------------------------------------

class Restic(History):
    name = "restic"

    def __init__(self, work: Path, binary: str) -> None:
        super().__init__(work)
        self.binary = binary
        self.repo = work / "repo-restic"
        self.env = dict(os.environ, RESTIC_PASSWORD=RESTIC_PASSWORD, AWS_ACCESS_KEY_ID="test",
                        AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
        self.build_env = dict(self.env, RESTIC_CACHE_DIR=str(work / "restic-cache-build"))

    def snapshot(self, n: int) -> None:
        subprocess.run([self.binary, "-r", str(self.repo), "backup", "-q", "--host", "bench", "--tag",
                        graph_name(n), str(graph_dir(self.work, n))], env=self.build_env, check=True,
                       capture_output=True)

    def build(self, total: int) -> list[float]:
        """restic backups (each a new process, as restic runs) until the history holds ``total``;
        the milliseconds of the last 50."""
        if self.taken == 0:
            shutil.rmtree(self.repo, ignore_errors=True)
            subprocess.run([self.binary, "-r", str(self.repo), "init", "-q"], env=self.build_env, check=True,
                           capture_output=True)
        return self.take(total - self.taken, report_every=500)[-50:]

    def commands(self, s3: "tuple[Moto, str] | None", counted: Counted, cache: Path) -> dict[str, dict[str, float]]:
        env = dict(self.env, RESTIC_CACHE_DIR=str(cache))
        location = str(self.repo) if s3 is None else f"s3:{s3[0].endpoint}/{s3[0].bucket}/{s3[1]}"
        base = [self.binary, "-r", location, "-q"]
        rows: dict[str, dict[str, float]] = {}
        rows["first command on this host: list -g"] = counted([*base, "snapshots", "--tag", "g000"], env)
        rows["list -g"] = median_of([counted([*base, "snapshots", "--tag", "g000"], env) for _ in range(3)])
        changed = []
        graph = str(graph_dir(self.work, 1))
        for round_ in range(3):
            change(self.work, 1, 10_000_000 + round_)
            changed.append(counted([*base, "backup", "--host", "bench", "--tag", "g001", graph], env))
        rows["snapshot (changed graph)"] = median_of(changed)
        rows["snapshot (unchanged graph)"] = median_of(
            [counted([*base, "backup", "--host", "bench", "--tag", "g001", graph], env) for _ in range(3)])
        restores = []
        for _ in range(3):
            target = self.work / "restored-restic"
            shutil.rmtree(target, ignore_errors=True)
            restores.append(counted([*base, "restore", "latest", "--tag", "g000", "--target", str(target)], env))
        rows["restore one snapshot"] = median_of(restores)
        return rows


# --- the report ----------------------------------------------------------------------------------

def cell(row: "dict[str, float] | None", s3: bool) -> str:
    if row is None:
        return "-"
    text = f"{row['seconds']:.2f} s, {row['rss_mb']:.0f} MB"
    return f"{text}, **{row['requests']:.0f}** req" if s3 else text


def report(sizes: list[int], results: dict[str, Any], argv: str) -> str:
    out = ["### Costs as the history grows: 100 graphs, up to 10,000 snapshots", "",
           f"`python bench/scale.py {argv}`. Each CLI command is a new process (the operator's "
           "virtualenv); its time and peak RSS from `/usr/bin/time`, median of 3; S3 requests counted "
           "from the S3 server's own request log (moto on loopback, one line per request). The "
           "history is built by one long-running process; a command's cache starts warm (the first "
           "command on a new host is shown apart). Encrypted on both sides.", ""]
    for where in ("local", "s3"):
        s3 = where == "s3"
        out += [f"#### {'S3 (moto on loopback)' if s3 else 'A local folder'}: a CLI command, new process each time", "",
                "| command | " + " | ".join(f"{n:,} snapshots" for n in sizes) + " |",
                "|---|" + "---|" * len(sizes)]
        for tool in ("ours", "restic"):
            names = list(next((r[tool] for r in (results[where].get(n, {}) for n in sizes) if tool in r), {}))
            for name in names:
                label = f"{'lightrag-backup' if tool == 'ours' else 'restic 0.18'}: {name}"
                out.append(f"| {label} | " + " | ".join(cell(results[where].get(n, {}).get(tool, {}).get(name), s3)
                                                        for n in sizes) + " |")
        out.append("")
    out += ["#### A snapshot in a long-running process (milliseconds, median)", "",
            "| | " + " | ".join(f"{n:,}" for n in sizes) + " | largest / smallest |", "|---|" + "---|" * (len(sizes) + 1)]
    for label, key in (("lightrag-backup, local (the process that built the history, 20 more)", "ours_local"),
                       ("lightrag-backup, S3 (a process on the copy, 20 after 5)", "ours_s3"),
                       ("restic 0.18 backup, local (a process per backup, as restic runs)", "restic_local")):
        values = [results["in_process"].get(n, {}).get(key) for n in sizes]
        known = [v for v in values if v is not None]
        ratio = f"{known[-1] / known[0]:.2f}x" if len(known) > 1 else "-"
        out.append(f"| {label} | " + " | ".join(f"{v:.1f}" if v is not None else "-" for v in values) + f" | {ratio} |")
    out += ["", "#### The server's status routes (`lightrag-backup serve`): median of 20 after the first answer", "",
            "| route | " + " | ".join(f"{n:,}: local / S3 (first answer S3)" for n in sizes) + " |",
            "|---|" + "---|" * len(sizes)]
    routes = next((list(r) for r in (results["server"].get(n, {}).get("s3") for n in sizes) if r), [])
    for route in routes:
        cells = []
        for n in sizes:
            local = results["server"].get(n, {}).get("local", {}).get(route)
            remote = results["server"].get(n, {}).get("s3", {}).get(route)
            cells.append(" / ".join([
                f"{local['ms']:.1f} ms" if local else "-",
                f"{remote['ms']:.1f} ms, {remote['requests']:g} req ({remote['first_ms']:.0f} ms)" if remote else "-"]))
        out.append(f"| `{route}` | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="history sizes, comma-separated")
    parser.add_argument("--restic", default=shutil.which("restic18") or "/opt/lrb-bench-peers/bin/restic18",
                        help="restic 0.18 (bench/peers.sh installs it)")
    parser.add_argument("--restic-max", type=int, default=1000,
                        help="build restic's history up to this size (a restic backup is a process each: "
                             "10,000 of them take hours here)")
    parser.add_argument("--reuse-restic", type=Path, default=None, metavar="JSON",
                        help="take restic's figures from the --json of an earlier run on this machine (restic's "
                             "history takes most of a run to build); the report says so")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lightrag-backup-bench-scale")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    args = parser.parse_args(argv)
    sizes = sorted({int(n) for n in args.sizes.split(",") if n.strip()})
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    provision(args.work)
    cli = operator_venv(args.work)
    make_graphs(args.work)
    moto = Moto(args.work)
    restic = Restic(args.work, args.restic) if args.restic_max > 0 and Path(args.restic).exists() else None
    ours = Ours(args.work, cli)
    results: dict[str, Any] = {"local": {}, "s3": {}, "in_process": {}, "server": {}}
    if args.reuse_restic is not None:
        earlier = json.loads(args.reuse_restic.read_text())
        for where in ("local", "s3"):
            for size, tools in earlier[where].items():
                if "restic" in tools and int(size) in sizes:
                    results[where].setdefault(int(size), {})["restic"] = tools["restic"]
        for size, row in earlier["in_process"].items():
            if "restic_local" in row and int(size) in sizes:
                results["in_process"].setdefault(int(size), {})["restic_local"] = row["restic_local"]
    try:
        for size in sizes:
            print(f"== {size} snapshots", file=sys.stderr, flush=True)
            row = results["in_process"].setdefault(size, {})
            ours.build(size)
            row["ours_local"] = statistics.median(ours.steady())
            local, remote = results["local"].setdefault(size, {}), results["s3"].setdefault(size, {})
            prefix = f"ours-{size}-{uuid.uuid4().hex[:8]}"
            uploaded = moto.upload(ours.repo, prefix, skip=lambda p: p.name.startswith("catalog.sqlite3"))
            print(f"  copied {uploaded} objects to s3://{moto.bucket}/{prefix}", file=sys.stderr, flush=True)
            counted_local, counted_s3 = Counted(None), Counted(moto)
            # The CLI's commands take snapshots too: they go into copies, so every size starts
            # from the history the long-running process built.
            saved = args.work / "repo-ours-saved"
            shutil.rmtree(saved, ignore_errors=True)
            shutil.copytree(ours.repo, saved)
            local["ours"] = ours.commands(None, counted_local, args.work / f"cache-local-{size}")
            remote["ours"] = ours.commands((moto, prefix), counted_s3, args.work / f"cache-s3-{size}")
            results["server"][size] = {
                "local": ours.server(None, counted_local, args.work / f"serve-local-{size}"),
                "s3": ours.server((moto, prefix), counted_s3, args.work / f"serve-s3-{size}"),
            }
            row["ours_s3"] = statistics.median(ours.in_process((moto, prefix), args.work / f"cache-s3-{size}"))
            shutil.rmtree(ours.repo)
            shutil.move(str(saved), ours.repo)
            if restic is not None and size <= args.restic_max:
                row["restic_local"] = statistics.median(restic.build(size))
                restic_prefix = f"restic-{size}-{uuid.uuid4().hex[:8]}"
                moto.upload(restic.repo, restic_prefix)
                saved = args.work / "repo-restic-saved"
                shutil.rmtree(saved, ignore_errors=True)
                shutil.copytree(restic.repo, saved)
                local["restic"] = restic.commands(None, counted_local, args.work / f"restic-cache-local-{size}")
                remote["restic"] = restic.commands((moto, restic_prefix), counted_s3,
                                                   args.work / f"restic-cache-s3-{size}")
                shutil.rmtree(restic.repo)
                shutil.move(str(saved), restic.repo)
            if args.json:
                args.json.write_text(json.dumps(results, indent=1, default=str))
    finally:
        moto.stop()
    for where in ("local", "s3"):
        for per_size in results[where].values():
            for rows in per_size.values():
                for measure in rows.values():
                    measure.pop("stdout", None)
    text = report(sizes, results, " ".join(sys.argv[1:] if argv is None else argv))
    if args.reuse_restic is not None:
        text += (f"\nrestic's rows come from an earlier run of this bench on the same machine and day "
                 f"(`--json {args.reuse_restic.name}`), not from this one.\n")
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    if args.out is not None:
        write_section(args.out, "scale", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
