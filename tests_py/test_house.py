"""The structure replication and recovery build on: no import circles, a catalog that keeps
replication history, reads that write nothing, and one lock per graph for every entry point."""

from __future__ import annotations

import ast
import asyncio
import re
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

import lightrag.backup
from lightrag.backup import BackupManager
from lightrag.backup.catalog import MIGRATIONS, Catalog
from lightrag.backup.offline_graph import build_graph
from lightrag.backup.storage import LocalBackupStorage

PACKAGE_ROOT = Path(lightrag.backup.__file__).parent.parent  # the installed lightrag/ folder


def module_imports(path: Path, name: str) -> set[str]:
    """Every lightrag module a file imports, at the top or inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            found.add(origin)
            # `from . import x` imports the module x when there is one.
            found.update(f"{origin}.{alias.name}" for alias in node.names)
    return {module for module in found if module.startswith("lightrag.")}


def our_modules() -> dict[str, set[str]]:
    modules: dict[str, Path] = {}
    for top in ("backup", "replication", "recovery"):
        for path in (PACKAGE_ROOT / top).rglob("*.py") if (PACKAGE_ROOT / top).is_dir() else ():
            parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return {name: {m for m in module_imports(path, name) if m in modules} for name, path in modules.items()}


def test_the_package_has_no_import_circles():
    graph = our_modules()
    assert "lightrag.backup.graph_backup" in graph and "lightrag.backup.cli.backup" in graph
    # Importing a submodule runs its package's __init__ first: that is no circle of ours.
    edges = {name: {m for m in imports if m != name and not name.startswith(m + ".")} for name, imports in graph.items()}
    circles = []
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for other in sorted(edges[name]):
            if state.get(other) == "open":
                circles.append(trail[trail.index(other):] + [other] if other in trail else [name, other])
            elif other not in state:
                visit(other, trail + [other])
        state[name] = "done"

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert circles == [], "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_backup_imports_neither_replication_nor_recovery_except_the_app_factory_cli_and_server():
    allowed = ("lightrag.backup.app", "lightrag.backup.http.app", "lightrag.backup.cli", "lightrag.backup.server")
    for name, imports in our_modules().items():
        if name.startswith("lightrag.backup") and not name.startswith(allowed):
            reaching = {m for m in imports if m.startswith(("lightrag.replication", "lightrag.recovery"))}
            assert not reaching, f"{name} imports {reaching}"


def _hand_written_twin(node: ast.AST) -> "str | None":
    """The name a method copies by hand, when all it does is call its twin: ``async def aX``
    returning ``await asyncio.to_thread(self.X, ...)``, or ``def X`` returning
    ``run_sync(self.aX(...))``."""
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    body = [b for b in node.body if not (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))]
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        return None
    value = body[0].value
    if isinstance(node, ast.AsyncFunctionDef) and isinstance(value, ast.Await) and isinstance(value.value, ast.Call):
        call = value.value
        if ast.unparse(call.func) == "asyncio.to_thread" and call.args and ast.unparse(call.args[0]) == f"self.{node.name[1:]}":
            return node.name
    if isinstance(node, ast.FunctionDef) and isinstance(value, ast.Call) and value.args:
        inner = value.args[0]
        if isinstance(inner, ast.Call) and ast.unparse(inner.func) == f"self.a{node.name}":
            return node.name
    return None


def test_twins_are_made_by_one_helper_with_their_implementations_signature_and_documentation():
    import inspect

    from lightrag.backup import GraphBackup
    from lightrag.backup.snapshots import GraphSnapshots
    from lightrag.recovery.disaster_recovery import DisasterRecoveryManager
    from lightrag.recovery.health import HealthValidator
    from lightrag.replication import GraphReplicator, ReplicationManager

    written = []
    for path in sorted(PACKAGE_ROOT.glob("*/**/*.py")):
        if not {"backup", "replication", "recovery"} & set(path.relative_to(PACKAGE_ROOT).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = _hand_written_twin(node)
            if name:
                written.append(f"{path.relative_to(PACKAGE_ROOT)}: {name}")
    assert written == [], "twins written by hand (use lightrag.backup.twins): " + ", ".join(written)

    def parameters(function: Any) -> list[tuple[str, Any, Any]]:
        return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]

    pairs = 0
    for cls in (GraphBackup, GraphSnapshots, BackupManager, ReplicationManager, GraphReplicator, HealthValidator,
                DisasterRecoveryManager):
        for name in dir(cls):
            twin = getattr(cls, name)
            if name.startswith("a") and inspect.iscoroutinefunction(twin) and hasattr(cls, name[1:]):
                sync = getattr(cls, name[1:])
                assert not inspect.iscoroutinefunction(sync), f"{cls.__name__}.{name[1:]}"
                assert parameters(sync) == parameters(twin), f"{cls.__name__}.{name}"
                assert sync.__doc__ and not sync.__doc__.startswith("Async twin"), f"{cls.__name__}.{name[1:]}"
                assert sync.__name__ == name[1:] and twin.__name__ == name, f"{cls.__name__}.{name}"
                pairs += 1
    assert pairs >= 40


async def test_a_sync_twin_called_inside_a_running_loop_is_refused_naming_its_async_twin(tmp_path: Path):
    from lightrag.backup.errors import InvalidInputError
    from lightrag.recovery.health import HealthValidator

    validator = HealthValidator(BackupManager(LocalBackupStorage(tmp_path / "repo"), tmp_path / "catalog.sqlite3"))
    with pytest.raises(InvalidInputError, match="avalidate_all_graphs"):
        validator.validate_all_graphs()
    assert await validator.avalidate_all_graphs() == {}


def test_no_module_fakes_a_graph_or_reaches_into_the_storage_or_a_graph():
    """A graph known only by its snapshots is a GraphSnapshots (or GraphBackup.of one), never a
    GraphBackup of an os.devnull folder; the engine's repository is ``storage.engine``; a graph's
    sources and snapshots are driven through their public methods."""
    private = re.compile(r"\b(?!self\b|cls\b)\w+\.(_repo|_password_source|_engine|_stage|_finish_stage|_snapshot_staged"
                         r"|_new_staging|_snapshot_op|_record_restore|_backup_of|_after_shred|_native_json|_keep_report|_instance"
                         r"|_record|_push|_remote_call|_instance_call|_instance_info)\b")
    found = []
    for path in sorted(PACKAGE_ROOT.glob("*/**/*.py")):
        if path.parent.name not in ("backup", "replication", "recovery") and "backup" not in path.parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            where = f"{path.relative_to(PACKAGE_ROOT)}:{number}: {line.strip()}"
            if "devnull" in line or (private.search(line) and path.name != "storage.py"):
                found.append(where)
    assert found == []


def test_the_shared_http_layer_loads_no_router_and_the_old_factory_path_still_works():
    """``lightrag.backup.http`` is what every router shares and sits below them: importing it
    (and the old ``lightrag.backup.http.app`` path, kept for code written against it) loads
    no router; the factory's names are found through the old path when asked for."""
    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys\n"
         "import lightrag.backup.http.app as old, lightrag.backup.http.jobs, lightrag.backup.http.errors\n"
         "loaded = sorted(m for m in sys.modules if m.endswith('.api') and m.startswith('lightrag.'))\n"
         "from lightrag.backup.http.app import mount_routers\n"
         "from lightrag.backup.app import mount_routers as new\n"
         "print(loaded, mount_routers is new)"],
        capture_output=True, text=True, timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[] True", probe.stdout


