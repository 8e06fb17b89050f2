"""The key commands of an encrypted repository: ``key list | add | remove | passwd | export``.

Each key wraps the one master key under its own password (Argon2id), so passwords are added,
changed and removed by writing or deleting one small object: no data is rewritten.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._common import ProgressBar, Wanted, add_command, emit, storage


def register(commands: Any, wanted: Wanted) -> None:
    sub = commands.add_parser("key", help="the keys (passwords) of an encrypted repository")
    if not wanted("key"):
        return
    actions = sub.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    add_command(actions, "list", "the keys: id, when and where each was made, its KDF parameters", key_list,
                defined=True, path="key list")
    new_password = ("the new password: --new-password-file PATH (its first line), else "
                    "$LIGHTRAG_BACKUP_NEW_PASSWORD")
    add = add_command(actions, "add", "add a key with a new password (the others keep working)", key_add,
                      defined=True, path="key add")
    add.add_argument("--new-password-file", metavar="PATH", help=new_password)
    passwd = add_command(actions, "passwd", "change the password this command opened the repository with", key_passwd,
                         defined=True, path="key passwd")
    passwd.add_argument("--new-password-file", metavar="PATH", help=new_password)
    remove = add_command(actions, "remove", "remove a key (not the one in use, never the last one)", key_remove,
                         defined=True, path="key remove")
    remove.add_argument("key_id", metavar="KEY_ID", help="the key's id or a unique prefix of it (see `key list`)")
    add_command(actions, "export", "print the master key for safekeeping (whoever holds it reads everything)",
                key_export, defined=True, path="key export")


def key_list(args: argparse.Namespace, bar: ProgressBar) -> int:
    keys = storage(args).keys()
    lines = [f"{'':1} {'key':<32}  {'created (UTC)':<20}  {'host':<16} {'user':<10} kdf"]
    for key in keys:
        kdf = key["kdf"]
        lines.append(f"{'*' if key['current'] else ' '} {key['id']:<32}  {key['created_at']:<20}  "
                     f"{key['hostname'][:16]:<16} {key['username'][:10]:<10} "
                     f"{kdf['algorithm']} m={kdf['memory_kib']}KiB t={kdf['iterations']} p={kdf['parallelism']}")
    if not keys:
        lines = ["the repository is not encrypted: it has no keys"]
    emit(args, keys, "\n".join(lines))
    return 0


def _new_password(args: argparse.Namespace) -> bytes:
    from ..passwords import resolve_new_password

    return resolve_new_password(args.new_password_file)


def key_add(args: argparse.Namespace, bar: ProgressBar) -> int:
    store = storage(args)
    key_id = store.add_key(_new_password(args))
    emit(args, {"added": key_id}, f"added key {key_id}")
    return 0


def key_passwd(args: argparse.Namespace, bar: ProgressBar) -> int:
    store = storage(args)
    key_id = store.change_password(_new_password(args))
    emit(args, {"current": key_id}, f"password changed: key {key_id} replaces the one used to open the repository")
    return 0


def key_remove(args: argparse.Namespace, bar: ProgressBar) -> int:
    removed = storage(args).remove_key(args.key_id)
    emit(args, {"removed": removed}, f"removed key {removed}")
    return 0


def key_export(args: argparse.Namespace, bar: ProgressBar) -> int:
    exported = storage(args).export_key()
    print("lightrag-backup: warning: this is the repository's master key: whoever holds it reads every snapshot, "
          "whatever the passwords. Keep it offline.", file=sys.stderr)
    print(exported)
    return 0


__all__ = ["register"]
