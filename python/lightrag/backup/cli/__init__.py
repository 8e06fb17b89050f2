"""``lightrag-backup``: snapshot, list, show, verify, restore, delete, forget and prune LightRAG
graph backups, schedule them, serve them over REST, and keep the catalog.

The repository comes from ``--repo`` or ``LIGHTRAG_BACKUP_STORAGE_PATH``; the graph from
``--working-dir``/``--workspace`` or LightRAG's own ``WORKING_DIR``/``WORKSPACE``. A ``.env``
file in the current folder is read as LightRAG reads it (the environment wins). Global options
go before or after the command. Errors print one clear line and exit non-zero; ``--json``
prints machine-readable results.

Each command group is a module that registers its own commands (:data:`GROUPS`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

from . import backup, keys, maintenance, recovery, replication, schedule, serve
from ._common import EXIT_ERROR, EXIT_PASSWORD, EXIT_USAGE, GLOBAL_VALUE_OPTIONS, ProgressBar, global_options

#: The command groups, in the order ``--help`` lists them.
GROUPS = (backup, keys, maintenance, schedule, replication, recovery, serve)


def _command_word(argv: Sequence[str]) -> Optional[str]:
    words = iter(argv)
    for word in words:
        if word in GLOBAL_VALUE_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(argv: Optional[Sequence[str]] = None, *, full: bool = False) -> argparse.ArgumentParser:
    """The command line parser. Only the command being run gets its options defined; every
    command is defined in full (``full``) when the command word is not a known one (help,
    typos)."""
    from .. import __version__

    command = _command_word(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="lightrag-backup",
        allow_abbrev=False,
        description="Backups of LightRAG knowledge graphs: deduplicated, compressed, verifiable.",
    )
    parser.add_argument("--version", action="version", version=f"lightrag-backup {__version__}")
    global_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        group.register(commands, lambda name: full or command == name)
    if not full and command not in commands.choices:
        return build_parser(argv, full=True)
    return parser


def load_dotenv_file() -> None:
    """Read ``./.env`` as LightRAG does: variables already in the environment win."""
    if not os.path.isfile(".env"):
        return
    try:
        from dotenv import load_dotenv
    except ImportError:  # python-dotenv comes with lightrag-hku; without it, .env is not read
        return
    load_dotenv(".env", override=False)


def main(argv: Optional[Sequence[str]] = None) -> int:
    load_dotenv_file()
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    bar = ProgressBar(enabled=not args.no_progress and not args.json)
    from ..errors import BackupError, OperationCancelledError

    try:
        return int(args.run(args, bar))
    except (KeyboardInterrupt, OperationCancelledError):
        bar.close()
        print("lightrag-backup: interrupted; nothing was committed and the repository is valid", file=sys.stderr)
        return 130
    except BackupError as error:
        bar.close()
        if args.json:
            print(json.dumps({"error": {"kind": error.kind, "message": str(error)}}))
        print(f"lightrag-backup: error: {error}", file=sys.stderr)
        return EXIT_PASSWORD if error.kind in ("password_required", "wrong_password") else EXIT_ERROR


def console() -> None:
    """The ``lightrag-backup`` command: :func:`main`, then exit without tearing the interpreter
    down. Every result is written and flushed by then and nothing runs in the background (the
    server drains its jobs before it returns), so the only work skipped is freeing objects one
    by one: about 20 ms of every command here."""
    code = main()
    from .. import _native

    _native._drain(5.0)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


__all__ = ["GROUPS", "build_parser", "console", "main"]
