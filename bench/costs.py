"""What an operation costs in requests as a repository's history grows, on an S3 server (each
request is billed): opening the repository and listing a graph's snapshots, reading one,
taking one, each in a new process's view (a freshly opened repository), with this host's
cache of index objects and manifests and without it (``LIGHTRAG_BACKUP_CACHE=off``).

    bash scripts/test-servers.sh start && eval "$(bash scripts/test-servers.sh env)"
    python bench/costs.py --snapshots 10,100,300 --out BENCHMARKS.md

The graph is small (a few KB that change at every snapshot): what is measured is the number of
requests, which does not depend on the graph's size. Results replace this benchmark's section of ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from encryption import provision  # noqa: E402
from run import write_section  # noqa: E402


def s3_storage(prefix: str) -> Any:
    from lightrag.backup.storage import S3BackupStorage

    endpoint = os.environ.get("LRB_TEST_S3_ENDPOINT")
    if not endpoint:
        raise SystemExit("LRB_TEST_S3_ENDPOINT is not set: start the servers with `bash scripts/test-servers.sh "
                         'start` and eval "$(bash scripts/test-servers.sh env)"')
    return S3BackupStorage(os.environ.get("LRB_TEST_S3_BUCKET", "lrb-test"), prefix, endpoint_url=endpoint,
                           access_key_id="test", secret_access_key="test", region="us-east-1", allow_http=True)


def requests(counts: dict[str, Any]) -> int:
    return int(counts["gets"] + counts["heads"] + sum(counts["lists"].values()) + counts["puts"] + counts["deletes"])


def spent(open_storage: Callable[[], Any], work: Callable[[Any], Any]) -> int:
    """The requests ``work`` makes in a new process's view of the repository (opening it included)."""
    storage = open_storage()
    work(storage)
    return requests(storage.request_counts())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", default="10,100,300", help="history sizes to measure at, comma-separated")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lightrag-backup-bench-costs")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    sizes = sorted({int(n) for n in args.snapshots.split(",") if n.strip()})
    provision(args.work)
    from lightrag.backup import GraphBackup
    from lightrag.backup.snapshots import GraphSnapshots

    graph = args.work / "graph"
    shutil.rmtree(graph, ignore_errors=True)
    graph.mkdir(parents=True)
    cache = args.work / "cache"
    os.environ["LIGHTRAG_BACKUP_CACHE_DIR"] = str(cache)
    prefix = f"bench-costs/{uuid.uuid4().hex}"

    def open_storage() -> Any:
        return s3_storage(prefix)

    def change(n: int) -> None:
        (graph / "kv_store_full_docs.json").write_text(json.dumps({f"doc-{n}": {"content": f"document {n} " * 20}}))

    writer = GraphBackup("g", open_storage(), working_dir=graph)
    taken = 0
    rows = []
    for size in sizes:
        while taken < size:
            change(taken)
            writer.create_snapshot()
            taken += 1
        row: dict[str, int] = {"snapshots": size, "index objects": open_storage().engine.index_object_counts()[0]}
        for cached in (False, True):
            os.environ["LIGHTRAG_BACKUP_CACHE"] = "on" if cached else "off"
            label = "cached" if cached else "uncached"
            if cached:
                shutil.rmtree(cache, ignore_errors=True)
                # A process on this host saw the history once (the cache is warm) ...
                spent(open_storage, lambda s: GraphSnapshots("g", s).list_snapshots())
            newest = writer.list_snapshots()[-1].snapshot_id
            row[f"list {label}"] = spent(open_storage, lambda s: GraphSnapshots("g", s).list_snapshots())
            row[f"get {label}"] = spent(open_storage, lambda s: GraphSnapshots("g", s).get_snapshot(newest))

            def snapshot(storage: Any) -> None:
                change(taken + 10_000)
                GraphBackup("g", storage, working_dir=graph).create_snapshot()

            row[f"snapshot {label}"] = spent(open_storage, snapshot)
            taken += 1
        rows.append(row)
    os.environ.pop("LIGHTRAG_BACKUP_CACHE", None)
    lines = ["### Requests per operation as the history grows (S3, a new process each time)", "",
             f"`python bench/costs.py --snapshots {','.join(map(str, sizes))}` (moto on loopback; every request "
             "counted by the engine, `storage.request_counts()`). Uncached: `LIGHTRAG_BACKUP_CACHE=off`; cached: "
             "this host's cache had seen the history.", "",
             "| snapshots | live index objects | list a graph's snapshots: uncached / cached "
             "| read one: uncached / cached | take one: uncached / cached |",
             "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['snapshots']} | {row['index objects']} | {row['list uncached']} / {row['list cached']} | "
                     f"{row['get uncached']} / {row['get cached']} | {row['snapshot uncached']} / "
                     f"{row['snapshot cached']} |")
    text = "\n".join(lines) + "\n"
    print(text)
    print(json.dumps(rows))
    if args.out is not None:
        write_section(args.out, "request costs", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
