"""Side-by-side benchmark: lightrag-backup, restic and borg on the same LightRAG graphs.

    python bench/run.py --entities 20000 --rounds 3 --change-rounds 10 --out BENCHMARKS.md

Builds a real LightRAG graph (``lightrag_graph.py``) and ``--change-rounds`` changed versions of
it, once. Then, for each round, each tool (in a rotated order, so none always runs first or
last) backs up the first version into a fresh repository, backs up the first changed version,
restores it, verifies it reading all data, and backs up the remaining versions. Wall time and
peak RSS come from ``/usr/bin/time``; medians over the rounds go to the report, with ratios
against restic. With ``--live`` it also measures, on the built graph, the pause LightRAG
writers see during an online snapshot and the time from ``restore_snapshot`` on a live
instance until a query answers from the restored graph. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).parent))
import encryption  # noqa: E402
import floor  # noqa: E402
import lightrag_graph  # noqa: E402

OPERATIONS = ["first backup", "backup after change", "restore", "verify (read all data)"]


@dataclass
class Measure:
    seconds: float
    rss_mb: float
    stdout: str = ""


@dataclass
class ToolResult:
    times: dict[str, list[Measure]] = field(default_factory=dict)
    repo_first: list[int] = field(default_factory=list)
    repo_added_by_change: list[int] = field(default_factory=list)
    repo_after_rounds: list[int] = field(default_factory=list)


def timed(command: list[str], env: dict[str, str], cwd: Path | None = None) -> Measure:
    """Run a command under /usr/bin/time; fail loudly if it fails.

    Dirty pages are written back first (the page cache stays warm): otherwise the harness's own
    copy of the next graph version, or the previous tool's restore, is still being flushed and
    throttles whichever tool happens to write next."""
    os.sync()
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        result = subprocess.run(
            ["/usr/bin/time", "-f", "%e %M", "-o", report.name, *command],
            env=env, cwd=cwd, capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")
        seconds, rss_kb = report.read().split()[-2:]
    return Measure(float(seconds), int(rss_kb) / 1024, result.stdout)


def warm(repo: Path) -> None:
    """Read a local repository's files into the page cache, untimed, before a restore or a
    verify: lightrag-backup writes its packs past the page cache (``O_DIRECT``), the other tools
    through it, so without this one tool would read from disk and the others from memory. A
    repository in an object store is left as it is."""
    if not repo.is_dir():
        return
    for path in repo.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                while handle.read(1 << 20):
                    pass


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class Tool:
    name = ""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.repo = work / f"repo-{self.name}"
        self.env = dict(os.environ)

    def reset(self) -> None:
        shutil.rmtree(self.repo, ignore_errors=True)

    def init(self) -> None: ...
    def size(self) -> int:
        return folder_size(self.repo)
    def backup(self, graph: Path) -> Measure: raise NotImplementedError
    def restore(self, target: Path) -> Measure: raise NotImplementedError
    def verify(self) -> Measure: raise NotImplementedError


def operator_venv(work: Path) -> str:
    """``lightrag-backup`` as an operator runs it: the console script of a fresh virtual
    environment holding the installed lightrag-backup (its files copied from this
    interpreter's installation, so it is the very build under test).

    Not this interpreter's own script: a version-manager shim on PATH (pyenv's costs 0.13 s a
    call) or a start-up hook in its site-packages (this sandbox's ``*.pth`` costs about 50 ms
    on every Python start) would be timed as ours, and no operator's venv has them. The CLI
    imports nothing from lightrag-hku, so the venv needs no other package."""
    from importlib.metadata import distribution

    venv = work / "operator-venv"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    dist = distribution("lightrag-backup")
    for name in dist.files or []:
        if name.parts[0] == "lightrag" or name.parts[0].endswith(".dist-info"):
            if "__pycache__" in name.parts:
                continue
            target = site / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(str(dist.locate_file(name))), target)
    # The console script pip writes for the entry point.
    entry = next(e for e in dist.entry_points if e.name == "lightrag-backup" and e.group == "console_scripts")
    module, function = entry.value.split(":")
    script = venv / "bin" / "lightrag-backup"
    script.write_text(f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom {module} import {function}\nsys.exit({function}())\n")
    script.chmod(0o755)
    # Byte-compile, as pip does on install.
    subprocess.run([str(venv / "bin" / "python"), "-m", "compileall", "-q", str(site / "lightrag")], check=True)
    return str(script)


LIGHTRAG_BACKUP_CLI = "lightrag-backup"


class LightragBackup(Tool):
    """lightrag-backup with its default, an encrypted repository (as restic and rustic always
    are); ``lightrag-backup-plain`` is the same build with ``init --encryption none``."""

    name = "lightrag-backup"
    encryption = "aes-256-gcm"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.env["LIGHTRAG_BACKUP_PASSWORD"] = "bench password"

    def _cli(self, *args: str) -> list[str]:
        return [LIGHTRAG_BACKUP_CLI, "--repo", self.location(), "--no-progress", *args]

    def location(self) -> str:
        return str(self.repo)

    def init(self) -> None:
        subprocess.run(self._cli("init", "--encryption", self.encryption), capture_output=True, text=True, check=True,
                       env=self.env)

    def backup(self, graph: Path) -> Measure:
        return timed(self._cli("snapshot", "-w", str(graph), "-g", "bench"), self.env)

    def restore(self, target: Path) -> Measure:
        listed = subprocess.run(self._cli("--json", "list", "-g", "bench"), capture_output=True, text=True, check=True, env=self.env)
        newest = json.loads(listed.stdout)[-1]["snapshot_id"]
        return timed(self._cli("restore", newest, "-g", "bench", "--target", str(target), "--no-safety-snapshot"), self.env)

    def verify(self) -> Measure:
        return timed(self._cli("verify", "-g", "bench"), self.env)


class PlainLightragBackup(LightragBackup):
    name = "lightrag-backup (no encryption)"
    encryption = "none"


def _server(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set: start the servers with `bash scripts/test-servers.sh start` and "
                         'eval "$(bash scripts/test-servers.sh env)"')
    return value


class CloudLightragBackup(LightragBackup):
    """lightrag-backup with its repository on a loopback object-store server."""

    scheme = ""

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.prefix = ""

    def reset(self) -> None:
        self.prefix = f"bench/{uuid.uuid4().hex}"

    def size(self) -> int:
        stats = subprocess.run(self._cli("--json", "stats"), capture_output=True, text=True, check=True, env=self.env)
        return int(json.loads(stats.stdout)["repository_bytes"])


class S3LightragBackup(CloudLightragBackup):
    name = "lightrag-backup (S3)"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.env.update(AWS_ENDPOINT_URL=_server("LRB_TEST_S3_ENDPOINT"), AWS_ACCESS_KEY_ID="bench",
                        AWS_SECRET_ACCESS_KEY="bench-secret")
        self.bucket = _server("LRB_TEST_S3_BUCKET")

    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


class AzureLightragBackup(CloudLightragBackup):
    name = "lightrag-backup (Azure)"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        endpoint = _server("LRB_TEST_AZURITE_ENDPOINT")
        self.env["AZURE_STORAGE_CONNECTION_STRING"] = (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
            "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
            f"BlobEndpoint={endpoint}/devstoreaccount1;"
        )
        self.container = _server("LRB_TEST_AZURITE_CONTAINER")

    def location(self) -> str:
        return f"az://{self.container}/{self.prefix}"


class Restic(Tool):
    name = "restic"
    binary = "restic"

    def init(self) -> None:
        self.env.update({"RESTIC_PASSWORD": "bench", "RESTIC_CACHE_DIR": str(self.work / f"{self.binary}-cache")})
        self.repo_arg = str(self.repo)
        subprocess.run([self.binary, "-r", self.repo_arg, "init", "-q"], env=self.env, check=True, capture_output=True)

    def backup(self, graph: Path) -> Measure:
        return timed([self.binary, "-r", self.repo_arg, "backup", "-q", str(graph)], self.env)

    def restore(self, target: Path) -> Measure:
        return timed([self.binary, "-r", self.repo_arg, "restore", "latest", "-q", "--target", str(target)], self.env)

    def verify(self) -> Measure:
        return timed([self.binary, "-r", self.repo_arg, "check", "-q", "--read-data"], self.env)


class Restic18(Restic):
    """restic 0.18 (Debian trixie's static binary, installed by ``bench/peers.sh`` as
    ``restic18``): its packer assigns chunks to packs at random (the answer to the 2025
    chunk-size attack) and it compresses with zstd by default."""

    name = "restic 0.18"
    binary = "restic18"


class Rustic(Tool):
    """rustic (crates.io, installed by ``bench/peers.sh``): restic's format in Rust, always
    encrypted, zstd compression."""

    name = "rustic"

    def _cli(self, *args: str) -> list[str]:
        return ["rustic", "--repository", str(self.repo), "--password", "bench", "--no-progress",
                "--cache-dir", str(self.work / "rustic-cache"), "--log-level", "warn", *args]

    def init(self) -> None:
        subprocess.run(self._cli("init"), env=self.env, check=True, capture_output=True)

    def backup(self, graph: Path) -> Measure:
        return timed(self._cli("backup", str(graph)), self.env)

    def restore(self, target: Path) -> Measure:
        return timed(self._cli("restore", "latest", str(target)), self.env)

    def verify(self) -> Measure:
        return timed(self._cli("check", "--read-data"), self.env)


class Borg(Tool):
    name = "borg"
    binary = "borg"

    def init(self) -> None:
        self.count = 0
        self.env.update({"BORG_BASE_DIR": str(self.work / "borg-base"), "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes"})
        subprocess.run([self.binary, "init", "--encryption", "none", str(self.repo)], env=self.env, check=True,
                       capture_output=True)

    def backup(self, graph: Path) -> Measure:
        self.count += 1
        # Same path every time, as an operator's nightly job would run it.
        return timed([self.binary, "create", "--compression", "zstd,3", f"{self.repo}::s{self.count}", graph.name],
                     self.env, cwd=graph.parent)

    def restore(self, target: Path) -> Measure:
        target.mkdir(parents=True, exist_ok=True)
        return timed([self.binary, "extract", f"{self.repo}::s{self.count}"], self.env, cwd=target)

    def verify(self) -> Measure:
        return timed([self.binary, "check", "--verify-data", str(self.repo)], self.env)


class Borg14(Borg):
    """borg 1.4 (PyPI, built by ``bench/peers.sh``), the current release line, unencrypted as
    Debian's borg 1.2 is measured here."""

    name = "borg 1.4"
    binary = "borg14"


