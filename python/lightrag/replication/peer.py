"""Questions one instance asks another: its ``info`` (role, epoch, format), a ``verify`` of
its copy of a snapshot, a switchover's ``promote``. They go through the engine's one peer
client (``src/replication/peer.rs``), the one a push uses: one set of headers (API key,
this instance's fencing epoch), one TLS setup, one way of reading an answer, and typed
failures (:class:`~lightrag.backup.errors.PushRefusedError` with its ``refusal``: ``fenced``,
``target_is_primary``, ``conflict``; :class:`~lightrag.backup.errors.PeerUnreachableError`,
retryable). Route paths are the engine's too (:data:`ROUTES`); the receive routes are
mounted from them (:mod:`.receive_api`).
"""

from __future__ import annotations

import json
from typing import Any, Optional

from lightrag.backup import _native

from .targets import ReplicationTarget

#: Where an instance answers, by name (``receive`` is the receive routes' prefix).
ROUTES: dict[str, str] = dict(_native.peer_routes())


def receive_path(route: str, **params: str) -> str:
    """The path of receive route ``route`` (a name of :data:`ROUTES`) from an instance's root,
    its ``{name}`` parameters filled in."""
    path = ROUTES["receive"] + ROUTES[route]
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    return path


class Peer:
    """Another instance (an instance target), asked with this instance's fencing ``epoch``."""

    def __init__(self, target: ReplicationTarget, *, epoch: int, timeout: float = 30.0, retries: int = 0) -> None:
        self.target = target
        self.epoch = int(epoch)
        self.timeout = float(timeout)
        self.retries = int(retries)

    def call(self, method: str, path: str, body: Optional[dict[str, Any]] = None, *,
             timeout: Optional[float] = None) -> dict[str, Any]:
        """``method`` ``path`` (from the instance's root) with a JSON ``body``; its JSON answer."""
        self.target.tls_context()  # a CA file broken since registration: said the one way, here
        answer = _native.peer_call(
            self.target.base_url, method, path, json.dumps(body) if body is not None else None,
            api_key=self.target.resolved_api_key(), ca_file=self.target.ca_file, epoch=self.epoch,
            timeout=timeout or self.timeout, retries=self.retries,
        )
        return dict(json.loads(answer))

    def info(self, *, timeout: Optional[float] = None) -> dict[str, Any]:
        """What it is: ``role``, ``epoch``, ``fenced``, ``rewind``, ``instance``, format and chunker."""
        return self.call("GET", receive_path("info"), timeout=timeout)

    def verify(self, graph_id: str, snapshot_id: str, *, timeout: Optional[float] = None) -> dict[str, Any]:
        """Have it read back its copy of a snapshot whole: ``present``, ``ok``, ``data_hash``, ``errors``."""
        return self.call("POST", receive_path("verify", graph_id=graph_id, snapshot_id=snapshot_id), timeout=timeout)

    def promote(self, body: dict[str, Any], *, timeout: Optional[float] = None) -> dict[str, Any]:
        """A switchover's last step: it takes the primary role with the final recovery point."""
        return self.call("POST", ROUTES["promote"], body, timeout=timeout)


__all__ = ["Peer", "ROUTES", "receive_path"]