# -- the catalog keeps replication history ------------------------------------------------


async def graph_folder(path: Path, docs: int = 2) -> Path:
    workspace = f"w{uuid.uuid4().hex[:8]}"
    rag = await build_graph(path, docs, workspace=workspace)
    await rag.finalize_storages()
    return path / workspace


def log_rows(catalog: Catalog) -> list[tuple[str, str, str]]:
    return [(r["log_id"], r["backup_id"], r["status"]) for r in catalog.replication_logs()]


async def test_replication_logs_survive_rerecording_rebuilds_and_forgetting(tmp_path: Path):
    manager = BackupManager(LocalBackupStorage(tmp_path / "repo"), tmp_path / "catalog.sqlite3")
    manager.register_graph("g1", await graph_folder(tmp_path / "g1"))
    backup = manager.get_graph("g1")
    snapshot = backup.create_snapshot("one")
    log_id = manager.catalog.record_replication(backup_id=snapshot.snapshot_id, target_id="standby", graph_id="g1",
                                                status="completed", data_hash=snapshot.data_hash)
    expected = [(log_id, snapshot.snapshot_id, "completed")]

    backup.get_snapshot(snapshot.snapshot_id)
    assert backup.verify_snapshot(snapshot.snapshot_id).ok       # verifying records the snapshot again
    manager.catalog.record_snapshot(snapshot)                       # so does any refresh
    assert log_rows(manager.catalog) == expected
    assert manager.rebuild_catalog() == 1
    assert log_rows(manager.catalog) == expected
    backup.delete_snapshot(snapshot.snapshot_id)                    # forgetting keeps the history
    assert manager.catalog.snapshots("g1") == [] and log_rows(manager.catalog) == expected
    manager.rebuild_catalog()
    assert log_rows(manager.catalog) == expected