class ResticS3(Restic):
    """restic with its repository in the same loopback S3 server."""

    name = "restic (S3)"

    def reset(self) -> None:
        self.location = f"s3:{_server('LRB_TEST_S3_ENDPOINT')}/{_server('LRB_TEST_S3_BUCKET')}/bench/{uuid.uuid4().hex}"

    def init(self) -> None:
        self.env.update({"RESTIC_PASSWORD": "bench", "RESTIC_CACHE_DIR": str(self.work / "restic-cache"),
                         "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret"})
        self.repo_arg = self.location
        subprocess.run(["restic", "-r", self.repo_arg, "init", "-q"], env=self.env, check=True, capture_output=True)

    def size(self) -> int:
        stats = subprocess.run(["restic", "-r", self.repo_arg, "stats", "--mode", "raw-data", "--json"],
                               env=self.env, capture_output=True, text=True, check=True)
        return int(json.loads(stats.stdout)["total_size"])


# (peer, ours, label): the ratio columns of the report.
PAIRS = [("restic", "lightrag-backup", ""), ("restic (S3)", "lightrag-backup (S3)", " (S3)"),
         ("lightrag-backup (no encryption)", "lightrag-backup", " (encrypted vs not)")]

TOOLS: dict[str, Callable[[Path], Tool]] = {
    "lightrag-backup": LightragBackup,
    "lightrag-backup-plain": PlainLightragBackup,
    "restic": Restic,
    "restic18": Restic18,
    "rustic": Rustic,
    "borg": Borg,
    "borg14": Borg14,
    "lightrag-backup-s3": S3LightragBackup,
    "lightrag-backup-azure": AzureLightragBackup,
    "restic-s3": ResticS3,
}


