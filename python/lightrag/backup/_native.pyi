"""The Rust core (private). Use :mod:`lightrag.backup` instead."""

import os
from typing import Awaitable, Callable, Optional, final

__all__ = ["DisasterRecoveryManager", "FORMAT_VERSION", "GraphBackup", "Lease", "Operation", "ReplicationManager", "Repository", "__version__", "_drain", "is_graph_file", "peer_call", "peer_routes", "stage_links"]

FORMAT_VERSION: int
__version__: str

_Progress = Callable[[str, int, int], None]

@final
class Operation:
    """A prepared operation; run it once, blocking or awaited."""

    def run(self) -> str:
        """Run to completion with the GIL released; returns the result as JSON text."""
    def start(self) -> Awaitable[str]:
        """Run on a worker thread; returns an awaitable of the JSON text."""

@final
class Repository:
    """An open repository (created when missing, with ``create``)."""

    def __new__(
        cls,
        url: str,
        create: bool = True,
        options: Optional[dict[str, str]] = None,
        create_location: bool = False,
        password: Optional[bytes] = None,
        encryption: Optional[str] = None,
        key_export: Optional[str] = None,
        key_per_graph: bool = False,
    ) -> "Repository": ...
    @property
    def location(self) -> str: ...
    @property
    def config_json(self) -> str: ...
    def request_counts_json(self) -> str: ...
    def keys_json(self) -> str: ...
    def add_key(self, password: bytes) -> str: ...
    def remove_key(self, key_id: str) -> str: ...
    def change_password(self, password: bytes) -> str: ...
    def export_key(self) -> str: ...
    def list_graphs(self) -> list[str]: ...
    def shredded_graphs(self) -> str:
        """The shredded graphs (JSON: graph_id, tag, shredded_at, hostname, username)."""
    def has_own_key(self, graph_id: str) -> bool: ...
    def shred_graph_op(self, graph_id: str) -> Operation: ...
    def receive_graph_key_op(self, graph_id: str, data: bytes) -> Operation: ...
    def receive_shred_op(self, graph_id: str, data: bytes) -> Operation: ...
    def unreadable_snapshots(self, graph_id: Optional[str] = None) -> str:
        """The manifests that cannot be read (JSON: graph_id, snapshot_id, path, reason)."""
    def find_snapshot_graph(self, snapshot_id: str) -> Optional[str]: ...
    def forget_op(self, graph_id: Optional[str], policy_json: str, dry_run: bool) -> Operation: ...
    def prune_op(
        self,
        grace_seconds: int,
        repack_threshold: float,
        dry_run: bool,
        progress: Optional[_Progress] = None,
    ) -> Operation: ...
    def compact_op(self, progress: Optional[_Progress] = None) -> Operation:
        """Merge the small index objects into few large ones (under the maintenance lock)."""
    def listing_fingerprint(self, prefixes: list[str]) -> str:
        """A digest of the listings of ``prefixes``: equal while nothing under them changed."""
    def index_object_counts(self) -> tuple[int, int]:
        """How many index objects this process has loaded, and how many of them are small."""
    def repair_op(
        self,
        dry_run: bool = False,
        sources: Optional[list[tuple[str, str]]] = None,
        progress: Optional[_Progress] = None,
    ) -> Operation:
        """Repair the repository, healing lost chunks from the graphs' folders in ``sources``."""
    def missing_chunks_op(self, ids: list[str]) -> Operation:
        """Which of these chunk ids (hex) this repository lacks: ``{"missing": [...]}``."""
    def receive_pack_op(self, data: bytes) -> Operation:
        """Check every chunk of a pushed pack, then store them."""
    def receive_snapshot_op(
        self, graph_id: str, data: bytes, expected_head: Optional[str] = None, diverged: list[str] = ...
    ) -> Operation:
        """Commit a pushed snapshot (its encoded manifest) once all its chunks are here, onto
        the head the source expects, marking ``diverged`` first."""
    def receive_listing_op(self, graph_id: str) -> Operation:
        """This repository's snapshots of a graph as a source plans with them."""
    def put_setting_op(self, kind: str, name: str, value_json: Optional[str] = None) -> Operation:
        """Write a new version of a setting kept in the repository (``None`` removes it)."""
    def settings_op(self, kind: str) -> Operation:
        """Every setting of a kind: a JSON object of name -> newest value."""
    def recovery(self) -> "DisasterRecoveryManager":
        """The repository's recovery points and the validation that knows LightRAG."""
    def graph(self, graph_id: str) -> "GraphBackup":
        """One graph of the repository (an invalid id raises ``InvalidInputError``)."""
    def verify_op(
        self,
        read_data: bool = True,
        subset: Optional[float] = None,
        progress: Optional[_Progress] = None,
    ) -> Operation:
        """Verify every snapshot of every graph."""
    def stats_op(self) -> Operation:
        """Storage statistics of the whole repository."""
    def graphs_stats_op(self, also: list[str]) -> Operation:
        """Storage statistics of the whole repository and of every graph, in one pass; the
        graphs of ``also`` are there even without snapshots."""

