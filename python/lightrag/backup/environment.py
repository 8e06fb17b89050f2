"""Settings read from the environment: one reading of a flag and of a number, with one kind
of error for a value that is not one (:class:`InvalidInputError`, naming the variable)."""

from __future__ import annotations

import os
from typing import Optional

from .errors import InvalidInputError


def env_flag(name: str) -> bool:
    """Whether ``name`` is set to a true value (1, true, yes, on)."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def env_number(name: str, default: float, *, low: Optional[float] = None, high: Optional[float] = None) -> float:
    """``name`` as a number (``default`` when unset or blank): positive, and within
    ``low``..``high`` when given."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInputError(f"{name}={raw!r} is not a number") from None
    if value <= 0 or (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low:g} and {high:g}" if low is not None and high is not None else "positive"
        raise InvalidInputError(f"{name} must be {bounds}, not {raw!r}")
    return value


def read_secret_file(path: str, what: str) -> str:
    """The secret a file holds (its first line, stripped), kept off command lines: raises
    :class:`InvalidInputError` naming ``what`` when it cannot be read or is empty."""
    try:
        with open(path, encoding="utf-8") as handle:
            secret = handle.readline().strip()
    except OSError as error:
        raise InvalidInputError(f"{what} {path}: {error.strerror or error}") from None
    if not secret:
        raise InvalidInputError(f"{what} {path} holds no key")
    return secret


__all__ = ["env_flag", "env_number", "read_secret_file"]