def prepare_versions(work: Path, entities: int, change_rounds: int, dim: int) -> list[Path]:
    """The graph and its changed versions, built once (reused when present)."""
    versions = [work / f"version-{n:02d}" for n in range(change_rounds + 1)]
    marker = work / f"versions-{entities}-{change_rounds}-{dim}.done"
    # A build with more change rounds holds these versions too.
    if any(int(m.name.split("-")[2]) >= change_rounds for m in work.glob(f"versions-{entities}-*-{dim}.done")):
        return versions
    for path in versions:
        shutil.rmtree(path, ignore_errors=True)
    started = time.monotonic()
    asyncio.run(lightrag_graph.build(versions[0], entities, dim=dim))
    for n in range(1, change_rounds + 1):
        shutil.copytree(versions[n - 1], versions[n])
        asyncio.run(lightrag_graph.change(versions[n], entities, round_number=n, dim=dim))
    print(f"built the graph and {change_rounds} changed versions in {time.monotonic() - started:.0f} s", flush=True)
    marker.touch()
    return versions


def load(source: Path, graph: Path) -> None:
    """Put a version of the graph at the backed-up path."""
    shutil.rmtree(graph, ignore_errors=True)
    shutil.copytree(source, graph)


def run_round(tool: Tool, versions: list[Path], work: Path, result: ToolResult) -> None:
    graph = work / "graph" / "rag_storage"
    tool.reset()
    tool.init()
    load(versions[0], graph)
    result.times.setdefault("first backup", []).append(tool.backup(graph))
    result.repo_first.append(tool.size())
    load(versions[1], graph)
    result.times.setdefault("backup after change", []).append(tool.backup(graph))
    result.repo_added_by_change.append(tool.size() - result.repo_first[-1])
    target = work / "restored"
    shutil.rmtree(target, ignore_errors=True)
    warm(tool.repo)
    result.times.setdefault("restore", []).append(tool.restore(target))
    probe = next(versions[1].iterdir()).name
    restored = next(p for p in [target, *target.rglob("rag_storage")] if (p / probe).exists())
    for f in versions[1].iterdir():
        if (restored / f.name).read_bytes() != f.read_bytes():
            raise RuntimeError(f"{tool.name} restored {f.name} wrong")
    shutil.rmtree(target)
    warm(tool.repo)
    result.times.setdefault("verify (read all data)", []).append(tool.verify())
    for version in versions[2:]:
        load(version, graph)
        tool.backup(graph)
    result.repo_after_rounds.append(tool.size())


