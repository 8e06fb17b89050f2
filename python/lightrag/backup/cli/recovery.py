"""The disaster recovery commands: ``recovery checkpoint|list|show|delete|validate|failover|drill|
switchover|lease|status|health`` (the CLI may import ``lightrag.recovery``; backup's own modules never do).

They work on the graphs the catalog knows (registered by ``schedule set``, a server, or
``--graph ID=DIR`` here). A server's live LightRAG instances fail over through its REST API
(``POST /recovery/checkpoints/{id}/failover``), which reloads them; this command restores
folders.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._common import WITH_MANAGER, EXIT_ERROR, ProgressBar, Wanted, add_command, api_key_of, api_key_options, emit, manager, storage

_POINT_HELP = "a recovery point id, a unique prefix of one, or latest"


def register(commands: Any, wanted: Wanted) -> None:
    sub = commands.add_parser("recovery", help="recovery points, validation, failover, drills")
    if not wanted("recovery"):
        return
    actions = sub.add_subparsers(dest="recovery_command", metavar="ACTION", required=True)

    def action(name: str, help_text: str, run: Any) -> argparse.ArgumentParser:
        return add_command(actions, name, help_text, run, defined=True, path=f"recovery {name}")

    checkpoint = action("checkpoint", "take a recovery point: one snapshot per graph, taken together", checkpoint_cmd)
    checkpoint.add_argument("--graph-id", "-g", action="append", dest="graphs", metavar="GRAPH_ID",
                            help="only this graph (repeatable; default: every graph the catalog knows)")
    checkpoint.add_argument("--graph", action="append", default=[], metavar="GRAPH_ID=DIR",
                            help="register a graph folder first (repeatable)")
    checkpoint.add_argument("--description", "-m")
    checkpoint.add_argument("--created-by")
    action("list", "the recovery points, newest first", list_cmd)
    for name, help_text, run in (
        ("show", "one recovery point", show_cmd),
        ("delete", "delete a recovery point (its snapshots are no longer kept for it)", delete_cmd),
    ):
        action(name, help_text, run).add_argument("point", help=_POINT_HELP)
    validate = action("validate", "restore a point's snapshots to scratch and check them as LightRAG reads them",
                      validate_cmd)
    validate.add_argument("point", nargs="?", default="latest", help=_POINT_HELP + " (default: latest)")
    failover = action("failover", "on a standby: restore a point into the graphs' folders and become the primary",
                      failover_cmd)
    failover.add_argument("point", help=_POINT_HELP)
    failover.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    failover.add_argument("--graphs-dir", help="where a graph not registered here goes (a folder per graph)")
    drill = action("drill", "restore a point to scratch, validate, query, measure the RTO; nothing live touched",
                   drill_cmd)
    drill.add_argument("point", nargs="?", default="latest", help=_POINT_HELP + " (default: latest)")
    switchover = action("switchover", "on the running primary: hand the primary role to a standby, nothing lost",
                        switchover_cmd)
    switchover.add_argument("candidate", help="the standby: the name (or id) of one of the primary's instance targets")
    switchover.add_argument("--server", default=None, metavar="URL",
                            help="the primary's server (default: $LIGHTRAG_BACKUP_SERVER_URL, else "
                                 "http://127.0.0.1:9621, lightrag-server's port)")
    api_key_options(switchover, "the primary's key")
    switchover.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for it (default 900)")
    action("lease", "the failover lease ($LIGHTRAG_RECOVERY_LEASE_URL): holder, epoch, expiry", lease_cmd)
    action("status", "role, epoch, RPO and RTO, per graph", status_cmd)
    health = action("health", "validate the graphs as they are now (files, stores, freshness)", health_cmd)
    health.add_argument("--graph-id", "-g", action="append", dest="graphs", metavar="GRAPH_ID")


def _recovery(args: argparse.Namespace, **options: Any) -> Any:
    from lightrag.recovery import DisasterRecoveryManager

    return DisasterRecoveryManager(manager(args, storage(args, then=WITH_MANAGER)), **options)


def _point_line(point: Any) -> str:
    mark = "validated" if point.validated else "-"
    return (f"{point.checkpoint_id[:8]}  {point.timestamp.isoformat()[:19]}  {mark:<9}  "
            f"{', '.join(point.graphs)}" + (f"  {point.description}" if point.description else ""))


def checkpoint_cmd(args: argparse.Namespace, bar: ProgressBar) -> int:
    from ..errors import InvalidInputError

    recovery = _recovery(args)
    for pair in args.graph:
        graph_id, sep, folder = pair.partition("=")
        if not sep or not graph_id or not folder:
            raise InvalidInputError(f"--graph {pair!r}: use GRAPH_ID=DIR")
        recovery.manager.register_graph(graph_id, folder)
    graphs = args.graphs or ([p.partition("=")[0] for p in args.graph] if args.graph else None)
    point = recovery.create_recovery_point(graphs, args.description, args.created_by)
    pause = point.metadata.get("together_pause_ms")
    emit(args, point.to_dict(), f"recovery point {point.checkpoint_id} of {', '.join(point.graphs)}"
         + (f" (live pause {pause:.1f} ms)" if pause else ""))
    return 0


def list_cmd(args: argparse.Namespace, bar: ProgressBar) -> int:
    points = _recovery(args).list_recovery_points()
    lines = [f"{'id':<8}  {'taken':<19}  {'validated':<9}  graphs"] + [_point_line(p) for p in points]
    emit(args, [p.to_dict() for p in points], "\n".join(lines) if points else "no recovery points")
    return 0


def show_cmd(args: argparse.Namespace, bar: ProgressBar) -> int:
    point = _recovery(args).get_recovery_point(args.point)
    lines = [_point_line(point)] + [f"  {g:<24} snapshot {s}" for g, s in sorted(point.snapshots.items())]
    emit(args, point.to_dict(), "\n".join(lines))
    return 0


def delete_cmd(args: argparse.Namespace, bar: ProgressBar) -> int:
    recovery = _recovery(args)
    point = recovery.get_recovery_point(args.point)
    recovery.delete_recovery_point(point.checkpoint_id)
    emit(args, {"checkpoint_id": point.checkpoint_id, "deleted": True},
         f"recovery point {point.checkpoint_id} deleted; its snapshots are no longer kept for it")
    return 0


def _graph_lines(graphs: dict[str, Any]) -> list[str]:
    lines = []
    for graph_id, result in sorted(graphs.items()):
        lines.append(f"  {graph_id:<24} {result['status']}")
        for problem in result.get("problems", [])[:10]:
            lines.append(f"    {problem['severity']}: {problem['message']}")
        more = len(result.get("problems", [])) - 10 + int(result.get("omitted_problems") or 0)
        if more > 0:
            lines.append(f"    ... and {more} more")
    return lines


def validate_cmd(args: argparse.Namespace, bar: ProgressBar) -> int:
    result = _recovery(args).validate_recovery_point(args.point)
    head = f"recovery point {result['checkpoint_id']}: {'validated' if result['validated'] else 'NOT VALID'}"
    emit(args, result, "\n".join([head, *_graph_lines(result["graphs"])]))
    return 0 if result["validated"] else EXIT_ERROR


def failover_cmd(args: argparse.Namespace, bar: ProgressBar) -> int:
    recovery = _recovery(args, graphs_dir=args.graphs_dir)
    if args.dry_run:
        plan = recovery.plan_failover(args.point)
        lines = [f"failover to {plan['checkpoint_id']}: this instance is {plan['role']} (epoch {plan['epoch']}), "
                 f"would become primary with epoch {plan['new_epoch']}" if plan["ready"] else
                 f"failover to {plan['checkpoint_id']} cannot run now (role {plan['role']})"]
        for graph in plan["graphs"]:
            lines.append(f"  {graph['graph_id']:<24} snapshot {graph['snapshot_id'][:8]} -> "
                         f"{graph.get('target', '?')}: {graph.get('error') or graph.get('replaces')}")
        emit(args, plan, "\n".join(lines))
        return 0 if plan["ready"] else EXIT_ERROR
    from lightrag.backup.twins import run_sync as _run_sync

    report = _run_sync(recovery.afailover(args.point))
    lines = [f"failover to {report['checkpoint_id']}: {'done' if report['ok'] else 'FAILED'}; RTO "
             f"{report['rto_seconds']} s, data loss window {report['rpo_seconds']} s"]
    if report.get("epoch"):
        lines.append(f"  this instance is the primary now, epoch {report['epoch']['after']}")
    lines += _graph_lines((report.get("validation") or {}).get("graphs") or {})
    lines += [f"  report: {path}" for path in report.get("files", [])]
    emit(args, report, "\n".join(lines))
    return 0 if report["ok"] else EXIT_ERROR


def switchover_cmd(args: argparse.Namespace, bar: ProgressBar) -> int:
    import json
    import os
    import urllib.error
    import urllib.parse
    import urllib.request

    from ..errors import InvalidInputError

    server = (args.server or os.environ.get("LIGHTRAG_BACKUP_SERVER_URL") or "http://127.0.0.1:9621").rstrip("/")
    if urllib.parse.urlparse(server).scheme not in ("http", "https"):
        raise InvalidInputError(f"--server {server!r}: give the primary's http(s) URL")
    key = api_key_of(args)
    request = urllib.request.Request(f"{server}/recovery/switchover?wait=true", method="POST",
                                     data=json.dumps({"candidate": args.candidate}).encode(),
                                     headers={"Content-Type": "application/json", **({"X-API-Key": key} if key else {})})
    print(f"switching over from {server} to {args.candidate} ...", file=__import__("sys").stderr, flush=True)
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as answer:
            job = json.loads(answer.read())
    except urllib.error.HTTPError as failure:
        try:
            error = json.loads(failure.read())["error"]
            message = f"{error['kind']}: {error['message']}"
        except (ValueError, KeyError, TypeError):
            message = str(failure.reason)
        raise InvalidInputError(f"the server refused the switchover ({failure.code}): {message}") from None
    except (urllib.error.URLError, OSError) as failure:
        raise InvalidInputError(f"cannot reach {server}: {getattr(failure, 'reason', failure)}") from None
    report = job.get("result") or {}
    if job.get("state") != "succeeded" or not report.get("ok"):
        emit(args, job, f"switchover FAILED: {job.get('error') or report.get('error') or job.get('state')}")
        return EXIT_ERROR
    steps = ", ".join(f"{s['step']} {s['took_ms']:.0f} ms" for s in report["steps"])
    emit(args, report, f"switchover to {report['candidate']} done in {report['took_seconds']} s (writes paused "
                       f"{report['took_seconds']} s, nothing lost); epoch {report['epoch']['after']}\n  {steps}")
    return 0


def lease_cmd(args: argparse.Namespace, bar: ProgressBar) -> int:
    import json

    from lightrag.backup import _native
    from lightrag.recovery.lease import LeaseSettings

    from ..errors import InvalidInputError

    settings = LeaseSettings.from_environment()
    if settings is None:
        raise InvalidInputError("no failover lease is configured: set LIGHTRAG_RECOVERY_LEASE_URL")
    lease = _native.Lease(settings.url, settings.name, settings.timeout)
    record = json.loads(lease.current_op().run())
    if record is None:
        emit(args, {"location": lease.location, "record": None}, f"{lease.location}: never taken")
        return 0
    emit(args, {"location": lease.location, "record": record},
         f"{lease.location}: {record['state']} by {record['holder']} ({record.get('holder_url') or 'no address'}), "
         f"epoch {record['epoch']}, written {record['written_at']}, until {record['expires_at']} by its clock"
         + (f", handed over to {record['handover_to']}" if record.get("handover_to") else ""))
    return 0


def drill_cmd(args: argparse.Namespace, bar: ProgressBar) -> int:
    report = _recovery(args).run_drill(args.point)
    lines = [f"drill of {report['checkpoint_id']}: {'healthy' if report['ok'] else 'FAILED'}; RTO "
             f"{report['rto_seconds']} s for {len(report['graphs'])} graph(s)", *_graph_lines(report["graphs"])]
    lines += [f"  report: {path}" for path in report.get("files", [])]
    emit(args, report, "\n".join(lines))
    return 0 if report["ok"] else EXIT_ERROR


def status_cmd(args: argparse.Namespace, bar: ProgressBar) -> int:
    status = _recovery(args).get_recovery_status()

    def seconds(value: Any) -> str:
        return "-" if value is None else f"{value:.1f} s"

    lines = [f"role {status['acting_as']} (epoch {status['epoch']}), status {status['status']}, "
             f"{status['recovery_points']} recovery point(s); RPO {seconds(status['rpo_seconds'])} "
             f"(goal {status['goals']['rpo_seconds']:.0f} s), RTO {seconds(status['rto_seconds'])} "
             f"(goal {status['goals']['rto_seconds']:.0f} s, from the last drill)"]
    for graph_id, graph in status["graphs"].items():
        newest = graph["newest_snapshot"]
        health = graph["last_health_check"]
        lines.append(f"  {graph_id:<24} newest {newest['time'][:19] if newest else '-':<19}  RPO "
                     f"{seconds(graph['rpo_seconds']):>9}  health {health['status'] if health else '-'}")
    emit(args, status, "\n".join(lines))
    return 0


def health_cmd(args: argparse.Namespace, bar: ProgressBar) -> int:
    recovery = _recovery(args)
    graphs = args.graphs or recovery.manager.graph_ids
    results = {g: recovery.validator.validate_graph(g).to_dict() for g in graphs}
    healthy = all(r["status"] == "healthy" for r in results.values())
    emit(args, results, "\n".join(_graph_lines(results)) if results else "no graphs registered")
    return 0 if healthy and results else EXIT_ERROR
