"""What per-graph keys cost: stored bytes and snapshot time with a key per graph against one
shared key, for tenants whose graphs share content (a workspace cloned from another, the same
documents ingested by two tenants) and for unrelated ones.

    python bench/graph_keys.py --entities 5000 --out BENCHMARKS.md

Each case snapshots graph A, then graph B, into a new encrypted repository made with
``key_per_graph`` on or off, and reports the repository's size after each snapshot and B's
snapshot time (median of ``--rounds``). Results replace this benchmark's section of ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lightrag_graph  # noqa: E402
from encryption import provision  # noqa: E402
from run import write_section  # noqa: E402


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def one_case(work: Path, a: Path, b: Path, key_per_graph: bool) -> dict[str, float]:
    from lightrag.backup import GraphBackup
    from lightrag.backup.storage import LocalBackupStorage

    repo = work / f"repo-{'per-graph' if key_per_graph else 'shared'}"
    shutil.rmtree(repo, ignore_errors=True)
    storage = LocalBackupStorage(repo, key_per_graph=key_per_graph)
    GraphBackup("tenant-a", storage, a).create_snapshot()
    after_a = folder_bytes(repo)
    started = time.perf_counter()
    GraphBackup("tenant-b", storage, b).create_snapshot()
    seconds = time.perf_counter() - started
    return {"after_a": after_a, "after_b": folder_bytes(repo), "b_seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lightrag-backup-bench-keys")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    provision(args.work)
    a, clone, other = args.work / "graph-a", args.work / "graph-a-clone", args.work / "graph-other"
    marker = args.work / f"graphs-{args.entities}-{args.dim}.done"
    if not marker.exists():
        for path in (a, clone, other):
            shutil.rmtree(path, ignore_errors=True)
        asyncio.run(lightrag_graph.build(a, args.entities, dim=args.dim, seed=1))
        shutil.copytree(a, clone)
        asyncio.run(lightrag_graph.build(other, args.entities, dim=args.dim, seed=2))
        marker.touch()
    graph_mb = folder_bytes(a) / 1e6
    rows = []
    for case, b in (("B is a clone of A", clone), ("B is unrelated to A", other)):
        results: dict[bool, list[dict[str, float]]] = {True: [], False: []}
        for _ in range(args.rounds):
            for key_per_graph in (False, True):  # alternating, on a shared and noisy machine
                results[key_per_graph].append(one_case(args.work, a, b, key_per_graph))
        for key_per_graph in (False, True):
            runs = results[key_per_graph]
            rows.append((case, "a key per graph" if key_per_graph else "one shared key",
                         statistics.median(r["after_a"] for r in runs) / 1e6,
                         statistics.median(r["after_b"] for r in runs) / 1e6,
                         statistics.median(r["b_seconds"] for r in runs)))
    lines = [f"### Per-graph keys: what dedup across graphs was worth ({args.entities} entities, dim {args.dim}, "
             f"{graph_mb:.0f} MB per graph, median of {args.rounds})", "",
             "`python bench/graph_keys.py --entities {0} --dim {1} --rounds {2}`".format(
                 args.entities, args.dim, args.rounds), "",
             "| case | keys | repository after A | after A and B | B's snapshot |",
             "|---|---|---|---|---|"]
    for case, keys, after_a, after_b, seconds in rows:
        lines.append(f"| {case} | {keys} | {after_a:.1f} MB | {after_b:.1f} MB | {seconds:.2f} s |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        write_section(args.out, "per-graph keys", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
