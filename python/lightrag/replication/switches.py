"""Per-graph switches kept in the repository's settings, with a default from the environment:
what a standby applies (``apply.py``) and which graphs replicate continuously
(``continuous.py``). Kept in the repository, not only the catalog, so a rebuilt catalog or a
new machine keeps them; an environment variable (``*`` or comma-separated graph ids) turns a
switch on for every graph without a setting of its own."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Optional

from lightrag.backup.types import validate_graph_id

if TYPE_CHECKING:
    from lightrag.backup.storage import BackupStorageBackend


class GraphSwitch:
    """An on/off per graph: the repository setting ``kind``, else ``env``."""

    def __init__(self, storage: "BackupStorageBackend", kind: str, env: str) -> None:
        self.storage, self.kind, self.env = storage, kind, env

    def settings(self) -> dict[str, Any]:
        """Every graph's own setting: graph id -> ``{"enabled": bool}``."""
        return dict(json.loads(self.storage.engine.settings_op(self.kind).run()))

    def by_environment(self, graph_id: str) -> bool:
        wanted = {g.strip() for g in os.environ.get(self.env, "").split(",") if g.strip()}
        return "*" in wanted or graph_id in wanted

    def enabled(self, graph_id: str, settings: Optional[dict[str, Any]] = None) -> bool:
        """Whether the switch is on for ``graph_id`` (``settings``: an earlier :meth:`settings`)."""
        own = (self.settings() if settings is None else settings).get(graph_id)
        if own is not None:
            return bool(own.get("enabled"))
        return self.by_environment(graph_id)

    def set(self, graph_id: str, enabled: bool) -> None:
        validate_graph_id(graph_id)
        self.storage.engine.put_setting_op(self.kind, graph_id, json.dumps({"enabled": bool(enabled)})).run()


__all__ = ["GraphSwitch"]
