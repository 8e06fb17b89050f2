"""``examples/quickstart.ipynb`` runs top to bottom in a real Jupyter kernel (nbclient), so it
never rots; the rich displays it relies on come out as HTML tables, the plot as an image, the
progress bars as notebook widgets."""

from __future__ import annotations

import pytest

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


pytestmark = pytest.mark.processes


def test_the_quickstart_notebook_runs_top_to_bottom(tmp_path: Path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [(cell, output) for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for _, o in outputs if o.output_type == "error"]
    html = [o["data"]["text/html"] for _, o in outputs if o.output_type == "execute_result" and "text/html" in o["data"]]
    # A snapshot, the list of two, the storage stats and the verify report render as tables.
    assert any("2 snapshot(s)" in h and "<table>" in h for h in html), html
    assert any("dedup" in h and "compression" in h for h in html)
    assert any("whole" in h and "every chunk read" in h for h in html)
    assert any(o.output_type == "display_data" and "image/png" in o["data"] for _, o in outputs), "the plot"
    widgets = [o for _, o in outputs if o.output_type == "display_data"
               and "application/vnd.jupyter.widget-view+json" in o["data"]]
    assert widgets, "progress=True draws notebook progress bars"
    shown = [o["data"].get("text/html", "") for _, o in outputs if o.output_type in ("display_data", "execute_result")]
    assert any("replication of docs" in h and "offsite" in h for h in shown), "the replication status as a table"
    assert any("acting as" in h and "primary" in h and "standbys (lag)" in h for h in shown), "the recovery status"


def test_values_render_as_escaped_tables_and_progress_true_draws_a_bar(tmp_path: Path, capsys):
    from helpers import build

    from lightrag.backup import GraphBackup
    from lightrag.backup.storage import LocalBackupStorage

    build(tmp_path / "graph", 1, seed=61)
    backup = GraphBackup("g", LocalBackupStorage(tmp_path / "repo"), working_dir=tmp_path / "graph")
    snapshot = backup.create_snapshot(description="<script>alert(1)</script>", progress=True)
    drawn = capsys.readouterr().err
    assert "snapshot" in drawn and "100%" in drawn, drawn  # tqdm's text bar outside a notebook
    html = snapshot._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html and snapshot.snapshot_id[:8] in html
    assert "1 snapshot(s)" in backup.list_snapshots()._repr_html_()
    assert isinstance(backup.list_snapshots(), list)
    stats = backup.get_backup_stats()
    assert isinstance(stats, dict) and "dedup" in stats._repr_html_()
    report = backup.verify_snapshot(snapshot.snapshot_id, progress=True)
    assert "whole" in report._repr_html_() and str(report).startswith("snapshot")
    # A callback still works as before.
    calls: list[tuple[str, int, int]] = []
    backup.verify_snapshot(snapshot.snapshot_id, progress=lambda phase, done, total: calls.append((phase, done, total)))
    assert calls and calls[-1][1] == calls[-1][2]
