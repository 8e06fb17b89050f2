"""How long a records snapshot holds LightRAG's pipeline, for a graph of N entities in one
backend. Each round times ``capture.read`` (what the pause is when the reads run under the
hold) and then takes a snapshot into a local repository, printing its recorded pause
(``live_pause_ms``) and how its records were read (``pipeline_held``, or
``postgresql_snapshot`` for a graph wholly in PostgreSQL, whose pause is only the opening of
the snapshot's transaction).

    eval "$(bash scripts/test-servers.sh env)"
    python bench/records_pause.py --backend pgvector --entities 5000 --dim 1024

The graph is built once per backend, entity count and dimension (workspace ``pause<N>``,
reused when it is there). Run it with two builds of lightrag-backup to compare them: the
content digest printed must not change. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import encryption  # noqa: E402
import lightrag_graph  # noqa: E402
from databases import BACKENDS  # noqa: E402


async def measure(args: argparse.Namespace) -> None:
    import shutil
    import tempfile

    from lightrag.backup import GraphBackup
    from lightrag.backup.storage import LocalBackupStorage
    from lightrag.backup.offline_graph import new_rag
    from lightrag.backup.records import capture

    storages = BACKENDS[args.backend]
    workspace = f"pause{args.entities}d{args.dim}"
    folder = args.work / args.backend
    marker = folder / f"{workspace}.built"
    if not marker.exists():
        await lightrag_graph.build(folder, args.entities, dim=args.dim, workspace=workspace, storages=storages)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    rag = await new_rag(folder, workspace=workspace, embedding_dim=args.dim, storages=storages)
    repository = Path(tempfile.mkdtemp(prefix="lightrag-backup-bench-pause-repo-"))
    try:
        backup = GraphBackup.from_rag("pause", rag, LocalBackupStorage(str(repository)))
        for _ in range(args.rounds):
            started = time.perf_counter()
            captured = await capture.read(rag)
            seconds = time.perf_counter() - started
            started = time.perf_counter()
            snapshot = await backup.acreate_snapshot()
            total = time.perf_counter() - started
            records = snapshot.metadata["records"]
            print(f"{args.backend} {args.entities} entities: read {seconds:.2f} s, {captured.manifest['status']}, "
                  f"{captured.digest()}; snapshot {total:.2f} s, pause {snapshot.metadata['live_pause_ms']:.0f} ms "
                  f"({records['read']}), {records['digest']}", flush=True)
    finally:
        await rag.finalize_storages()
        shutil.rmtree(repository, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="pgvector")
    parser.add_argument("--entities", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/lightrag-backup-bench-pause"))
    args = parser.parse_args()
    encryption.provision(args.work)
    port = {"pgvector": os.environ.get("LRB_TEST_PGVECTOR_PORT")}.get(args.backend, os.environ.get("LRB_TEST_PG_PORT"))
    os.environ.update(POSTGRES_HOST=os.environ.get("LRB_TEST_PG_HOST", "127.0.0.1"), POSTGRES_PORT=port or "5432",
                      POSTGRES_USER=os.environ.get("LRB_TEST_PG_USER", "postgres"), POSTGRES_PASSWORD="",
                      POSTGRES_DATABASE="postgres", REDIS_URI=os.environ.get("LRB_TEST_REDIS_URI", ""))
    asyncio.run(measure(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