def test_a_version_1_catalog_migrates_forward_with_its_rows(tmp_path: Path):
    path = tmp_path / "v1.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("INSERT INTO graph_backups (backup_id, graph_id, timestamp, snapshot_path, data_hash, size_bytes, status, "
               "metadata) VALUES ('s1', 'g1', '2026-11-01T00:00:00+00:00', 'snapshots/g1/s1', 'abc', 10, 'completed', '{}')")
    db.execute("INSERT INTO replication_logs (log_id, backup_id, target_id, graph_id, status) "
               "VALUES ('l1', 's1', 'standby', 'g1', 'completed')")
    db.execute("INSERT INTO backup_schedules (graph_id, interval_seconds, enabled, next_run, created_at, updated_at) "
               "VALUES ('g1', 3600, 1, '2026-11-01T01:00:00+00:00', 'x', 'x')")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()

    catalog = Catalog(path)
    assert catalog.schema_version == len(MIGRATIONS) >= 2
    assert [r["backup_id"] for r in catalog.snapshots()] == ["s1"]
    assert log_rows(catalog) == [("l1", "s1", "completed")]
    assert catalog.schedule("g1")["interval_seconds"] == 3600
    catalog.forget_snapshots(["s1"])                 # once cascaded into the logs
    assert log_rows(catalog) == [("l1", "s1", "completed")]
    catalog.close()
    again = Catalog(path)                            # migrating is done once
    assert again.schema_version == len(MIGRATIONS) and log_rows(again) == [("l1", "s1", "completed")]


async def test_reading_writes_nothing_to_the_catalog(tmp_path: Path):
    manager = BackupManager(LocalBackupStorage(tmp_path / "repo"), tmp_path / "catalog.sqlite3")
    manager.register_graph("g1", await graph_folder(tmp_path / "g1"))
    backup = manager.get_graph("g1")
    snapshot = backup.create_snapshot("one")
    manager.catalog.forget_snapshots([snapshot.snapshot_id])  # the row is gone; reads must not bring it back
    changes = manager.catalog._db.total_changes

    backup.get_snapshot(snapshot.snapshot_id)
    await backup.aget_snapshot(snapshot.snapshot_id[:8])
    backup.list_snapshots()
    await backup.alist_snapshots()
    manager.get_all_snapshots()
    backup.get_backup_stats()
    assert manager.catalog._db.total_changes == changes
    assert manager.catalog.snapshots("g1") == []
    backup.verify_snapshot(snapshot.snapshot_id)               # verifying does record
    assert [r["backup_id"] for r in manager.catalog.snapshots("g1")] == [snapshot.snapshot_id]


# -- one lock per graph: a scheduled backup and a REST restore never overlap ---------------


def gate(obj: Any, method: str) -> tuple[asyncio.Event, asyncio.Event]:
    """Make ``obj.method`` wait at its start until released: returns (entered, release)."""
    entered, release = asyncio.Event(), asyncio.Event()
    original = getattr(obj, method)

    async def gated(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        await release.wait()
        return await original(*args, **kwargs)

    setattr(obj, method, gated)
    return entered, release


async def test_a_scheduled_backup_and_a_rest_restore_of_one_graph_serialise(tmp_path: Path):
    from lightrag.backup.app import create_app

    graphs = tmp_path / "graphs"
    rag = await build_graph(graphs / "g1", 2, workspace="")
    await rag.finalize_storages()
    manager = BackupManager(LocalBackupStorage(tmp_path / "repo"), tmp_path / "catalog.sqlite3")
    app = create_app(manager, api_key="k", graphs_dir=graphs, run_scheduler=False)
    manager.schedule_backup("g1", "1h")
    backup = manager.get_graph("g1")
    first = backup.create_snapshot("base")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers={"X-API-Key": "k"}) as client:
        # A scheduled backup holds the graph: a REST restore of it is refused, not run beside it.
        entered, release = gate(backup, "acreate_snapshot")
        scheduled = asyncio.create_task(manager.run_scheduled_backup("g1"))
        await asyncio.wait_for(entered.wait(), 30)
        refused = await client.post(f"/backup/graphs/g1/snapshots/{first.snapshot_id}/restore")
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["kind"] == "operation_running"
        assert "scheduled backup" in refused.json()["error"]["message"]
        release.set()
        assert (await asyncio.wait_for(scheduled, 60)).result in ("created", "skipped")
        del backup.acreate_snapshot

        # A REST restore holds the graph: the scheduled backup waits for it, then runs.
        entered, release = gate(backup, "arestore_snapshot")
        started = await client.post(f"/backup/graphs/g1/snapshots/{first.snapshot_id}/restore")
        assert started.status_code == 202, started.text
        await asyncio.wait_for(entered.wait(), 30)
        scheduled = asyncio.create_task(manager.run_scheduled_backup("g1"))
        await asyncio.sleep(0.5)
        assert not scheduled.done(), "the scheduled backup ran beside the restore"
        holder = manager.locks.holder("g1")
        assert holder is not None and holder.operation == "restore"
        release.set()
        result = await asyncio.wait_for(scheduled, 60)
        assert result.result in ("created", "skipped"), result
        status = await client.get(started.json()["status_url"])
        assert status.status_code == 200, status.text
        job = status.json()
        assert job["state"] == "succeeded", job
        assert manager.locks.holder("g1") is None