@final
class GraphBackup:
    """One graph in a repository: every operation on its snapshots."""

    @property
    def graph_id(self) -> str: ...
    def snapshot_op(
        self,
        source_dir: str,
        description: Optional[str] = None,
        tags: Optional[list[str]] = None,
        metadata_json: Optional[str] = None,
        max_attempts: int = 5,
        progress: Optional[_Progress] = None,
        skip_if_unchanged: bool = False,
        adopt: bool = False,
        own_key: bool = False,
    ) -> Operation: ...
    def list_op(self) -> Operation: ...
    def get_op(self, snapshot_id: str) -> Operation: ...
    def delete_op(self, snapshot_id: str) -> Operation: ...
    def restore_op(
        self,
        snapshot_id: str,
        target: str,
        safety_snapshot: bool = True,
        dry_run: bool = False,
        progress: Optional[_Progress] = None,
    ) -> Operation: ...
    def verify_op(
        self,
        snapshot_ids: Optional[list[str]] = None,
        read_data: bool = True,
        subset: Optional[float] = None,
        progress: Optional[_Progress] = None,
    ) -> Operation: ...
    def stats_op(self) -> Operation: ...
    def diff_op(self, from_ref: str, to_ref: Optional[str] = None, to_dir: Optional[str] = None) -> Operation: ...
    def deleted_op(self, dir: Optional[str] = None) -> Operation: ...

@final
class DisasterRecoveryManager:
    """The engine of disaster recovery for one repository: recovery points and the validation
    that knows LightRAG. ``lightrag.recovery.DisasterRecoveryManager`` builds on it."""

    def create_point_op(
        self,
        snapshots: dict[str, str],
        description: Optional[str] = None,
        created_by: Optional[str] = None,
        metadata_json: Optional[str] = None,
    ) -> Operation: ...
    def list_points_op(self) -> Operation: ...
    def get_point_op(self, checkpoint_id: str) -> Operation: ...
    def delete_point_op(self, checkpoint_id: str) -> Operation: ...
    def record_validation_op(self, checkpoint_id: str, validated: bool, results_json: str) -> Operation: ...
    def receive_point_op(self, data: bytes) -> Operation: ...
    def point_ids_op(self) -> Operation: ...
    @staticmethod
    def check_graph_dir_op(path: str | os.PathLike[str], recorded_json: Optional[str] = None) -> Operation: ...

@final
class Lease:
    """The failover lease ``name`` at ``url``: a chain of create-only slots, each swap a
    compare-and-swap on the newest one. ``lightrag.recovery.lease.LeaseKeeper`` decides when."""

    def __new__(
        cls, url: str, name: str, timeout: float, options: Optional[dict[str, str]] = None
    ) -> "Lease": ...
    @property
    def location(self) -> str: ...
    def current_op(self) -> Operation: ...
    def write_op(self, expected_slot: Optional[int], proposal_json: str) -> Operation: ...
    def publish_member_op(self, member: str, record_json: str) -> Operation: ...
    def members_op(self) -> Operation: ...

@final
class ReplicationManager:
    """The transfer engine: copies a graph's snapshots from ``source`` into target repositories."""

    def __new__(cls, source: Repository) -> "ReplicationManager": ...
    def open_target(
        self,
        url: str,
        options: Optional[dict[str, str]] = None,
        create_location: bool = False,
        password: Optional[bytes] = None,
    ) -> Repository:
        """The target repository at ``url``, created like the source when there is none.
        ``password`` opens an encrypted target of an unencrypted source: copies into it
        re-encrypt."""
    def push_op(
        self,
        base_url: str,
        graph_id: str,
        api_key: Optional[str] = None,
        ca_file: Optional[str] = None,
        epoch: int = 0,
        snapshot_ids: Optional[list[str]] = None,
        dry_run: bool = False,
        retries: int = 3,
        timeout: float = 120.0,
        progress: Optional[_Progress] = None,
        conflict_policy: str = "reject",
        sent: list[tuple[str, str]] = ...,
    ) -> Operation:
        """Push the snapshots of ``graph_id`` another instance lacks."""
    def copy_op(
        self,
        target: Repository,
        graph_id: str,
        snapshot_ids: Optional[list[str]] = None,
        dry_run: bool = False,
        progress: Optional[_Progress] = None,
        conflict_policy: str = "reject",
        sent: list[tuple[str, str]] = ...,
    ) -> Operation: ...

def stage_links(source: str, staging: str) -> int:
    """Hard-link the graph files of ``source`` into ``staging``; returns how many."""

def is_graph_file(name: str) -> bool:
    """Whether a file name belongs to a LightRAG graph's file storage."""

def peer_call(
    base_url: str,
    method: str,
    path: str,
    body: Optional[str] = None,
    *,
    api_key: Optional[str] = None,
    ca_file: Optional[str] = None,
    epoch: int = 0,
    timeout: float = 30.0,
    retries: int = 0,
) -> str:
    """Ask another instance: ``method`` ``path`` (one of :func:`peer_routes`) with an
    optional JSON ``body``; the answer's JSON text."""

def peer_routes() -> dict[str, str]:
    """Where an instance answers, by name."""

def _drain(timeout: float) -> bool:
    """Wait until no async call is in flight (registered with ``atexit``)."""

