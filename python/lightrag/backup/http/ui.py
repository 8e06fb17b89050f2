"""``GET /backup/ui``: one page that answers "are my graphs safe?", with no build step.

The page holds no data and no secret: its script asks the API (``/backup/graphs``,
``/backup/stats``, ``/recovery/status``) with the key typed into its key field (kept in the
tab's session storage only; a ``#key=...`` fragment, which browsers never send to a server,
fills it once) or with the LightRAG WebUI's JWT when one is stored, and refreshes itself every
10 seconds. So the page is served without auth, and everything it shows is behind the same
auth as the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import APIRouter

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lightrag-backup: are my graphs safe?</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d232a; }
  h1 { font-size: 1.3em; margin: 0 0 .3em; }
  #instance { margin: .3em 0 1em; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid #dde2e6; white-space: nowrap; }
  th { background: #f3f5f7; font-weight: 600; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .ok { color: #17663a; } .warn { color: #9a6700; } .bad { color: #b3261e; font-weight: 600; }
  #error { color: #b3261e; margin: .5em 0; }
  form { margin-bottom: 1em; } input { width: 22em; }
  small { color: #5b6670; }
</style>
</head>
<body>
<h1>lightrag-backup: are my graphs safe?</h1>
<form id="auth"><label>API key <input id="key" type="password" autocomplete="off"
  placeholder="X-API-Key (or sign in to LightRAG's WebUI)"></label> <button type="submit">Show</button></form>
<div id="instance">loading...</div>
<div id="error" role="alert"></div>
<table>
  <thead><tr><th>graph</th><th>newest snapshot</th><th>age</th><th>snapshots</th><th>schedule</th>
  <th>last verify</th><th>stored</th><th>dedup</th><th>RPO now</th><th>standbys (lag)</th><th>health</th></tr></thead>
  <tbody id="graphs"></tbody>
</table>
<p><small id="refreshed"></small></p>
<script>
"use strict";
const keyField = document.getElementById("key");
if (location.hash.startsWith("#key=")) {
  sessionStorage.setItem("lightrag-backup-key", decodeURIComponent(location.hash.slice(5)));
  history.replaceState(null, "", location.pathname);
}
keyField.value = sessionStorage.getItem("lightrag-backup-key") || "";
document.getElementById("auth").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("lightrag-backup-key", keyField.value);
  refresh();
});

function headers() {
  const key = keyField.value;
  if (key) return {"X-API-Key": key};
  const token = localStorage.getItem("LIGHTRAG-API-TOKEN");
  return token ? {"Authorization": "Bearer " + token} : {};
}

async function get(path) {
  const answer = await fetch(path, {headers: headers()});
  if (!answer.ok) {
    let message = answer.status + " " + answer.statusText;
    try { const body = await answer.json(); message = (body.error && body.error.message) || body.detail || message; }
    catch (ignored) {}
    const error = new Error(path + ": " + message);
    error.status = answer.status;
    throw error;
  }
  return answer.json();
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  if (seconds < 90) return Math.round(seconds) + " s";
  if (seconds < 5400) return Math.round(seconds / 60) + " min";
  if (seconds < 172800) return (seconds / 3600).toFixed(1) + " h";
  return (seconds / 86400).toFixed(1) + " d";
}

function bytes(n) {
  if (n === null || n === undefined) return "-";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

async function refresh() {
  const error = document.getElementById("error");
  try {
    const [graphs, stats] = await Promise.all([get("/backup/graphs"), get("/backup/stats")]);
    let recovery = null;
    try { recovery = await get("/recovery/status"); } catch (ignored) {}
    error.textContent = "";
    const instance = document.getElementById("instance");
    if (recovery) {
      const lease = recovery.lease && recovery.lease.configured
        ? ", lease held by " + (recovery.lease.holder || "nobody") + " (epoch " + recovery.lease.epoch + ")" : "";
      instance.textContent = "This instance: " + recovery.acting_as + ", epoch " + recovery.epoch + lease +
        "; RPO " + age(recovery.rpo_seconds) + ", RTO (last drill) " + age(recovery.rto_seconds) +
        "; status " + recovery.status;
      instance.dataset.role = recovery.acting_as;
    } else {
      instance.textContent = "This instance: recovery status unavailable";
    }
    const body = document.getElementById("graphs");
    body.replaceChildren();
    const now = Date.now() / 1000;
    for (const graph of graphs) {
      const row = document.createElement("tr");
      row.dataset.graph = graph.graph_id;
      const stat = (stats.graphs || {})[graph.graph_id] || {};
      const dr = recovery && recovery.graphs ? recovery.graphs[graph.graph_id] || {} : {};
      const newest = graph.newest;
      const seconds = newest ? now - Date.parse(newest.timestamp) / 1000 : null;
      cell(row, graph.graph_id, "graph");
      cell(row, newest ? newest.snapshot_id.slice(0, 8) : "none", "newest");
      const stale = graph.schedule && seconds !== null && graph.schedule.interval_seconds
        && seconds > 2 * graph.schedule.interval_seconds;
      cell(row, age(seconds), "age " + (newest === null ? "bad" : stale ? "warn" : "ok"));
      cell(row, String(graph.snapshot_count), "snapshots num");
      const every = graph.schedule && (graph.schedule.cron || (graph.schedule.interval_seconds
        ? "every " + age(graph.schedule.interval_seconds) : "on"));
      cell(row, graph.schedule ? (graph.schedule.enabled ? every : "off") : "none", "schedule");
      const verify = graph.last_verify;
      cell(row, verify ? (verify.ok ? "ok" : "FAILED") + " " + age(now - Date.parse(verify.verified_at) / 1000) + " ago"
        : "never", "verify " + (verify ? (verify.ok ? "ok" : "bad") : "warn"));
      cell(row, bytes(stat.stored_bytes), "stored num");
      cell(row, stat.dedup_ratio ? stat.dedup_ratio.toFixed(2) + "x" : "-", "dedup num");
      cell(row, age(dr.rpo_seconds), "rpo num");
      const standbys = Object.entries(dr.standbys || {}).map(([name, s]) => name + " (" + age(s.lag_seconds) + ")");
      cell(row, standbys.join(", ") || "-", "standbys");
      const health = dr.last_health_check;
      cell(row, health ? health.status : "-", "health " + (health ? (health.status === "healthy" ? "ok" : "bad") : ""));
      body.appendChild(row);
    }
    document.getElementById("refreshed").textContent = "Refreshed " + new Date().toLocaleTimeString() +
      "; every 10 s.";
  } catch (failure) {
    error.textContent = failure.status === 401 || failure.status === 403
      ? "Not signed in: enter the API key (" + failure.message + ")" : String(failure.message || failure);
  }
}

refresh();
setInterval(refresh, 10000);
</script>
</body>
</html>
"""


def ui_router() -> "APIRouter":
    """``GET /backup/ui``: the page (no data in it, so no auth on it; its requests carry the
    key or token)."""
    from fastapi import APIRouter
    from fastapi.responses import HTMLResponse

    router = APIRouter(tags=["ui"])

    @router.get("/backup/ui", summary="The status page: every graph, its backups, replication and RPO",
                response_class=HTMLResponse)
    async def page() -> Any:
        return HTMLResponse(PAGE, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                                           "X-Content-Type-Options": "nosniff"})

    return router


__all__ = ["PAGE", "ui_router"]
