"""How values look in a Jupyter notebook, and progress there.

Notebooks call ``_repr_html_``: snapshots, snapshot lists, storage stats and verify reports
render as HTML tables (escaped); everywhere else they print as before. ``progress=True`` on a
long operation shows tqdm's notebook-aware bar (``tqdm.auto``: a widget in Jupyter, text in a
terminal). Imports nothing of ours: the value types use it.
"""

from __future__ import annotations

import contextlib
import html
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Union


def human_bytes(n: Optional[float]) -> str:
    if n is None:
        return "-"
    units = ["B", "KB", "MB", "GB", "TB"]
    value, unit = float(n), 0
    while value >= 1000 and unit < len(units) - 1:
        value /= 1000
        unit += 1
    return f"{value:.1f} {units[unit]}" if unit else f"{int(value)} B"


def html_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = "") -> str:
    """An HTML table of ``rows`` (every cell escaped)."""
    head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(str(cell))}</td>" for cell in row)
                   + "</tr>" for row in rows)
    title = f"<caption style='text-align:left'>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


SNAPSHOT_COLUMNS = ("snapshot", "graph", "time", "status", "files", "size", "added", "tags", "description")


def snapshot_row(snapshot: Any) -> tuple[Any, ...]:
    return (snapshot.snapshot_id[:8], snapshot.graph_id, snapshot.timestamp.isoformat(timespec="seconds"),
            snapshot.status.value, snapshot.metadata.get("file_count", "-"), human_bytes(snapshot.size_bytes),
            human_bytes(snapshot.stored_bytes), ", ".join(snapshot.tags), snapshot.description or "")


class SnapshotList(list):  # type: ignore[type-arg]
    """A list of snapshots (oldest first) that renders as one table in a notebook."""

    def _repr_html_(self) -> str:
        return html_table(SNAPSHOT_COLUMNS, (snapshot_row(s) for s in self), f"{len(self)} snapshot(s)")


class StatsReport(dict):  # type: ignore[type-arg]
    """Storage statistics (a plain dict) that render as a table per graph in a notebook."""

    def _repr_html_(self) -> str:
        found = self.get("graphs")
        graphs: dict[str, Any] = found if isinstance(found, dict) else {"": self}
        rows = [(graph_id or self.get("graph_id", ""), stats.get("snapshot_count", "-"),
                 human_bytes(stats.get("logical_bytes")), human_bytes(stats.get("stored_bytes")),
                 f"{stats.get('dedup_ratio', 0):.2f}x", f"{stats.get('compression_ratio', 0):.2f}x",
                 stats.get("newest") or "-")
                for graph_id, stats in graphs.items()]
        overall = self.get("overall") or {}
        caption = (f"repository {human_bytes(overall.get('repository_bytes'))}, space saving "
                   f"{overall.get('space_saving', 0):.0%}") if overall else ""
        return html_table(("graph", "snapshots", "logical", "stored", "dedup", "compression", "newest"), rows, caption)


class _Bar:
    """A ``ProgressCallback`` drawing tqdm bars, one per phase."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._phase: Optional[str] = None

    def __call__(self, phase: str, done: int, total: int) -> None:
        from tqdm.auto import tqdm

        if phase != self._phase or self._bar is None:
            self.close()
            self._bar = tqdm(total=total or None, desc=phase, unit="B", unit_scale=True, leave=True)
            self._phase = phase
        if total and self._bar.total != total:
            self._bar.total = total
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


Progress = Union[None, bool, Callable[[str, int, int], None]]


@contextlib.contextmanager
def progress_callback(progress: Progress) -> Iterator[Optional[Callable[[str, int, int], None]]]:
    """The callback to hand the engine: ``progress`` itself when it is one, a tqdm bar for
    ``True`` (closed at the end of the block), nothing for ``None``/``False``."""
    if progress is True:
        bar = _Bar()
        try:
            yield bar
        finally:
            bar.close()
        return
    yield progress if callable(progress) else None


__all__ = ["SnapshotList", "StatsReport", "html_table", "human_bytes", "progress_callback"]


def quiet_lightrag_logs(verbose: bool = False) -> None:
    """LightRAG's own log lines (INFO per storage loaded and flushed) only when ``verbose``:
    a command's output is its own story. LightRAG sets its logger to INFO when
    ``lightrag.utils`` is imported, and nano-vectordb logs at INFO through the root logger:
    import first, then quiet both."""
    import logging

    import lightrag.utils  # noqa: F401

    for name in ("lightrag", "nano-vectordb"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
