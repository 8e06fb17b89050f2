"""What changed in a LightRAG graph between two versions: :class:`GraphDiff`.

Made by :meth:`GraphBackup.diff <lightrag.backup.GraphBackup.diff>` (``lightrag-backup diff``,
``GET /backup/graphs/{graph_id}/diff``) from two snapshots, or a snapshot and the graph as it is
now, read as streams by the engine (``src/kg_diff.rs``) without restoring anything: documents,
entities and relations added, removed and changed (which fields), text chunks, vector rows and
LLM cache entries added and removed. Counts come first (:attr:`GraphDiff.counts`); the lists are
paged (:meth:`GraphDiff.page`).
"""

from __future__ import annotations

from typing import Any, Iterator

from .display import html_table

#: The kinds of record a diff lists one by one (the others are counted).
LISTED = ("documents", "entities", "relations")
#: Its parts.
PARTS = ("added", "removed", "changed")


def _name(kind: str, item: Any) -> str:
    if kind == "documents":
        return str(item["id"])
    if kind == "relations":
        ends = item["name"] if isinstance(item, dict) else item
        return " -- ".join(ends)
    return str(item["name"][0] if isinstance(item, dict) else item)


def _detail(kind: str, part: str, item: Any) -> str:
    if kind == "documents":
        facts = [f"file {item.get('file_path') or '?'}"]
        if part == "changed":
            if item.get("status"):
                facts.append("status {} -> {}".format(*item["status"]))
            if item.get("chunks"):
                facts.append("chunks {} -> {}".format(*item["chunks"]))
            if item.get("content_changed"):
                facts.append("text changed")
        else:
            facts += [f"status {item.get('status') or '?'}", f"{item.get('chunks') if item.get('chunks') is not None else '?'} chunks"]
        return ", ".join(facts)
    if part == "changed":
        return "fields: " + ", ".join(item["fields"])
    return ""


class GraphDiff(dict):  # type: ignore[type-arg]
    """What changed from one version of a graph to another (a plain dict of the engine's JSON:
    ``documents``, ``entities``, ``relations`` with ``added``/``removed``/``changed`` lists;
    ``chunks``, ``vectors`` (per store) and ``llm_cache`` counts; ``totals`` per version), with
    ``from``/``to`` naming the versions. Renders as tables in a notebook."""

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        """Per kind, how many were added, removed and changed (vector rows per store)."""
        out: dict[str, dict[str, int]] = {}
        for kind in LISTED:
            out[kind] = {part: len(self[kind][part]) for part in PARTS}
        out["chunks"] = dict(self["chunks"])
        for store, counts in self["vectors"].items():
            out[f"vectors:{store}"] = dict(counts)
        out["llm_cache"] = dict(self["llm_cache"])
        return out

    @property
    def is_empty(self) -> bool:
        """Whether the two versions hold the same knowledge."""
        return not any(n for counts in self.counts.values() for n in counts.values())

    def page(self, kind: str, part: str, offset: int = 0, limit: int = 50) -> list[Any]:
        """``limit`` items of one list from ``offset`` on (``kind`` documents, entities or
        relations; ``part`` added, removed or changed)."""
        if kind not in LISTED or part not in PARTS:
            from .errors import InvalidInputError

            raise InvalidInputError(f"a diff lists {', '.join(LISTED)} by {', '.join(PARTS)}; not {kind} {part}")
        return list(self[kind][part][max(0, offset):max(0, offset) + max(0, limit)])

    def paged(self, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        """The diff with every list cut to ``limit`` items from ``offset`` (counts whole)."""
        out = {k: v for k, v in self.items() if k not in LISTED}
        out["counts"] = self.counts
        for kind in LISTED:
            out[kind] = {part: self.page(kind, part, offset, limit) for part in PARTS}
        out["offset"], out["limit"] = offset, limit
        return out

    def lines(self, limit: int = 20) -> Iterator[str]:
        """The diff as text: counts, then up to ``limit`` items of each list."""
        yield f"from {self.get('from', '?')} to {self.get('to', '?')}:"
        if self.is_empty:
            yield "  no change"
            return
        for kind, counts in self.counts.items():
            if any(counts.values()):
                parts = ", ".join(f"{n} {part}" for part, n in counts.items() if n)
                yield f"  {kind:<22} {parts}"
        for kind in LISTED:
            for part in PARTS:
                items = self[kind][part]
                if not items:
                    continue
                yield f"{kind} {part}:"
                sign = {"added": "+", "removed": "-", "changed": "~"}[part]
                for item in items[:limit]:
                    detail = _detail(kind, part, item)
                    yield f"  {sign} {_name(kind, item)}" + (f"  ({detail})" if detail else "")
                if len(items) > limit:
                    yield f"  ... and {len(items) - limit} more (--limit, or --json for all)"

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        rows = [(kind, counts.get("added", 0), counts.get("removed", 0), counts.get("changed", 0))
                for kind, counts in self.counts.items()]
        out = html_table(("kind", "added", "removed", "changed"), rows,
                         f"from {self.get('from', '?')} to {self.get('to', '?')}")
        for kind in LISTED:
            items = [(part, _name(kind, item), _detail(kind, part, item))
                     for part in PARTS for item in self[kind][part][:20]]
            if items:
                out += html_table(("", kind[:-1] if kind != "entities" else "entity", "detail"), items,
                                  f"{kind} (first 20 of each; .page() for more)")
        return out
