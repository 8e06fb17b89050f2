"""The catalog: an embedded SQLite cache of the repository, plus schedules and logs.

The repository is the source of truth; the catalog makes listing and stats fast and keeps what
only the running deployment knows (registered graphs, schedules, verify results, replication
logs, recovery points). :meth:`Catalog.rebuild` recreates the snapshot rows from the
repository alone, so losing the catalog never loses a backup.

Tables follow the Phase 5A design (``graph_backups``, ``replication_logs``, ``recovery_points``),
with SQLite types: UUIDs and timestamps as ISO 8601 text, JSON as text. The schema version is
SQLite's ``user_version``; :data:`MIGRATIONS` upgrade it one step at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

from .errors import CatalogError, InvalidInputError

if TYPE_CHECKING:
    from .types import BackupSnapshot

MIGRATIONS: list[str] = [
    # 1: the Phase 5A design's tables, schedules, registered graphs, verify results. Idempotent, so two
    # processes migrating one file at the same moment cannot collide.
    """
    CREATE TABLE IF NOT EXISTS graphs (
        graph_id TEXT PRIMARY KEY,
        working_dir TEXT,
        workspace TEXT NOT NULL DEFAULT '',
        registered_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS graph_backups (
        backup_id TEXT PRIMARY KEY,
        graph_id TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        snapshot_path TEXT NOT NULL,
        data_hash TEXT NOT NULL,
        size_bytes INTEGER,
        status TEXT,
        retention_until TEXT,
        metadata TEXT,
        created_at TEXT DEFAULT CURRENT_TIMESTAMP
    );
    CREATE INDEX IF NOT EXISTS graph_backups_graph_time ON graph_backups (graph_id, timestamp);
    CREATE TABLE IF NOT EXISTS replication_logs (
        log_id TEXT PRIMARY KEY,
        backup_id TEXT NOT NULL REFERENCES graph_backups (backup_id) ON DELETE CASCADE,
        target_id TEXT NOT NULL,
        graph_id TEXT NOT NULL,
        status TEXT,
        error_message TEXT,
        attempted_at TEXT,
        completed_at TEXT,
        data_hash TEXT
    );
    CREATE INDEX IF NOT EXISTS replication_logs_graph_target ON replication_logs (graph_id, target_id, status);
    CREATE TABLE IF NOT EXISTS recovery_points (
        checkpoint_id TEXT PRIMARY KEY,
        timestamp TEXT NOT NULL,
        graphs TEXT,
        validated INTEGER DEFAULT 0,
        description TEXT,
        created_by TEXT,
        created_at TEXT DEFAULT CURRENT_TIMESTAMP
    );
    CREATE INDEX IF NOT EXISTS recovery_points_time ON recovery_points (timestamp DESC);
    CREATE TABLE IF NOT EXISTS backup_schedules (
        graph_id TEXT PRIMARY KEY,
        interval_seconds REAL,
        cron TEXT,
        enabled INTEGER NOT NULL DEFAULT 1,
        retention TEXT,
        next_run TEXT,
        last_run TEXT,
        last_result TEXT,
        last_error TEXT,
        last_snapshot_id TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS verify_results (
        graph_id TEXT NOT NULL,
        snapshot_id TEXT,
        verified_at TEXT NOT NULL,
        ok INTEGER NOT NULL,
        read_data INTEGER NOT NULL,
        errors TEXT
    );
    CREATE INDEX IF NOT EXISTS verify_results_graph ON verify_results (graph_id, verified_at);
    """,
    # 2: replication logs are history: they outlive the snapshot rows they name (which are
    # refreshed, rebuilt and forgotten), so they lose the cascading foreign key of version 1.
    # SQLite cannot drop a constraint: the table is copied into one without it.
    """
    CREATE TABLE replication_logs_v2 (
        log_id TEXT PRIMARY KEY,
        backup_id TEXT NOT NULL,
        target_id TEXT NOT NULL,
        graph_id TEXT NOT NULL,
        status TEXT,
        error_message TEXT,
        attempted_at TEXT,
        completed_at TEXT,
        data_hash TEXT
    );
    INSERT INTO replication_logs_v2 SELECT log_id, backup_id, target_id, graph_id, status, error_message,
        attempted_at, completed_at, data_hash FROM replication_logs;
    DROP TABLE replication_logs;
    ALTER TABLE replication_logs_v2 RENAME TO replication_logs;
    CREATE INDEX replication_logs_graph_target ON replication_logs (graph_id, target_id, status);
    CREATE INDEX replication_logs_backup ON replication_logs (backup_id);
    """,
    # 3: replication targets, and what each attempt moved.
    """
    CREATE TABLE IF NOT EXISTS replication_targets (
        target_id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        base_url TEXT NOT NULL,
        api_key TEXT,
        enabled INTEGER NOT NULL DEFAULT 1,
        graphs TEXT,
        conflict_policy TEXT NOT NULL DEFAULT 'reject',
        ca_file TEXT,
        options TEXT,
        created_at TEXT NOT NULL,
        last_health TEXT
    );
    ALTER TABLE replication_logs ADD COLUMN bytes_sent INTEGER;
    ALTER TABLE replication_logs ADD COLUMN chunks_sent INTEGER;
    ALTER TABLE replication_logs ADD COLUMN duration_ms INTEGER;
    """,
    # 4: this instance's own state: its role (primary / standby) and fencing epoch.
    """
    CREATE TABLE IF NOT EXISTS instance_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
    # 5: disaster recovery: the snapshots each recovery point names and its newest
    # validation (the points themselves live in the repository); health checks; failovers and
    # drills with their measured RTO and RPO.
    """
    ALTER TABLE recovery_points ADD COLUMN snapshots TEXT;
    ALTER TABLE recovery_points ADD COLUMN validated_at TEXT;
    ALTER TABLE recovery_points ADD COLUMN metadata TEXT;
    CREATE TABLE IF NOT EXISTS health_checks (
        graph_id TEXT NOT NULL,
        checked_at TEXT NOT NULL,
        status TEXT NOT NULL,
        problems TEXT
    );
    CREATE INDEX IF NOT EXISTS health_checks_graph ON health_checks (graph_id, checked_at);
    CREATE TABLE IF NOT EXISTS recovery_events (
        event_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        checkpoint_id TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        ok INTEGER,
        rto_seconds REAL,
        rpo_seconds REAL,
        report TEXT
    );
    CREATE INDEX IF NOT EXISTS recovery_events_kind ON recovery_events (kind, started_at);
    """,
]


def _statements(script: str) -> list[str]:
    """The SQL statements of a migration script, one by one (``executescript`` would commit
    the transaction the migration runs in)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise CatalogError(f"incomplete catalog migration statement: {pending.strip()[:80]}")
    return statements


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def default_catalog_path(storage_url: str) -> Path:
    """``LIGHTRAG_BACKUP_CATALOG_PATH``; else ``catalog.sqlite3`` beside the repository
    folder for a local repository (``<repo>/catalog.sqlite3``); else one file per repository URL
    under ``~/.local/state/lightrag-backup``."""
    explicit = os.environ.get("LIGHTRAG_BACKUP_CATALOG_PATH")
    if explicit:
        return Path(explicit).expanduser()
    if "://" not in storage_url or storage_url.startswith("file://"):
        local = storage_url[len("file://"):] if storage_url.startswith("file://") else storage_url
        return Path(local).expanduser().absolute() / "catalog.sqlite3"
    digest = hashlib.sha256(storage_url.encode()).hexdigest()[:16]
    state = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state"))
    return state / "lightrag-backup" / f"catalog-{digest}.sqlite3"


class Catalog:
    """One SQLite catalog file. Safe to share between threads; several processes may open the
    same file (WAL mode, busy timeout). It is the :class:`~lightrag.backup.types.SnapshotRecorder`
    of the manager's graphs."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
            if created:
                # It may hold replication targets' keys: readable by its owner only.
                os.chmod(self.path, 0o600)
        except (OSError, sqlite3.Error) as error:
            raise CatalogError(f"cannot open the catalog {self.path}: {error}") from None
        self._lock = threading.RLock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._migrate()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise CatalogError(
                f"the catalog {self.path} has schema version {version}, newer than this lightrag-backup "
                f"({len(MIGRATIONS)}); upgrade, or rebuild it with `lightrag-backup catalog rebuild`"
            )
        for number in range(version, len(MIGRATIONS)):
            with self._write() as db:
                # Another process may have taken this step since the version was read.
                if db.execute("PRAGMA user_version").fetchone()[0] > number:
                    continue
                for statement in _statements(MIGRATIONS[number]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._db.execute(sql, args)
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def generation(self) -> tuple[int, int]:
        """Equal while nothing was written to the catalog: rows this connection changed
        (``total_changes``) and commits by other connections (``PRAGMA data_version``)."""
        with self._lock:
            return self._db.total_changes, int(self._db.execute("PRAGMA data_version").fetchone()[0])

    # -- graphs ---------------------------------------------------------------------------

    def register_graph(self, graph_id: str, working_dir: Optional[str], workspace: str) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO graphs (graph_id, working_dir, workspace, registered_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (graph_id) DO UPDATE SET working_dir = excluded.working_dir, workspace = excluded.workspace",
                (graph_id, working_dir, workspace, now_iso()),
            )

    def graphs(self) -> list[dict[str, Any]]:
        return self._rows("SELECT graph_id, working_dir, workspace, registered_at FROM graphs ORDER BY graph_id")

    # -- snapshots ------------------------------------------------------------------------

    @staticmethod
    def _backup_row(snapshot: "BackupSnapshot") -> tuple[Any, ...]:
        metadata = {
            key: value for key, value in snapshot.metadata.items() if key != "files"
        }
        metadata.update(description=snapshot.description, tags=list(snapshot.tags), stored_bytes=snapshot.stored_bytes)
        return (
            snapshot.snapshot_id,
            snapshot.graph_id,
            snapshot.timestamp.isoformat(),
            f"snapshots/{snapshot.graph_id}/{snapshot.snapshot_id}",
            snapshot.data_hash,
            snapshot.size_bytes,
            snapshot.status.value,
            json.dumps(metadata, default=str),
        )

    # An upsert, not INSERT OR REPLACE: a replace deletes the row first, and everything that
    # refers to it with it.
    _UPSERT_BACKUP = (
        "INSERT INTO graph_backups (backup_id, graph_id, timestamp, snapshot_path, data_hash, "
        "size_bytes, status, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (backup_id) DO UPDATE SET "
        "graph_id = excluded.graph_id, timestamp = excluded.timestamp, snapshot_path = excluded.snapshot_path, "
        "data_hash = excluded.data_hash, size_bytes = excluded.size_bytes, status = excluded.status, "
        "metadata = excluded.metadata"
    )

    def record_snapshot(self, snapshot: "BackupSnapshot") -> None:
        """Add (or refresh) one snapshot, as the repository describes it."""
        with self._write() as db:
            db.execute(self._UPSERT_BACKUP, self._backup_row(snapshot))

    def forget_snapshots(self, snapshot_ids: list[str]) -> None:
        """Drop the rows of forgotten snapshots (their replication logs stay: history)."""
        with self._write() as db:
            db.executemany("DELETE FROM graph_backups WHERE backup_id = ?", [(s,) for s in snapshot_ids])

    def replace_graph_snapshots(self, graph_id: Optional[str], snapshots: "list[BackupSnapshot]") -> None:
        """Make the rows of one graph (or of all graphs) exactly ``snapshots``: rows the list
        lacks are dropped, the others upserted. Nothing else in the catalog changes."""
        keep = [s.snapshot_id for s in snapshots]
        with self._write() as db:
            db.execute("CREATE TEMP TABLE IF NOT EXISTS keep_ids (backup_id TEXT PRIMARY KEY)")
            db.execute("DELETE FROM keep_ids")
            db.executemany("INSERT OR IGNORE INTO keep_ids VALUES (?)", [(s,) for s in keep])
            scope, args = ("", ()) if graph_id is None else (" AND graph_id = ?", (graph_id,))
            db.execute(f"DELETE FROM graph_backups WHERE backup_id NOT IN (SELECT backup_id FROM keep_ids){scope}", args)
            db.execute("DELETE FROM keep_ids")
            db.executemany(self._UPSERT_BACKUP, [self._backup_row(s) for s in snapshots])

    def snapshots(self, graph_id: Optional[str] = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM graph_backups"
        args: tuple[Any, ...] = ()
        if graph_id is not None:
            sql += " WHERE graph_id = ?"
            args = (graph_id,)
        rows = self._rows(sql + " ORDER BY graph_id, timestamp, backup_id", args)
        for row in rows:
            row["metadata"] = json.loads(row["metadata"] or "{}")
        return rows

    # -- verify results -------------------------------------------------------------------

    def record_verify(self, graph_id: str, snapshot_id: Optional[str], ok: bool, read_data: bool, errors: list[str]) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO verify_results (graph_id, snapshot_id, verified_at, ok, read_data, errors) VALUES (?, ?, ?, ?, ?, ?)",
                (graph_id, snapshot_id, now_iso(), int(ok), int(read_data), json.dumps(errors[:100])),
            )

    def verify_failures(self, graph_id: str) -> int:
        """How many verifications of ``graph_id`` found damage."""
        rows = self._rows("SELECT COUNT(*) AS n FROM verify_results WHERE graph_id = ? AND ok = 0", (graph_id,))
        return int(rows[0]["n"])

    def last_verify(self, graph_id: str) -> Optional[dict[str, Any]]:
        rows = self._rows(
            "SELECT snapshot_id, verified_at, ok, read_data, errors FROM verify_results WHERE graph_id = ? "
            "ORDER BY verified_at DESC LIMIT 1",
            (graph_id,),
        )
        if not rows:
            return None
        row = rows[0]
        return {**row, "ok": bool(row["ok"]), "read_data": bool(row["read_data"]), "errors": json.loads(row["errors"])}

    # -- schedules ------------------------------------------------------------------------

    def upsert_schedule(
        self, graph_id: str, interval_seconds: Optional[float], cron: Optional[str], retention: Optional[dict[str, Any]], next_run: str
    ) -> None:
        if (interval_seconds is None) == (cron is None):
            raise InvalidInputError("a schedule has either an interval or a cron expression")
        stamp = now_iso()
        with self._write() as db:
            db.execute(
                "INSERT INTO backup_schedules (graph_id, interval_seconds, cron, enabled, retention, next_run, created_at, updated_at) "
                "VALUES (?, ?, ?, 1, ?, ?, ?, ?) ON CONFLICT (graph_id) DO UPDATE SET interval_seconds = excluded.interval_seconds, "
                "cron = excluded.cron, enabled = 1, retention = excluded.retention, next_run = excluded.next_run, updated_at = excluded.updated_at",
                (graph_id, interval_seconds, cron, json.dumps(retention) if retention else None, next_run, stamp, stamp),
            )

    def schedule(self, graph_id: str) -> Optional[dict[str, Any]]:
        rows = self._rows("SELECT * FROM backup_schedules WHERE graph_id = ?", (graph_id,))
        return _schedule_row(rows[0]) if rows else None

    def schedules(self) -> list[dict[str, Any]]:
        return [_schedule_row(r) for r in self._rows("SELECT * FROM backup_schedules ORDER BY graph_id")]

    def remove_schedule(self, graph_id: str) -> bool:
        with self._write() as db:
            return db.execute("DELETE FROM backup_schedules WHERE graph_id = ?", (graph_id,)).rowcount > 0

    def record_next_run(self, graph_id: str, next_run: str) -> None:
        with self._write() as db:
            db.execute("UPDATE backup_schedules SET next_run = ?, updated_at = ? WHERE graph_id = ?",
                       (next_run, now_iso(), graph_id))

    def record_run(
        self, graph_id: str, *, result: str, next_run: str, error: Optional[str] = None, snapshot_id: Optional[str] = None
    ) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE backup_schedules SET last_run = ?, last_result = ?, last_error = ?, "
                "last_snapshot_id = COALESCE(?, last_snapshot_id), next_run = ?, updated_at = ? WHERE graph_id = ?",
                (now_iso(), result, error, snapshot_id, next_run, now_iso(), graph_id),
            )

    # -- replication and recovery (written by those features) -----------------------------

    def record_replication(
        self,
        *,
        backup_id: str,
        target_id: str,
        graph_id: str,
        status: str,
        error_message: Optional[str] = None,
        data_hash: Optional[str] = None,
        attempted_at: Optional[str] = None,
        completed_at: Optional[str] = None,
        log_id: Optional[str] = None,
        bytes_sent: Optional[int] = None,
        chunks_sent: Optional[int] = None,
        duration_ms: Optional[int] = None,
    ) -> str:
        """Add (or, by ``log_id``, update) one replication attempt; returns its ``log_id``."""
        import uuid

        log_id = log_id or uuid.uuid4().hex
        with self._write() as db:
            db.execute(
                "INSERT INTO replication_logs (log_id, backup_id, target_id, graph_id, status, error_message, attempted_at, "
                "completed_at, data_hash, bytes_sent, chunks_sent, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (log_id) DO UPDATE SET status = excluded.status, error_message = excluded.error_message, "
                "completed_at = excluded.completed_at, data_hash = excluded.data_hash, bytes_sent = excluded.bytes_sent, "
                "chunks_sent = excluded.chunks_sent, duration_ms = excluded.duration_ms",
                (log_id, backup_id, target_id, graph_id, status, error_message, attempted_at or now_iso(), completed_at,
                 data_hash, bytes_sent, chunks_sent, duration_ms),
            )
        return log_id

    # -- this instance's state (role, epoch) ------------------------------------------------

    def state(self, key: str) -> Optional[str]:
        rows = self._rows("SELECT value FROM instance_state WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_state(self, key: str, value: str) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO instance_state (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (key, value, now_iso()),
            )

    # -- replication targets (rows; the replication package gives them meaning) -----------

    def upsert_target(self, row: dict[str, Any]) -> None:
        columns = ["target_id", "name", "base_url", "api_key", "enabled", "graphs", "conflict_policy", "ca_file",
                   "options", "created_at"]
        values = [row.get(c) for c in columns]
        values[columns.index("graphs")] = json.dumps(row["graphs"]) if row.get("graphs") is not None else None
        values[columns.index("options")] = json.dumps(row.get("options") or {})
        values[columns.index("enabled")] = int(bool(row.get("enabled", True)))
        values[columns.index("created_at")] = row.get("created_at") or now_iso()
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in ("target_id", "created_at"))
        with self._write() as db:
            db.execute(
                f"INSERT INTO replication_targets ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                f"ON CONFLICT (target_id) DO UPDATE SET {updates}",
                values,
            )

    def targets(self) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM replication_targets ORDER BY name")
        for row in rows:
            row["enabled"] = bool(row["enabled"])
            row["graphs"] = json.loads(row["graphs"]) if row["graphs"] else None
            row["options"] = json.loads(row["options"] or "{}")
            row["last_health"] = json.loads(row["last_health"]) if row["last_health"] else None
        return rows

    def remove_target(self, target_id: str) -> bool:
        with self._write() as db:
            return db.execute("DELETE FROM replication_targets WHERE target_id = ?", (target_id,)).rowcount > 0

    def record_target_health(self, target_id: str, health: dict[str, Any]) -> None:
        with self._write() as db:
            db.execute("UPDATE replication_targets SET last_health = ? WHERE target_id = ?",
                       (json.dumps(health), target_id))

    def replication_logs(
        self,
        graph_id: Optional[str] = None,
        *,
        target_id: Optional[str] = None,
        status: Optional[str] = None,
        limit: Optional[int] = None,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Replication attempts, oldest first (or newest first), filtered by what is given."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("graph_id", graph_id), ("target_id", target_id), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT * FROM replication_logs" + (" WHERE " + " AND ".join(where) if where else "")
        sql += f" ORDER BY attempted_at {'DESC' if newest_first else 'ASC'}, log_id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return self._rows(sql, tuple(args))

    # -- disaster recovery (rows; lightrag.recovery gives them meaning) --------------------

    def replace_recovery_points(self, points: list[dict[str, Any]]) -> None:
        """Make the ``recovery_points`` rows exactly ``points`` (the repository's, as the
        engine lists them): the table is a mirror, rebuilt whole."""
        rows = [
            (p["checkpoint_id"], p["timestamp"], json.dumps(p["graphs"]), int(bool(p["validated"])),
             p.get("description"), p.get("created_by"), json.dumps(p["snapshots"]), p.get("validated_at"),
             json.dumps(p.get("metadata") or {}))
            for p in points
        ]
        with self._write() as db:
            db.execute("DELETE FROM recovery_points")
            db.executemany(
                "INSERT INTO recovery_points (checkpoint_id, timestamp, graphs, validated, description, created_by, "
                "snapshots, validated_at, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def recovery_points(self) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM recovery_points ORDER BY timestamp DESC")
        for row in rows:
            row["graphs"] = json.loads(row["graphs"] or "[]")
            row["snapshots"] = json.loads(row["snapshots"] or "{}")
            row["metadata"] = json.loads(row["metadata"] or "{}")
            row["validated"] = bool(row["validated"])
        return rows

    def record_health(self, graph_id: str, status: str, problems: list[dict[str, Any]]) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO health_checks (graph_id, checked_at, status, problems) VALUES (?, ?, ?, ?)",
                (graph_id, now_iso(), status, json.dumps(problems)),
            )
            # History, but bounded: the newest 100 checks of each graph.
            db.execute(
                "DELETE FROM health_checks WHERE graph_id = ? AND rowid NOT IN (SELECT rowid FROM health_checks "
                "WHERE graph_id = ? ORDER BY checked_at DESC LIMIT 100)",
                (graph_id, graph_id),
            )

    def last_health(self, graph_id: str) -> Optional[dict[str, Any]]:
        rows = self._rows(
            "SELECT * FROM health_checks WHERE graph_id = ? ORDER BY checked_at DESC, rowid DESC LIMIT 1", (graph_id,)
        )
        if not rows:
            return None
        rows[0]["problems"] = json.loads(rows[0]["problems"] or "[]")
        return rows[0]

    def record_recovery_event(self, event: dict[str, Any]) -> None:
        """A failover or drill: ``event_id, kind, checkpoint_id, started_at, finished_at, ok,
        rto_seconds, rpo_seconds, report`` (a JSON-able dict)."""
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO recovery_events (event_id, kind, checkpoint_id, started_at, finished_at, ok, "
                "rto_seconds, rpo_seconds, report) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (event["event_id"], event["kind"], event.get("checkpoint_id"), event["started_at"],
                 event.get("finished_at"), None if event.get("ok") is None else int(bool(event["ok"])),
                 event.get("rto_seconds"), event.get("rpo_seconds"), json.dumps(event.get("report") or {})),
            )

    def recovery_events(self, kind: Optional[str] = None, limit: int = 20) -> list[dict[str, Any]]:
        sql = "SELECT * FROM recovery_events"
        args: list[Any] = []
        if kind is not None:
            sql += " WHERE kind = ?"
            args.append(kind)
        sql += " ORDER BY started_at DESC LIMIT ?"
        args.append(int(limit))
        rows = self._rows(sql, tuple(args))
        for row in rows:
            row["report"] = json.loads(row["report"] or "{}")
            row["ok"] = None if row["ok"] is None else bool(row["ok"])
        return rows


def _schedule_row(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["enabled"] = bool(row["enabled"])
    row["retention"] = json.loads(row["retention"]) if row["retention"] else None
    return row


__all__ = ["Catalog", "CatalogError", "MIGRATIONS", "default_catalog_path"]
