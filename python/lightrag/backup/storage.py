"""Backup storage: repositories of deduplicated, compressed, verifiable snapshots.

A repository lives on an object store: a local folder (:class:`LocalBackupStorage`), S3 or an
S3-compatible service (:class:`S3BackupStorage`), Azure Blob (:class:`AzureBlobBackupStorage`)
or Google Cloud Storage (``gs://``, through :func:`storage_from_url`). The format and every
guarantee are the same on all of them: objects are written create-only, a snapshot exists
once its manifest is written, and an interrupted upload leaves the repository valid. Many
graphs share one repository, and identical data is stored once across all their snapshots.

Credentials come from the environment each cloud SDK already reads (``AWS_*`` and AWS
profiles, ``AZURE_STORAGE_*``, ``GOOGLE_*``) or from keyword options; they never appear in
``repr()``, error messages or snapshot metadata.

Repositories are encrypted (AES-256-GCM, keyed chunk ids): a new one is created under the
``password`` given, else the one :mod:`lightrag.backup.passwords` finds in the environment
(``LIGHTRAG_BACKUP_PASSWORD_FILE``, ``LIGHTRAG_BACKUP_PASSWORD_COMMAND``,
``LIGHTRAG_BACKUP_PASSWORD``); without one, creating a repository raises
:class:`~lightrag.backup.errors.PasswordRequiredError` unless ``encryption="none"`` asks for an
unencrypted one. Repositories of earlier versions stay readable without a password.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from . import _native
from .errors import InvalidInputError, SnapshotNotFoundError
from .passwords import PasswordSource, resolve_password

if TYPE_CHECKING:
    from .types import BackupSnapshot, ProgressCallback, VerifyReport


class BackupStorageBackend:
    """A snapshot repository at ``url``.

    Subclasses say where the repository lives; the repository format, and so every operation,
    is the same on all of them. A repository is created on first use unless ``create=False``
    (then a missing repository raises :class:`~lightrag.backup.errors.RepositoryNotFoundError`).

    ``password`` (a string, bytes, or a callable returning one; default: the environment's, see
    :mod:`lightrag.backup.passwords`) opens an encrypted repository and encrypts a new one.
    ``encryption="none"`` creates an unencrypted one instead; ``key_export`` (the text of
    ``lightrag-backup key export``) creates one that shares another repository's master key, so
    chunks deduplicate and move between them as stored. ``key_per_graph=True`` gives every graph
    a key of its own at its first snapshot, so that any graph can be shredded
    (:meth:`~lightrag.backup.GraphBackup.shred`); dedup then stops at graph boundaries.
    """

    def __init__(
        self,
        url: str,
        *,
        create: bool = True,
        options: Mapping[str, Any] | None = None,
        create_location: bool = False,
        password: "PasswordSource | None" = None,
        encryption: "str | None" = None,
        key_export: "str | None" = None,
        key_per_graph: bool = False,
    ) -> None:
        self._url = url
        if encryption not in (None, "none", "aes-256-gcm"):
            raise InvalidInputError(f"encryption must be 'aes-256-gcm' (the default) or 'none', not {encryption!r}")
        if key_export is None and create:
            key_export = _key_export_from_env()
        if key_per_graph and encryption == "none":
            raise InvalidInputError("per-graph keys need an encrypted repository: drop encryption='none'")
        self._repo = _native.Repository(url, create, _options(options), create_location, resolve_password(password),
                                        encryption, key_export, key_per_graph)
        #: What opens encrypted repositories for this one when it is not encrypted itself: a
        #: replication target it re-encrypts into (see :mod:`lightrag.replication`).
        self._password_source = password if not self.encrypted else None

    @property
    def url(self) -> str:
        """The location of the repository."""
        return self._url

    @property
    def engine(self) -> Any:
        """The engine's repository (``_native.Repository``): the operations this package's
        modules drive on it (snapshots, settings, prune, replication, recovery points)."""
        return self._repo

    def request_counts(self) -> dict[str, Any]:
        """The requests this process made of the repository's store so far: ``gets``,
        ``heads``, ``lists`` (by the first segment of their prefix), ``puts``, ``deletes``.
        On an object store each one is billed: what an operation costs."""
        return dict(json.loads(self._repo.request_counts_json()))

    @property
    def password_source(self) -> "PasswordSource | None":
        """What opens encrypted repositories for this unencrypted one (a replication target
        it re-encrypts into); ``None`` for an encrypted repository, whose own key serves."""
        return self._password_source

    @property
    def location(self) -> str:
        """Where the backend actually stores objects (an absolute path for a local folder)."""
        return self._repo.location

    @property
    def config(self) -> dict[str, Any]:
        """The repository's format version, id, chunker and compression settings, whether it
        is ``encrypted`` and its public ``key_fingerprint``."""
        return json.loads(self._repo.config_json)

    @property
    def encrypted(self) -> bool:
        """Whether the repository is encrypted."""
        return bool(self.config.get("encrypted"))

    def keys(self) -> list[dict[str, Any]]:
        """The repository's keys: ``id``, ``created_at``, ``hostname``, ``username``, ``kdf``
        (Argon2id parameters) and ``current`` (the one this storage was opened with)."""
        return list(json.loads(self._repo.keys_json()))

    def add_key(self, password: "PasswordSource") -> str:
        """Add a key opened by ``password`` (the others keep working); returns its id."""
        return self._repo.add_key(_required(password))

    def remove_key(self, key_id: str) -> str:
        """Remove a key by id or unique prefix (not the one in use, never the last one);
        returns its full id."""
        return self._repo.remove_key(key_id)

    def change_password(self, password: "PasswordSource") -> str:
        """Replace the key this storage was opened with by one opened by ``password``: one
        small object is written and one deleted, no data is touched. Returns the new key's id."""
        return self._repo.change_password(_required(password))

    def export_key(self) -> str:
        """The master key as JSON, for safekeeping: whoever holds it reads every snapshot.
        ``init --from-key-export`` (``key_export=``) makes a repository that shares it."""
        return self._repo.export_key()

    def list_graphs(self) -> list[str]:
        """Ids of every graph with at least one snapshot in this repository."""
        return self._repo.list_graphs()

    def shredded_graphs(self) -> list[dict[str, Any]]:
        """The graphs shredded in this repository: ``graph_id``, ``shredded_at``, ``hostname``
        and ``username`` of each (see :meth:`~lightrag.backup.GraphBackup.shred`)."""
        return [{k: v for k, v in record.items() if k != "tag"}
                for record in json.loads(self._repo.shredded_graphs())]

    def has_own_key(self, graph_id: str) -> bool:
        """Whether ``graph_id`` has a key of its own (so it can be shredded)."""
        return self._repo.has_own_key(graph_id)

    def unreadable_snapshots(self, graph_id: "str | None" = None) -> list[dict[str, str]]:
        """The snapshots (of one graph, or of every graph) whose manifest cannot be read:
        ``graph_id``, ``snapshot_id``, ``path`` and ``reason`` of each. Listings leave them
        out; ``verify`` fails naming them; ``delete`` or ``repair`` resolves them."""
        return list(json.loads(self._repo.unreadable_snapshots(graph_id)))

    def list_snapshots(self, graph_id: str) -> list[str]:
        """Snapshot ids of a graph, oldest first."""
        return [entry["snapshot_id"] for entry in json.loads(self._repo.graph(graph_id).list_op().run())]

    def load_snapshot(self, snapshot_id: str) -> BackupSnapshot:
        """The snapshot with this id, whichever graph it belongs to.

        Raises :class:`SnapshotNotFoundError` when no graph has it.
        """
        from .types import BackupSnapshot  # imported here: opening a repository needs none of it

        graph_id = self._graph_of(snapshot_id)
        return BackupSnapshot._from_native(json.loads(self._repo.graph(graph_id).get_op(snapshot_id).run()), self.location)

    def delete_snapshot(self, snapshot_id: str) -> bool:
        """Forget a snapshot (its manifest). Data no other snapshot uses is freed by a prune.

        Returns ``True``; raises :class:`SnapshotNotFoundError` for an unknown id.
        """
        graph_id = self._graph_of(snapshot_id)
        self._repo.graph(graph_id).delete_op(snapshot_id).run()
        return True

    def get_storage_stats(self) -> dict[str, Any]:
        """Repository-wide numbers: snapshots, logical, unique and stored bytes, ratios."""
        stats = json.loads(self._repo.stats_op().run())
        stats["url"] = self.url
        stats["graphs"] = len(self.list_graphs())
        return stats

    def get_graphs_stats(self, also: "Iterable[str]" = ()) -> "tuple[dict[str, Any], dict[str, dict[str, Any]]]":
        """:meth:`get_storage_stats` and every graph's stats (as a graph's
        ``get_backup_stats``), from one pass over the repository; the graphs of ``also`` are
        there even without snapshots."""
        answer = json.loads(self._repo.graphs_stats_op(sorted(set(also))).run())
        overall = answer["overall"]
        overall["url"] = self.url
        overall["graphs"] = len(self.list_graphs())
        graphs = {graph_id: dict(stats, graph_id=graph_id) for graph_id, stats in answer["graphs"].items()}
        return overall, graphs

    def verify(
        self,
        graph_id: str | None = None,
        read_data: bool = True,
        *,
        read_data_subset: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> VerifyReport:
        """Verify every snapshot of one graph, or of the whole repository, in one pass (each
        pack is read once however many snapshots share it)."""
        from .types import verify_report

        scope = f"the snapshots of graph {graph_id}" if graph_id else "the snapshots of every graph"
        if graph_id is None:
            op = self._repo.verify_op(bool(read_data), read_data_subset, progress)
        else:
            op = self._repo.graph(graph_id).verify_op(None, bool(read_data), read_data_subset, progress)
        return verify_report("", bool(read_data), op.run(), scope)

    def _graph_of(self, snapshot_id: str) -> str:
        from .types import check_snapshot_id

        check_snapshot_id(snapshot_id)
        graph_id = self._repo.find_snapshot_graph(snapshot_id)
        if graph_id is None:
            raise SnapshotNotFoundError(f"snapshot {snapshot_id!r} not found in {self.url}")
        return graph_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class LocalBackupStorage(BackupStorageBackend):
    """A repository in a local folder (created when missing).

    ``path`` defaults to ``LIGHTRAG_BACKUP_STORAGE_PATH``.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, create: bool = True,
                 password: "PasswordSource | None" = None, encryption: "str | None" = None,
                 key_export: "str | None" = None, key_per_graph: bool = False) -> None:
        if path is None:
            path = os.environ.get("LIGHTRAG_BACKUP_STORAGE_PATH")
            if not path:
                raise InvalidInputError(
                    "no repository path: pass one or set LIGHTRAG_BACKUP_STORAGE_PATH"
                )
        self.path = Path(path).expanduser().absolute()
        super().__init__(str(self.path), create=create, password=password, encryption=encryption,
                         key_export=key_export, key_per_graph=key_per_graph)

    def __repr__(self) -> str:
        return f"LocalBackupStorage({str(self.path)!r})"


def _key_export_from_env() -> "str | None":
    """The key export ``LIGHTRAG_BACKUP_KEY_EXPORT_FILE`` names: the master key a new encrypted
    repository is created with (a standby's, so that it holds its primary's key)."""
    path = os.environ.get("LIGHTRAG_BACKUP_KEY_EXPORT_FILE")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(1 << 16)
    except OSError as error:
        raise InvalidInputError(f"LIGHTRAG_BACKUP_KEY_EXPORT_FILE {path}: {error.strerror or error}") from None


def _required(password: "PasswordSource") -> bytes:
    value = resolve_password(password)
    if value is None:
        raise InvalidInputError("a password is required")
    return value


def _options(options: Mapping[str, Any] | None) -> dict[str, str]:
    """Backend options as the strings object_store reads (booleans as true/false)."""
    result: dict[str, str] = {}
    for key, value in (options or {}).items():
        if value is None:
            continue
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"option names must be non-empty strings, got {key!r}")
        if isinstance(value, bool):
            result[key] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            result[key] = str(value)
        else:
            raise InvalidInputError(f"option {key!r} must be a string, number or bool")
    return result


def _given(**settings: Any) -> dict[str, Any]:
    """The keyword settings that were given (not ``None``)."""
    return {key: value for key, value in settings.items() if value is not None}


def _join_prefix(prefix: str | None) -> str:
    prefix = (prefix or "").strip("/")
    return f"/{prefix}" if prefix else ""


class S3BackupStorage(BackupStorageBackend):
    """A repository in an S3 bucket, or any S3-compatible service (MinIO, Cloudflare R2, Ceph
    RGW, ...) through ``endpoint_url``.

    ``bucket``, ``region`` and ``prefix`` default to ``LIGHTRAG_BACKUP_S3_BUCKET``,
    ``LIGHTRAG_BACKUP_S3_REGION`` and ``LIGHTRAG_BACKUP_S3_KEY_PREFIX``. Credentials and the
    endpoint default to what the AWS SDKs read: ``AWS_ACCESS_KEY_ID`` /
    ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` (``~/.aws/credentials``
    and ``~/.aws/config``), ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL`` and
    ``AWS_ALLOW_HTTP``, then web identity, ECS and EC2 instance credentials. More settings go
    through ``**options`` with object_store's names (``virtual_hosted_style_request``,
    ``unsigned_payload``, ``conditional_put``, ``timeout``, ...) plus ``max_retries``,
    ``retry_timeout``, ``multipart_threshold`` and ``multipart_part_size``.

    ``create_bucket=True`` creates a missing bucket first; otherwise a missing bucket raises
    :class:`~lightrag.backup.errors.StorageLocationNotFoundError`.
    """

    def __init__(
        self,
        bucket: str | None = None,
        prefix: str | None = None,
        region: str | None = None,
        *,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        profile: str | None = None,
        allow_http: bool | None = None,
        create: bool = True,
        create_bucket: bool = False,
        password: "PasswordSource | None" = None,
        encryption: "str | None" = None,
        key_export: "str | None" = None,
        key_per_graph: bool = False,
        **options: Any,
    ) -> None:
        bucket = bucket or os.environ.get("LIGHTRAG_BACKUP_S3_BUCKET")
        if not bucket:
            raise InvalidInputError("no S3 bucket: pass bucket= or set LIGHTRAG_BACKUP_S3_BUCKET")
        if prefix is None:
            prefix = os.environ.get("LIGHTRAG_BACKUP_S3_KEY_PREFIX", "")
        region = region or os.environ.get("LIGHTRAG_BACKUP_S3_REGION")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        merged = dict(options)
        # Keyword settings win over options of the same name, but only when given: an unset
        # endpoint_url must not drop an `endpoint` option (and send requests to AWS instead).
        merged.update(_given(
            region=region,
            endpoint=endpoint_url,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            session_token=session_token,
            profile=profile,
            allow_http=allow_http,
        ))
        super().__init__(
            f"s3://{bucket}{_join_prefix(prefix)}",
            create=create,
            options=merged,
            create_location=create_bucket,
            password=password,
            encryption=encryption,
            key_export=key_export,
            key_per_graph=key_per_graph,
        )

    def __repr__(self) -> str:
        endpoint = f", endpoint_url={self.endpoint_url!r}" if self.endpoint_url else ""
        return f"S3BackupStorage({self.url!r}{endpoint})"


class AzureBlobBackupStorage(BackupStorageBackend):
    """A repository in an Azure Blob Storage container.

    ``container`` and ``prefix`` default to ``LIGHTRAG_BACKUP_AZURE_CONTAINER`` and
    ``LIGHTRAG_BACKUP_AZURE_PREFIX``. Credentials default to what the Azure SDKs read:
    ``AZURE_STORAGE_CONNECTION_STRING``, or ``AZURE_STORAGE_ACCOUNT_NAME`` with
    ``AZURE_STORAGE_ACCOUNT_KEY`` / ``AZURE_STORAGE_SAS_TOKEN``, a service principal
    (``AZURE_CLIENT_ID`` / ``AZURE_CLIENT_SECRET`` / ``AZURE_TENANT_ID``), workload or managed
    identity; ``AZURE_STORAGE_USE_EMULATOR=true`` targets Azurite. More settings go through
    ``**options`` with object_store's names plus ``max_retries``, ``retry_timeout``,
    ``multipart_threshold`` and ``multipart_part_size``.

    ``create_container=True`` creates a missing container first (this needs the account key);
    otherwise a missing container raises
    :class:`~lightrag.backup.errors.StorageLocationNotFoundError`.
    """

    def __init__(
        self,
        container: str | None = None,
        prefix: str | None = None,
        *,
        account_name: str | None = None,
        account_key: str | None = None,
        sas_token: str | None = None,
        connection_string: str | None = None,
        endpoint: str | None = None,
        use_emulator: bool | None = None,
        create: bool = True,
        create_container: bool = False,
        password: "PasswordSource | None" = None,
        encryption: "str | None" = None,
        key_export: "str | None" = None,
        key_per_graph: bool = False,
        **options: Any,
    ) -> None:
        container = container or os.environ.get("LIGHTRAG_BACKUP_AZURE_CONTAINER")
        if not container:
            raise InvalidInputError(
                "no Azure container: pass container= or set LIGHTRAG_BACKUP_AZURE_CONTAINER"
            )
        if prefix is None:
            prefix = os.environ.get("LIGHTRAG_BACKUP_AZURE_PREFIX", "")
        self.container = container
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint
        merged = dict(options)
        merged.update(_given(
            account_name=account_name,
            account_key=account_key,
            sas_token=sas_token,
            connection_string=connection_string,
            endpoint=endpoint,
            use_emulator=use_emulator,
        ))
        super().__init__(
            f"az://{container}{_join_prefix(prefix)}",
            create=create,
            options=merged,
            create_location=create_container,
            password=password,
            encryption=encryption,
            key_export=key_export,
            key_per_graph=key_per_graph,
        )

    def __repr__(self) -> str:
        endpoint = f", endpoint={self.endpoint!r}" if self.endpoint else ""
        return f"AzureBlobBackupStorage({self.url!r}{endpoint})"


def storage_from_url(
    url: str,
    *,
    create: bool = True,
    create_location: bool = False,
    password: "PasswordSource | None" = None,
    encryption: "str | None" = None,
    key_export: "str | None" = None,
    key_per_graph: bool = False,
    **options: Any,
) -> BackupStorageBackend:
    """Open a repository by URL: ``file:///path`` or a plain path, ``s3://bucket/prefix``,
    ``az://container/prefix`` (also ``azure://``), ``gs://bucket/prefix``, or ``memory://``
    (tests). ``password``, ``encryption`` and ``key_export`` as :class:`BackupStorageBackend`
    takes them. ``options`` are the backend's settings (see :class:`S3BackupStorage` and
    :class:`AzureBlobBackupStorage`); ``create_location=True`` creates a missing bucket or
    container.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidInputError("repository URL must be a non-empty string")
    keys: dict[str, Any] = {"password": password, "encryption": encryption, "key_export": key_export,
                            "key_per_graph": key_per_graph}
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("", "file"):
        if options:
            raise InvalidInputError(
                f"options {sorted(options)} do not apply to a local repository ({url!r})"
            )
        path = url[len("file://"):] if scheme == "file" else url
        return LocalBackupStorage(path, create=create, **keys)
    if scheme in ("s3", "s3a"):
        bucket, _, prefix = url.split("://", 1)[1].partition("/")
        return S3BackupStorage(bucket, prefix, create=create, create_bucket=create_location, **keys, **options)
    if scheme in ("az", "azure"):
        container, _, prefix = url.split("://", 1)[1].partition("/")
        return AzureBlobBackupStorage(
            container, prefix, create=create, create_container=create_location, **keys, **options
        )
    return BackupStorageBackend(url, create=create, options=options, create_location=create_location, **keys)


def default_location() -> str | None:
    """The repository operators configured: ``LIGHTRAG_BACKUP_STORAGE_PATH`` (a path or URL),
    else ``s3://$LIGHTRAG_BACKUP_S3_BUCKET/$LIGHTRAG_BACKUP_S3_KEY_PREFIX``."""
    location = os.environ.get("LIGHTRAG_BACKUP_STORAGE_PATH")
    if location:
        return location
    bucket = os.environ.get("LIGHTRAG_BACKUP_S3_BUCKET")
    if bucket:
        return f"s3://{bucket}{_join_prefix(os.environ.get('LIGHTRAG_BACKUP_S3_KEY_PREFIX'))}"
    return None


def parse_repo_options(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` object-store options from a command line."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"a repository option takes KEY=VALUE, got {item!r}")
        options[key.strip()] = value
    return options


def as_storage(storage: Any, password: "PasswordSource | None" = None) -> BackupStorageBackend:
    """A storage backend, or a path/URL to open one at (with ``password``, else the
    environment's)."""
    if isinstance(storage, BackupStorageBackend):
        if password is not None:
            raise InvalidInputError("password= applies to a repository given as a path or URL; a storage object "
                                    "is opened with its own (LocalBackupStorage(path, password=...))")
        return storage
    if isinstance(storage, (str, os.PathLike)):
        return storage_from_url(os.fspath(storage), password=password)
    raise InvalidInputError(
        f"storage must be a BackupStorageBackend (e.g. LocalBackupStorage(path)) or a path or URL, not {type(storage).__name__}"
    )


def storage_from_location(location: str, *, create: bool = True) -> BackupStorageBackend:
    """Open a repository from a path or URL (same as :func:`storage_from_url` without options)."""
    return storage_from_url(location, create=create)


__all__ = [
    "AzureBlobBackupStorage",
    "BackupStorageBackend",
    "LocalBackupStorage",
    "S3BackupStorage",
    "as_storage",
    "default_location",
    "parse_repo_options",
    "storage_from_location",
    "storage_from_url",
]
