"""The status page (``GET /backup/ui``) in a real browser: headless Chromium (Debian's) loads it
from a running server and the test reads what a person would see, the graph rows and their
values, against what the API says. A screenshot is kept under the test's temp folder."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from helpers import build, start_server, stop_serve

KEY = "page-key"


pytestmark = [pytest.mark.browser, pytest.mark.processes]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed (scripts/test.sh installs it: apt-get install chromium)")
    return found


def browse(url: str, *extra: str) -> str:
    result = subprocess.run([chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--virtual-time-budget=8000", *extra, url],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


class Rows(HTMLParser):
    """The page's graph rows: ``{graph id: {cell class: text}}``, and the instance line."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.texts: dict[str, str] = {}
        self._row: str | None = None
        self._cell: str | None = None
        self._id: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr" and found.get("data-graph"):
            self._row = found["data-graph"]
            self.rows[self._row] = {}
        elif tag == "td" and self._row is not None:
            self._cell = (found.get("class") or "").split()[0]
            self.rows[self._row][self._cell] = ""
        elif found.get("id"):
            self._id = found["id"]
            self.texts.setdefault(self._id, "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None
        elif tag == "tr":
            self._row = None
        self._id = None

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._cell is not None:
            self.rows[self._row][self._cell] += data
        elif self._id is not None:
            self.texts[self._id] += data


def human_bytes(n: float) -> str:
    units = ["B", "KB", "MB", "GB", "TB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000
        i += 1
    return f"{n:.1f} {units[i]}" if i else f"{int(n)} B"


def test_the_status_page_shows_every_graph_in_a_real_browser(tmp_path: Path):
    build(tmp_path / "u-graphs" / "docs", 2, seed=51)
    build(tmp_path / "u-graphs" / "notes", 1, seed=52)
    server = start_server(tmp_path, "u", KEY)
    client, base = server["client"], server["base"]
    try:
        page = httpx.get(f"{base}/backup/ui")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert KEY not in page.text, "no secret in the page"
        for graph_id in ("docs", "notes"):
            assert client.post(f"/backup/graphs/{graph_id}/snapshots?wait=true", json={}).status_code == 200
        assert client.post("/backup/graphs/docs/snapshots?wait=true", json={}).status_code == 200
        assert client.post("/backup/schedule", json={"graph_id": "docs", "interval": "6h"}).status_code in (200, 201)
        newest = client.get("/backup/graphs/docs/snapshots").json()[-1]
        assert client.post(f"/backup/graphs/docs/snapshots/{newest['snapshot_id']}/verify?wait=true").json()[
            "result"]["ok"]

        # Without the key the page says so and shows nothing.
        signed_out = Rows()
        signed_out.feed(browse(f"{base}/backup/ui", "--dump-dom"))
        assert not signed_out.rows and "Not signed in" in signed_out.texts.get("error", ""), signed_out.texts

        shot = tmp_path / "status-page.png"
        browse(f"{base}/backup/ui#key={KEY}", f"--screenshot={shot}", "--window-size=1500,500")
        assert shot.exists() and shot.stat().st_size > 5000
        seen = Rows()
        seen.feed(browse(f"{base}/backup/ui#key={KEY}", "--dump-dom"))
        assert set(seen.rows) == {"docs", "notes"}, seen.rows
        graphs = {g["graph_id"]: g for g in client.get("/backup/graphs").json()}
        stats = client.get("/backup/stats").json()["graphs"]
        for graph_id, row in seen.rows.items():
            assert row["graph"] == graph_id
            assert row["newest"] == graphs[graph_id]["newest"]["snapshot_id"][:8]
            assert row["snapshots"] == str(graphs[graph_id]["snapshot_count"])
            assert row["stored"] == human_bytes(stats[graph_id]["stored_bytes"]), (row, stats[graph_id])
            assert row["dedup"] == f"{stats[graph_id]['dedup_ratio']:.2f}x"
            assert row["age"].endswith(" s") and int(row["age"].split()[0]) < 120, row
            assert row["rpo"].endswith(" s"), row
        assert seen.rows["docs"]["schedule"] == "every 6.0 h"
        assert seen.rows["notes"]["schedule"] == "none"
        assert seen.rows["docs"]["verify"].startswith("ok ")
        assert seen.rows["notes"]["verify"] == "never"
        assert "This instance: primary, epoch 0" in seen.texts["instance"], seen.texts
    finally:
        stop_serve(server)
