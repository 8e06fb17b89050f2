"""Replication targets: where a graph's snapshots are copied to.

A target is another repository (``s3://``, ``az://``, ``gs://``, ``file://`` or a folder: the
same transfer straight into a second object store, as ``restic copy`` does) or, next, another
lightrag-backup instance (``http(s)://``). Its API key is a secret: never logged, never
returned (``to_dict`` masks it), never in an error message; ``api_key="env:STANDBY_KEY"``
names an environment variable instead of holding the value.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional

from lightrag.backup.errors import InvalidInputError

_NAME = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,63}$")
REPOSITORY_SCHEMES = ("s3", "s3a", "az", "azure", "gs", "file")
INSTANCE_SCHEMES = ("http", "https")
CONFLICT_POLICIES = ("reject", "source_wins")


@dataclass
class ReplicationTarget:
    """The Phase 5A design's ``ReplicationTarget(name, base_url, api_key, enabled)``, plus which graphs go
    there (``None``: all), the conflict policy, a CA file for ``https://`` and object-store
    ``options`` (endpoint, region, ...) for repository targets."""

    name: str
    base_url: str
    api_key: Optional[str] = field(default=None, repr=False)
    enabled: bool = True
    graphs: Optional[list[str]] = None
    conflict_policy: str = "reject"
    ca_file: Optional[str] = None
    options: dict[str, str] = field(default_factory=dict, repr=False)
    target_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise InvalidInputError(
                f"target name {self.name!r} is not valid: 1-64 letters, digits, '_', '-', '.', not starting with '.'"
            )
        if not isinstance(self.base_url, str) or not self.base_url.strip() or len(self.base_url) > 2048:
            raise InvalidInputError("base_url must be a repository URL (s3://, az://, gs://, file://, a path) or http(s)://")
        scheme = self.scheme
        if scheme not in REPOSITORY_SCHEMES + INSTANCE_SCHEMES + ("",):
            raise InvalidInputError(f"base_url scheme {scheme!r} is not supported (use s3, az, gs, file, http or https)")
        if self.conflict_policy not in CONFLICT_POLICIES:
            raise InvalidInputError(f"conflict_policy must be one of {', '.join(CONFLICT_POLICIES)}")
        if self.graphs is not None:
            from lightrag.backup.types import validate_graph_id

            self.graphs = [validate_graph_id(g) for g in self.graphs]
        if self.api_key is not None and not isinstance(self.api_key, str):
            raise InvalidInputError("api_key must be a string (or env:VARIABLE)")

    @property
    def scheme(self) -> str:
        return self.base_url.split("://", 1)[0].lower() if "://" in self.base_url else ""

    @property
    def kind(self) -> str:
        """``repository`` (an object store or folder) or ``instance`` (a lightrag-backup server)."""
        return "instance" if self.scheme in INSTANCE_SCHEMES else "repository"

    def resolved_api_key(self) -> Optional[str]:
        """The key itself (an ``env:NAME`` or ``file:PATH`` reference read now)."""
        if self.api_key and self.api_key.startswith("env:"):
            name = self.api_key[4:]
            value = os.environ.get(name)
            if not value:
                raise InvalidInputError(f"target {self.name}: the API key variable {name} is not set")
            return value
        if self.api_key and self.api_key.startswith("file:"):
            from lightrag.backup.environment import read_secret_file

            return read_secret_file(self.api_key[5:], f"target {self.name}: the API key file")
        return self.api_key

    def tls_context(self) -> Any:
        """The TLS context for an ``https://`` target: the system's CAs, or ``ca_file``'s.
        Raises :class:`InvalidInputError` naming the problem when ``ca_file`` is missing or not
        PEM (checked when the target is registered, and again before each use: a CA file
        broken later fails this target only)."""
        if not self.ca_file:
            return None
        import ssl

        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except FileNotFoundError:
            raise InvalidInputError(f"target {self.name}: ca_file {self.ca_file} does not exist") from None
        except (ssl.SSLError, OSError, ValueError) as error:
            raise InvalidInputError(
                f"target {self.name}: ca_file {self.ca_file} is not a PEM CA certificate "
                f"({getattr(error, 'reason', None) or getattr(error, 'strerror', None) or error})"
            ) from None

    def local_folder(self) -> Optional[str]:
        """The folder a ``file://`` URL or a plain path names (absolute), else ``None``."""
        if self.kind != "repository" or self.scheme not in ("file", ""):
            return None
        from urllib.parse import unquote, urlparse

        path = unquote(urlparse(self.base_url).path) if self.scheme == "file" else self.base_url
        return os.path.realpath(os.path.expanduser(path))

    def takes(self, graph_id: str) -> bool:
        return self.enabled and (self.graphs is None or graph_id in self.graphs)

    def to_dict(self, *, secrets: bool = False) -> dict[str, Any]:
        """A JSON-ready view; the API key is masked (an ``env:`` reference is shown as such)."""
        key = self.api_key
        if key and not secrets and not key.startswith(("env:", "file:")):
            key = "***"
        return {
            "target_id": self.target_id,
            "name": self.name,
            "base_url": self.base_url if secrets else masked_url(self.base_url),
            "kind": self.kind,
            "api_key": key,
            "enabled": self.enabled,
            "graphs": self.graphs,
            "conflict_policy": self.conflict_policy,
            "ca_file": self.ca_file,
            "options": {k: v if secrets else "***" if _secret_option(k) else masked_url(v)
                        for k, v in self.options.items()},
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "ReplicationTarget":
        return cls(
            name=row["name"], base_url=row["base_url"], api_key=row.get("api_key"), enabled=bool(row["enabled"]),
            graphs=row.get("graphs"), conflict_policy=row.get("conflict_policy") or "reject",
            ca_file=row.get("ca_file"), options=dict(row.get("options") or {}), target_id=row["target_id"],
        )


def masked_url(url: str) -> str:
    """``url`` with the password of a ``user:password@`` part shown as ``***``: what output
    and logs may show of an endpoint URL."""
    return re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", url)


def _secret_option(key: str) -> bool:
    key = key.lower()
    return any(word in key for word in ("secret", "key", "token", "password", "sas", "connection_string"))


__all__ = ["CONFLICT_POLICIES", "ReplicationTarget"]