async def live_measures(graph_source: Path, work: Path, dim: int) -> dict[str, float]:
    """Pause of an online snapshot, and restore-to-answer time, on a live instance.

    "Answer" means LightRAG answers from the snapshot's data: a naive-mode query whose text is
    one of the snapshot's chunks (the stub embedding maps equal texts to equal vectors) returns
    that chunk in its context, and the graph no longer has an entity inserted after the
    snapshot (both inside the timed span)."""
    from lightrag.backup import GraphBackup
    from lightrag.backup.offline_graph import new_rag
    from lightrag.base import QueryParam

    live = work / "live" / "rag_storage"
    load(graph_source, live)
    chunks = json.loads((live / "kv_store_text_chunks.json").read_text())
    probe = next(iter(chunks.values()))["content"]
    rag = await new_rag(live, embedding_dim=dim)
    try:
        backup = GraphBackup.from_rag("live", rag, work / "live-repo")
        pauses = []
        for _ in range(3):
            snapshot = await backup.acreate_snapshot()
            pauses.append(snapshot.metadata["live_pause_ms"])
        await rag.ainsert_custom_kg(lightrag_graph.custom_kg(10_000_000, 50, 99))
        added = lightrag_graph.entity_name(10_000_000)
        if not await rag.chunk_entity_relation_graph.has_node(added):
            raise RuntimeError("the change before the restore did not land")
        started = time.monotonic()
        await backup.arestore_snapshot(snapshot.snapshot_id, safety_snapshot=False)
        context = await rag.aquery(probe, param=QueryParam(mode="naive", only_need_context=True, enable_rerank=False))
        survived = await rag.chunk_entity_relation_graph.has_node(added)
        restore_to_answer = time.monotonic() - started
        if probe[:200] not in str(context):
            raise RuntimeError("the query after the restore did not find the snapshot's chunk")
        if survived:
            raise RuntimeError("an entity inserted after the snapshot survived the restore")
    finally:
        await rag.finalize_storages()
        shutil.rmtree(work / "live-repo", ignore_errors=True)
        shutil.rmtree(work / "live", ignore_errors=True)
    return {"pause_ms": statistics.median(pauses), "restore_to_answer_s": restore_to_answer}


