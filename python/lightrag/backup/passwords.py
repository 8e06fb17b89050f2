"""Where the password of an encrypted repository comes from.

In this order, the first that is given wins (a password never goes on a command line, where
every local user would see it in the process list):

1. the ``password`` the Python API was given (a string, bytes, or a callable returning one),
   or on the command line ``--password-file PATH`` (its first line), then
   ``--password-command CMD`` (its standard output: any secret manager's or cloud KMS's CLI);
2. ``LIGHTRAG_BACKUP_PASSWORD_FILE``, ``LIGHTRAG_BACKUP_PASSWORD_COMMAND``,
   ``LIGHTRAG_BACKUP_PASSWORD`` (also read from ``.env``, as LightRAG reads it).

A new password for ``key add`` and ``key passwd`` comes from ``--new-password-file``, else
``LIGHTRAG_BACKUP_NEW_PASSWORD``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from typing import Callable, Union

from .errors import InvalidInputError

#: What the API takes as a password: the password itself, or a callable that returns it.
PasswordSource = Union[str, bytes, Callable[[], Union[str, bytes]]]

#: How long a password command may take.
COMMAND_TIMEOUT = 60.0


def _as_bytes(value: Union[str, bytes], what: str) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if not data:
        raise InvalidInputError(f"{what} is empty")
    return data


def read_password_file(path: str, what: str) -> bytes:
    """The first line of ``path`` (without its line ending)."""
    try:
        with open(path, "rb") as handle:
            line = handle.readline(65536)
    except OSError as error:
        raise InvalidInputError(f"{what} {path}: {error.strerror or error}") from None
    return _as_bytes(line.rstrip(b"\r\n"), f"{what} {path}")


def run_password_command(command: str, what: str) -> bytes:
    """The standard output of ``command`` (split as a shell would, run without one), its last
    line ending removed. Its standard error goes to ours; a failure names the program only."""
    try:
        argv = shlex.split(command)
    except ValueError as error:
        raise InvalidInputError(f"{what} cannot be parsed: {error}") from None
    if not argv:
        raise InvalidInputError(f"{what} is empty")
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=COMMAND_TIMEOUT,
                              check=False)
    except FileNotFoundError:
        raise InvalidInputError(f"{what}: program {argv[0]!r} not found") from None
    except subprocess.TimeoutExpired:
        raise InvalidInputError(f"{what}: {argv[0]!r} did not finish within {COMMAND_TIMEOUT:g} s") from None
    if done.returncode != 0:
        raise InvalidInputError(f"{what}: {argv[0]!r} exited with status {done.returncode}")
    output = done.stdout
    if output.endswith(b"\n"):
        output = output[:-1]
    if output.endswith(b"\r"):
        output = output[:-1]
    return _as_bytes(output, f"the output of {what} ({argv[0]!r})")


def resolve_password(
    password: "PasswordSource | None" = None,
    *,
    password_file: "str | None" = None,
    password_command: "str | None" = None,
) -> "bytes | None":
    """The password from the first source given (see the module documentation), or ``None``."""
    if password is not None:
        if callable(password):
            return _as_bytes(password(), "the password the callable returned")
        return _as_bytes(password, "the password")
    if password_file:
        return read_password_file(password_file, "--password-file")
    if password_command:
        return run_password_command(password_command, "--password-command")
    env = os.environ
    if env.get("LIGHTRAG_BACKUP_PASSWORD_FILE"):
        return read_password_file(env["LIGHTRAG_BACKUP_PASSWORD_FILE"], "LIGHTRAG_BACKUP_PASSWORD_FILE")
    if env.get("LIGHTRAG_BACKUP_PASSWORD_COMMAND"):
        return run_password_command(env["LIGHTRAG_BACKUP_PASSWORD_COMMAND"], "LIGHTRAG_BACKUP_PASSWORD_COMMAND")
    if env.get("LIGHTRAG_BACKUP_PASSWORD"):
        return _as_bytes(env["LIGHTRAG_BACKUP_PASSWORD"], "LIGHTRAG_BACKUP_PASSWORD")
    return None


def resolve_new_password(new_password_file: "str | None" = None) -> bytes:
    """The new password of ``key add`` / ``key passwd``: ``--new-password-file``, else
    ``LIGHTRAG_BACKUP_NEW_PASSWORD``."""
    if new_password_file:
        return read_password_file(new_password_file, "--new-password-file")
    if os.environ.get("LIGHTRAG_BACKUP_NEW_PASSWORD"):
        return _as_bytes(os.environ["LIGHTRAG_BACKUP_NEW_PASSWORD"], "LIGHTRAG_BACKUP_NEW_PASSWORD")
    raise InvalidInputError("no new password: pass --new-password-file PATH or set LIGHTRAG_BACKUP_NEW_PASSWORD")


__all__ = [
    "PasswordSource",
    "read_password_file",
    "resolve_new_password",
    "resolve_password",
    "run_password_command",
]
