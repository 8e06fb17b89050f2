"""What every command group shares: global options, the progress bar, output, and opening the
repository, the manager and a graph from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Callable

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_DAMAGED = 3
#: No password for an encrypted repository, or none of its keys opens with the one given.
EXIT_PASSWORD = 4

#: ``wanted(name)``: whether the command ``name`` is the one being run (only its options are
#: defined: argparse spends about a millisecond per option, a fifth of a quick command's run).
Wanted = Callable[[str], bool]


def global_options(parser: argparse.ArgumentParser, *, after_command: bool = False) -> None:
    """The options every command takes, before the command word or (``after_command``) after
    it: there they leave the values given before it alone unless given again."""
    default = (lambda value: argparse.SUPPRESS) if after_command else (lambda value: value)
    parser.add_argument("--repo", default=default(None),
                        help="repository path or URL: /path, file:///path, s3://bucket/prefix, az://container/prefix, "
                             "gs://bucket/prefix (default: $LIGHTRAG_BACKUP_STORAGE_PATH, else s3://$LIGHTRAG_BACKUP_S3_BUCKET)")
    parser.add_argument("--repo-option", "-o", action="append", default=default([]), metavar="KEY=VALUE",
                        help="a storage setting, e.g. endpoint=http://127.0.0.1:9000 or region=eu-west-1 (repeatable)")
    parser.add_argument("--create-bucket", action="store_true", default=default(False),
                        help="create the bucket or container when it does not exist (with init, or snapshot --init)")
    parser.add_argument("--catalog", default=default(None), metavar="PATH",
                        help="the SQLite catalog (default: $LIGHTRAG_BACKUP_CATALOG_PATH, else catalog.sqlite3 in a local "
                             "repository folder, else ~/.local/state/lightrag-backup)")
    parser.add_argument("--password-file", default=default(None), metavar="PATH",
                        help="read the repository password from this file's first line (default: "
                             "$LIGHTRAG_BACKUP_PASSWORD_FILE, $LIGHTRAG_BACKUP_PASSWORD_COMMAND, $LIGHTRAG_BACKUP_PASSWORD)")
    parser.add_argument("--password-command", default=default(None), metavar="CMD",
                        help="run CMD and read the repository password from its output (a secret manager's or "
                             "cloud KMS's CLI)")
    parser.add_argument("--json", action="store_true", default=default(False), help="print machine-readable JSON")
    parser.add_argument("--no-progress", action="store_true", default=default(False), help="do not draw progress bars")


#: Global options that take a value: the command is the first other word of the command line.
GLOBAL_VALUE_OPTIONS = frozenset({"--repo", "--repo-option", "-o", "--catalog", "--password-file",
                                  "--password-command"})


class ProgressBar:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal. Its line is
    ended (:meth:`close`) before anything else is printed."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.phase = ""
        self.started = time.monotonic()

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if phase != self.phase:
            if self.phase:
                sys.stderr.write("\n")
            self.phase, self.started = phase, time.monotonic()
        width = 30
        fraction = done / total if total else 1.0
        filled = int(width * min(fraction, 1.0))
        rate = done / max(time.monotonic() - self.started, 1e-6) / 1e6
        sys.stderr.write(
            f"\r{phase:<9} [{'#' * filled}{'.' * (width - filled)}] {fraction:6.1%} "
            f"{done / 1e6:8.1f}/{total / 1e6:.1f} MB {rate:7.1f} MB/s"
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.phase:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.phase = ""


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size} B"


def emit(args: argparse.Namespace, data: Any, text: str, bar: "ProgressBar | None" = None) -> None:
    """Print a result: JSON with ``--json``, else the text (after ending the progress line)."""
    if bar is not None:
        bar.close()
    print(json.dumps(data, indent=2, default=str) if args.json else text)


def graph_options(sub: argparse.ArgumentParser, need_dir: bool = True,
                  working_dir_default: "str | None" = "./rag_storage") -> None:
    """``-g`` and, with ``need_dir``, ``-w``/``--workspace``. ``-w`` defaults to
    ``$WORKING_DIR``, else ``working_dir_default`` (``None``: restore never guesses a folder)."""
    sub.add_argument("--graph-id", "-g", default=os.environ.get("LIGHTRAG_GRAPH_ID"),
                     help="graph id in the repository (default: $LIGHTRAG_GRAPH_ID, else the workspace, else the working dir's folder name and path hash)")
    if need_dir:
        fallback = f" or {working_dir_default}" if working_dir_default else ""
        sub.add_argument("--working-dir", "-w", default=os.environ.get("WORKING_DIR", working_dir_default),
                         help=f"LightRAG working_dir (default: $WORKING_DIR{fallback})")
        sub.add_argument("--workspace", default=os.environ.get("WORKSPACE", ""),
                         help="LightRAG workspace (default: $WORKSPACE)")


def graph_id(args: argparse.Namespace) -> str:
    """``-g``, else ``$LIGHTRAG_GRAPH_ID``, else the workspace, else one derived from the
    working dir (:func:`default_graph_id`): two folders never share an id by default."""
    if args.graph_id:
        return str(args.graph_id)
    workspace = getattr(args, "workspace", None)
    if workspace is None:
        workspace = os.environ.get("WORKSPACE", "")
    if workspace:
        return str(workspace)
    working_dir = getattr(args, "working_dir", None) or os.environ.get("WORKING_DIR") or "./rag_storage"
    return default_graph_id(working_dir)


def default_graph_id(working_dir: "str | os.PathLike[str]") -> str:
    """The graph id of a working dir without a workspace: its folder name and the first 8 hex
    digits of the SHA-256 of its absolute path, e.g. ``rag_storage-3fa2c1d0``."""
    import hashlib
    import re
    from pathlib import Path

    path = Path(working_dir).expanduser().absolute()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.name).strip(".-")[:100] or "graph"
    return f"{name}-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"


def graph_folder(args: argparse.Namespace) -> Any:
    """The graph folder ``-w/--working-dir`` (and ``--workspace``) name, which must be a folder:
    checked before anything is written, so bad input changes nothing."""
    from pathlib import Path

    from ..errors import GraphDirNotFoundError

    folder = Path(args.working_dir).expanduser().absolute() / (args.workspace or "")
    if not folder.is_dir():
        why = "is not a folder" if folder.exists() else "does not exist"
        raise GraphDirNotFoundError(f"graph folder {str(folder)!r} {why} (check -w/--working-dir and --workspace)")
    return folder


def api_key_options(sub: argparse.ArgumentParser, what: str) -> None:
    """``--api-key`` and ``--api-key-file`` for ``what`` (the key a server requires, or the one
    it is called with); the default is ``$LIGHTRAG_API_KEY``."""
    sub.add_argument("--api-key", default=None,
                     help=f"{what} (default: $LIGHTRAG_API_KEY). A key on the command line is visible to every "
                          "local user in the process list: prefer $LIGHTRAG_API_KEY or --api-key-file")
    sub.add_argument("--api-key-file", default=None, metavar="PATH",
                     help="read the key from this file (its first line), kept out of the process list")


def api_key_of(args: argparse.Namespace) -> "str | None":
    """The key ``--api-key-file``, ``--api-key`` or ``$LIGHTRAG_API_KEY`` gives, in that order."""
    from ..environment import read_secret_file

    path = getattr(args, "api_key_file", None)
    if path:
        return read_secret_file(path, "--api-key-file")
    if getattr(args, "api_key", None) is not None:
        return str(args.api_key)
    return os.environ.get("LIGHTRAG_API_KEY")


#: What a command that keeps a catalog imports after it opens the repository.
WITH_MANAGER = ("graph_backup", "manager")
#: What a command on one graph's snapshots imports after it opens the repository.
WITH_GRAPH = ("graph_backup",)
#: What a restore imports after it opens the repository.
WITH_RESTORE = ("graph_backup", "records.restore")


def storage(args: argparse.Namespace, *, then: "tuple[str, ...]" = ()) -> Any:
    """The repository the command names. Only ``init`` (and ``snapshot --init``) creates one
    (with ``--create-bucket``, its bucket or container too): a mistyped ``--repo`` is an
    error, never a new empty repository.

    ``then`` names the modules of ``lightrag.backup`` the command uses next: they are imported
    while the repository opens. Unlocking an encrypted repository's key (Argon2id, about 30 ms
    of one core) releases the GIL, and the imports take as long: a command pays for the
    slower of the two, not both."""
    from ..errors import InvalidInputError
    from ..storage import default_location, parse_repo_options, storage_from_url

    location = args.repo or default_location()
    if not location:
        raise InvalidInputError(
            "no repository: pass --repo PATH|URL or set LIGHTRAG_BACKUP_STORAGE_PATH (or LIGHTRAG_BACKUP_S3_BUCKET)"
        )
    options = parse_repo_options(args.repo_option)
    creating = args.command_path == "init" or bool(getattr(args, "init", False))
    key_export = None
    if getattr(args, "from_key_export", None):
        try:
            with open(args.from_key_export, encoding="utf-8") as handle:
                key_export = handle.read(1 << 16)
        except OSError as error:
            raise InvalidInputError(f"--from-key-export {args.from_key_export}: {error.strerror or error}") from None
    password = password_of(args)  # here: a --password-command may prompt or fail

    def open_repository() -> Any:
        return storage_from_url(location, create=creating, create_location=creating and args.create_bucket,
                                password=password, encryption=getattr(args, "encryption", None),
                                key_export=key_export, key_per_graph=bool(getattr(args, "key_per_graph_repo", False)),
                                **options)

    store = open_repository() if not then else _beside_imports(open_repository, then)
    if not store.encrypted:
        warn_unencrypted(store)
    return store


def _beside_imports(work: "Callable[[], Any]", modules: "tuple[str, ...]") -> Any:
    """``work()`` on a thread while this one imports ``modules`` (of ``lightrag.backup``); its
    result, or its exception raised here."""
    import importlib
    import threading

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # raised again in the caller's thread
            outcome["error"] = error

    opener = threading.Thread(target=run, name="lightrag-backup-open", daemon=True)
    opener.start()
    for module in modules:
        importlib.import_module(f"lightrag.backup.{module}")
    opener.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def password_of(args: argparse.Namespace) -> "bytes | None":
    """The repository password ``--password-file``, ``--password-command`` or the environment
    gives (see :mod:`lightrag.backup.passwords`)."""
    from ..passwords import resolve_password

    return resolve_password(password_file=getattr(args, "password_file", None),
                            password_command=getattr(args, "password_command", None))


def warn_unencrypted(store: Any) -> None:
    """Say, on every command, that a repository is not encrypted."""
    print(f"lightrag-backup: warning: repository {store.url} is not encrypted: whoever can read its storage "
          "reads every graph in it", file=sys.stderr)


def manager(args: argparse.Namespace, store: Any) -> Any:
    from ..manager import BackupManager

    return BackupManager(store, args.catalog)


def backup(args: argparse.Namespace, store: Any, owner: Any = None) -> Any:
    """The graph the command names; with ``owner`` (a manager) its catalog records what the
    command commits, forgets and verifies."""
    from ..graph_backup import GraphBackup
    from ..snapshots import GraphSnapshots
    from ..sources import FolderSource

    working_dir = getattr(args, "working_dir", None)
    snapshots = GraphSnapshots(graph_id(args), store, recorder=owner.catalog if owner is not None else None,
                               key_per_graph=bool(getattr(args, "key_per_graph", False)))
    # Without -w the graph is known by its snapshots alone (list, verify, restore --target).
    return GraphBackup.of(snapshots, FolderSource(working_dir, getattr(args, "workspace", "") or "")
                          if working_dir else None)


def snapshot_line(s: Any) -> str:
    counts = s.metadata
    return (
        f"{s.snapshot_id}  {s.timestamp:%Y-%m-%d %H:%M:%S}Z  {s.graph_id:<16} {human(s.size_bytes):>10} "
        f"(+{human(s.stored_bytes)} stored)  entities={counts.get('entities', '?')} "
        f"relations={counts.get('relations', '?')}  {','.join(s.tags)} {s.description or ''}"
    ).rstrip()


SNAPSHOT_HEADER = (f"{'snapshot':<36}  {'time (UTC)':<20} {'graph':<16} {'size':>10} {'stored':<18}  "
                   "counts  tags description")


def retention_options(sub: argparse.ArgumentParser) -> None:
    periods = {"last": "the N newest snapshots", "hourly": "the newest of each of the last N hours",
               "daily": "the newest of each of the last N days", "weekly": "the newest of each of the last N weeks",
               "monthly": "the newest of each of the last N months", "yearly": "the newest of each of the last N years"}
    for period, meaning in periods.items():
        sub.add_argument(f"--keep-{period}", type=int, metavar="N", help=f"keep {meaning}")
    sub.add_argument("--keep-within", metavar="DURATION", help="keep everything younger than this (30d, 12h, 2w, 1y)")
    sub.add_argument("--keep-tag", action="append", default=[], metavar="TAG", help="keep snapshots with this tag (repeatable)")


_PERIODS = ("last", "hourly", "daily", "weekly", "monthly", "yearly", "within")


def policy(args: argparse.Namespace) -> Any:
    from ..retention import RetentionPolicy

    return RetentionPolicy(
        keep_last=args.keep_last, keep_hourly=args.keep_hourly, keep_daily=args.keep_daily,
        keep_weekly=args.keep_weekly, keep_monthly=args.keep_monthly, keep_yearly=args.keep_yearly,
        keep_within=args.keep_within, keep_tags=tuple(args.keep_tag),
    )


def has_policy(args: argparse.Namespace) -> bool:
    return any(getattr(args, f"keep_{p}") is not None for p in _PERIODS) or bool(args.keep_tag)


def add_command(commands: Any, name: str, help: str, run: Callable[..., int], *, defined: bool,
                path: "str | None" = None) -> argparse.ArgumentParser:
    """Add a command (``path`` names nested ones, e.g. ``schedule set``) that ``run(args, bar)``
    carries out. A ``defined`` command also takes the global options after its name."""
    sub = commands.add_parser(name, help=help)
    sub.set_defaults(run=run, command_path=path or name)
    if defined:
        global_options(sub, after_command=True)
    return sub