def version_of(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "not installed"


# What each peer is, for the report's versions line.
PEER_VERSIONS: dict[str, tuple[list[str], str]] = {
    "restic": (["restic", "version"], ""),
    "restic (S3)": (["restic", "version"], ""),
    "restic 0.18": (["restic18", "version"], ""),
    "rustic": (["rustic", "--version"], ""),
    "borg": (["borg", "--version"], " (`--encryption none --compression zstd,3`)"),
    "borg 1.4": (["borg14", "--version"], " (`--encryption none --compression zstd,3`)"),
}


def peer_versions(results: dict[str, ToolResult]) -> list[str]:
    seen = []
    for name in results:
        if name in PEER_VERSIONS:
            command, note = PEER_VERSIONS[name]
            line = version_of(command) + note
            if line not in seen:
                seen.append(line)
    return seen


def peers_of(results: dict[str, ToolResult]) -> list[str]:
    return [name for name in results if not name.startswith("lightrag-backup")]


def ratio_heading(results: dict[str, ToolResult]) -> str:
    peers = [p for p in peers_of(results) if "(S3)" not in p]
    if len(peers) > 1:
        return "lightrag-backup vs the best peer"
    return f"lightrag-backup vs {peers[0]}" if peers else "ratio"


def pairs(results: dict[str, ToolResult], metric: Callable[[str], float]) -> list[tuple[str, str, str]]:
    """The (peer, ours, label) ratios of one row: the fixed PAIRS present in this run, and with
    several local peers, only the best of them on this row (the smallest `metric`)."""
    local = [p for p in peers_of(results) if "(S3)" not in p]
    fixed = [(peer, ours, where) for peer, ours, where in PAIRS if peer in results and ours in results]
    if len(local) <= 1 or "lightrag-backup" not in results:
        return fixed
    best = min(local, key=metric)
    return [row for row in fixed if row[0] not in local] + [(best, "lightrag-backup", f" than {best}")]


def times(ratio: float) -> str:
    """A ratio as the report prints it: two decimals where one would hide a 10% difference."""
    return f"{ratio:.2f}x" if 0.5 < ratio < 2 else f"{ratio:.1f}x"


def report(results: dict[str, ToolResult], args: argparse.Namespace, graph_mb: float, live: dict[str, float] | None) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?")
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    from importlib.metadata import version

    command = (f"python bench/run.py --entities {args.entities} --rounds {args.rounds} --change-rounds "
               f"{args.change_rounds} --tools {args.tools}" + (" --live" if args.live else ""))
    lines = [
        f"## {section_title(args, graph_mb)}",
        "",
        f"Graph: a real LightRAG graph of {args.entities} entities (dim {args.dim}, {graph_mb:.0f} MB), "
        f"{args.change_rounds} change steps (1% added, 0.2% deleted from the middle, a few edits); "
        f"median of {args.rounds} rounds, tools alternating. Command: `{command}`. "
        f"Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"Machine: {os.cpu_count()} cores ({cpu}), {mem_gb:.0f} GiB RAM, {platform.platform()}. "
        + ", ".join([f"Versions: lightrag-backup {version('lightrag-backup')}", f"lightrag-hku {version('lightrag-hku')}",
                     *peer_versions(results)]) + ". "
        "Page cache warm and dirty pages written back (`sync`) before every timed command, for every tool. "
        "lightrag-backup runs as the console script of a fresh venv holding the installed build (see `operator_venv`).",
        "",
        "| operation | " + " | ".join(results) + f" | {ratio_heading(results)} |",
        "|---|" + "---|" * len(results) + "---|",
    ]
    def median(tool: str, op: str, attr: str) -> float:
        return statistics.median(getattr(m, attr) for m in results[tool].times[op])
    for op in OPERATIONS:
        cells = [f"{median(t, op, 'seconds'):.2f} s, {median(t, op, 'rss_mb'):.0f} MB" for t in results]
        ratio = "; ".join(
            f"{times(median(peer, op, 'seconds') / max(median(ours, op, 'seconds'), 1e-9))} faster{where}"
            for peer, ours, where in pairs(results, lambda tool: median(tool, op, 'seconds'))
        )
        lines.append(f"| {op} (time, peak RSS) | " + " | ".join(cells) + f" | {ratio} |")
    for label, attr in [
        ("repository after the first backup", "repo_first"),
        ("bytes added by one change step", "repo_added_by_change"),
        (f"repository after {args.change_rounds} change steps", "repo_after_rounds"),
    ]:
        values = {t: statistics.median(getattr(r, attr)) for t, r in results.items()}
        ratio = "; ".join(
            f"{times(values[peer] / max(values[ours], 1))} smaller{where}"
            for peer, ours, where in pairs(results, values.__getitem__)
        )
        lines.append(f"| {label} | " + " | ".join(f"{v / 1e6:.1f} MB" for v in values.values()) + f" | {ratio} |")
    if live:
        lines += [
            "",
            f"Online snapshot of the live instance: LightRAG writers paused {live['pause_ms']:.1f} ms (median of 3). "
            f"`restore_snapshot` on the live instance until a query answered from the restored graph: "
            f"{live['restore_to_answer_s']:.2f} s.",
        ]
    return "\n".join(lines) + "\n"


def section_title(args: argparse.Namespace, graph_mb: float) -> str:
    return f"{graph_mb:,.0f} MB graph ({args.entities} entities): {args.tools}"


def write_section(out: Path, key: str, text: str) -> None:
    """Put `text` into `out` between this run's markers, replacing the section an earlier run
    with the same graph and tools wrote and keeping the rest of the file (the notes and the
    other runs' sections)."""
    begin, end = f"<!-- bench: {key} -->", f"<!-- /bench: {key} -->"
    block = f"{begin}\n{text.rstrip()}\n{end}\n"
    old = out.read_text() if out.exists() else "# Benchmarks\n"
    if begin in old and end in old:
        before, rest = old.split(begin, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        new = before + block + ("\n" + after if after else "")
    else:
        new = old.rstrip("\n") + "\n\n" + block
    out.write_text(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--change-rounds", type=int, default=10)
    parser.add_argument("--tools", default="lightrag-backup,restic,borg")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lightrag-backup-bench")
    parser.add_argument("--live", action="store_true", help="also measure the online pause and live restore")
    parser.add_argument("--floor", action="store_true",
                        help="also measure the machine's floor (cargo) and where lightrag-backup's time goes (perf)")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"),
                        help="the report; this run's section is replaced or added, the rest is kept")
    args = parser.parse_args(argv)
    encryption.provision(args.work)

    args.work.mkdir(parents=True, exist_ok=True)
    global LIGHTRAG_BACKUP_CLI
    LIGHTRAG_BACKUP_CLI = operator_venv(args.work)
    versions = prepare_versions(args.work, args.entities, args.change_rounds, args.dim)
    graph_mb = folder_size(versions[0]) / 1e6
    names = args.tools.split(",")
    tools = [TOOLS[name](args.work) for name in names]
    results = {tool.name: ToolResult() for tool in tools}
    for round_number in range(args.rounds):
        order = tools[round_number % len(tools):] + tools[:round_number % len(tools)]
        for tool in order:
            run_round(tool, versions, args.work, results[tool.name])
            print(f"round {round_number + 1}: {tool.name} done", flush=True)
    for tool in tools:
        tool.reset()
    live = asyncio.run(live_measures(versions[0], args.work, args.dim)) if args.live else None
    text = report(results, args, graph_mb, live)
    ours = next((tool for tool in tools if tool.name == LightragBackup.name), None)
    if args.floor and ours is not None:
        measured = {op: statistics.median(m.seconds for m in results[ours.name].times[op])
                    for op in OPERATIONS if op in results[ours.name].times}
        profiles = floor.profile_operations(ours, versions, args.work, load, warm)
        change = (floor.true_change(versions[0], versions[1]),
                  statistics.median(results[ours.name].repo_added_by_change))
        text += floor.section(measured, floor.floor(versions[0]), profiles, change)
    write_section(args.out, f"{args.entities} entities, {args.tools}", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
