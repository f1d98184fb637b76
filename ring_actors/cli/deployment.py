"""`deployment list|inspect|delete|logs|events|metrics|health-checks` (spec: cli.md §2, §3.9).

Beyond Ring: every subcommand that takes an id also takes `namespace/name`;
`logs -f` and `events -f` use the server's SSE streams instead of polling every
2 s; `inspect` shows the status and the most recent events; `-o json|yaml` is
available on every read command.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

import trio

from ring_actors.cli.client import (
    Api,
    ApiError,
    Session,
    describe_list_status,
    describe_status,
    parse_stream_message,
    sse_events,
)
from ring_actors.cli.common import add_command, add_group, add_output_arg, default_subcommand
from ring_actors.cli.output import (
    CliError,
    Console,
    ExitCode,
    format_bytes,
    format_time,
    print_structured,
    render_table,
    replicas_cell,
    status_colour,
)

__all__ = ["DeploymentRef", "register", "resolve_deployment_ids"]

KIND = "deployment"
FOLLOW_RETRY_SECONDS = 2.0
RECENT_EVENTS = 5
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

LIST_HEADERS = (
    "ID",
    "Created at (UTC)",
    "Updated at (UTC)",
    "Namespace",
    "Name",
    "Image",
    "Runtime",
    "Kind",
    "Replicas",
    "Status",
)
REF_HELP = "deployment id, or namespace/name"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group, children = add_group(
        sub,
        "deployment",
        "list, inspect, follow and delete deployments",
        None,
        description="Work with deployments. Without a subcommand: `deployment list`.",
        aliases=("deployments",),
    )

    listing = add_command(
        children,
        "list",
        "list deployments",
        run_list,
        description="List deployments (GET /deployments). Filters combine with AND; repeat a flag for OR.",
        epilog=(
            "The Replicas column is <live instances>/<target>; `*` marks an autoscaled target.\n\n"
            "examples:\n"
            "  ring-actors deployment list -n production -s running\n"
            "  ring-actors deployment list -l app=web -o json | jq -r '.[].id'"
        ),
        aliases=("ls",),
    )
    listing.add_argument("-n", "--namespace", action="append", default=[], help="only this namespace (repeatable)")
    listing.add_argument("-s", "--status", action="append", default=[], help="only this status (repeatable)")
    listing.add_argument(
        "--type",
        "--kind",
        dest="kind",
        action="append",
        choices=("worker", "job"),
        default=[],
        help="only this kind: worker or job (repeatable)",
    )
    listing.add_argument(
        "-l", "--label", action="append", default=[], metavar="KEY[=VALUE]", help="label selector (repeatable, AND)"
    )
    add_output_arg(listing)
    default_subcommand(group, listing)

    inspect = add_command(
        children,
        "inspect",
        "show one deployment in detail",
        run_inspect,
        description="Show a deployment: spec, status, instances, volumes and its most recent events.",
    )
    inspect.add_argument("id", help=REF_HELP)
    add_output_arg(inspect)

    delete = add_command(
        children,
        "delete",
        "delete one or more deployments",
        run_delete,
        description=(
            "Mark deployments as deleted (DELETE /deployments/{id}); the server then removes their\n"
            "instances. Every id is attempted; the exit code is that of the first failure."
        ),
        aliases=("rm",),
    )
    delete.add_argument("ids", nargs="+", metavar="ID", help=REF_HELP)

    logs = add_command(
        children,
        "logs",
        "print (or follow) the logs of a deployment's instances",
        run_logs,
        description="Print the logs of a deployment's instances as `[<timestamp>] <instance> <message>`.",
        epilog="examples:\n  ring-actors deployment logs web-id --tail 20\n  ring-actors deployment logs prod/web -f",
    )
    logs.add_argument("id", help=REF_HELP)
    logs.add_argument("-f", "--follow", action="store_true", help="stream new lines as they are written (SSE)")
    logs.add_argument("--tail", metavar="N", help="last N lines per instance (server default 100; `all` for all)")
    logs.add_argument("--since", metavar="DURATION|TIME", help="only lines newer than 30s, 10m, 2h or an RFC 3339 time")
    logs.add_argument("-c", "--container", metavar="NAME", help="only instances whose id or name matches")

    events = add_command(
        children,
        "events",
        "show (or follow) the events of a deployment",
        run_events,
        description="Show a deployment's events, oldest first (GET /deployments/{id}/events).",
    )
    events.add_argument("id", help=REF_HELP)
    events.add_argument("-l", "--level", choices=("info", "warning", "error"), help="only events of this level")
    events.add_argument("--limit", type=int, default=50, metavar="N", help="at most N events (default 50)")
    events.add_argument("-f", "--follow", action="store_true", help="keep streaming new events (SSE)")
    add_output_arg(events)

    metrics = add_command(
        children,
        "metrics",
        "show live resource usage of a deployment",
        run_metrics,
        description="Live CPU, memory, network, disk and PIDs per instance (GET /deployments/{id}/metrics).",
    )
    metrics.add_argument("id", help=REF_HELP)
    add_output_arg(metrics)

    checks = add_command(
        children,
        "health-checks",
        "show health-check results of a deployment",
        run_health_checks,
        description="Health-check history, newest first (GET /deployments/{id}/health-checks).",
    )
    checks.add_argument("id", help=REF_HELP)
    checks.add_argument("--latest", action="store_true", help="only the latest result per check type")
    checks.add_argument("--limit", type=int, metavar="N", help="at most N results (server default 100)")
    add_output_arg(checks)


# --------------------------------------------------------------------------- references


class DeploymentRef:
    """What the user typed: an id, or `namespace/name`."""

    def __init__(self, text: str) -> None:
        self.text = text
        namespace, sep, name = text.partition("/")
        self.is_name = bool(sep) and not _UUID.match(text)
        self.namespace, self.name = (namespace, name) if self.is_name else ("", "")


async def resolve_deployment_ids(api: Api, text: str, *, all_active: bool = False) -> list[str]:
    """Ids for `text`: itself, or the deployments named `namespace/name`.

    For a name, the newest non-deleted deployment is chosen (during a rolling
    update that is the new one); `all_active=True` returns every non-deleted one.

    Raises:
        CliError: exit 4 when no deployment has that name.
    """
    ref = DeploymentRef(text)
    if not ref.is_name:
        return [text]
    try:
        items = await api.get("/deployments", params={"namespace": ref.namespace})
    except ApiError as exc:
        raise CliError(describe_status(exc.status, KIND, text), exc.exit_code) from exc
    matches = [d for d in items or [] if d.get("name") == ref.name]
    active = [d for d in matches if d.get("status") != "deleted"]
    if not active:
        if matches and not all_active:
            active = matches
        else:
            raise CliError(describe_status(404, KIND, text), ExitCode.NOT_FOUND)
    active.sort(key=lambda d: format_time(d.get("created_at")), reverse=True)
    return [d["id"] for d in active] if all_active else [active[0]["id"]]


async def _one_id(api: Api, text: str) -> str:
    return (await resolve_deployment_ids(api, text))[0]


def _fail(exc: ApiError, ref: str) -> CliError:
    return CliError(describe_status(exc.status, KIND, ref), exc.exit_code)


# --------------------------------------------------------------------------- list


def list_params(args: argparse.Namespace) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    for key, values in (
        ("namespace", args.namespace),
        ("status", args.status),
        ("kind", args.kind),
        ("label", args.label),
    ):
        params.extend((key, v) for v in values or [])
    return params


def deployment_rows(items: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            d.get("id", ""),
            format_time(d.get("created_at")),
            format_time(d.get("updated_at")),
            d.get("namespace", ""),
            d.get("name", ""),
            d.get("image", ""),
            d.get("runtime", ""),
            d.get("kind", ""),
            replicas_cell(d),
            (d.get("status", ""), status_colour(d.get("status", ""))),
        ]
        for d in items
    ]


async def run_list(args: argparse.Namespace, session: Session) -> int:
    async with session.api() as api:
        try:
            response = await api.request("GET", "/deployments", params=list_params(args))
        except ApiError as exc:
            namespace = args.namespace[0] if args.namespace else None
            raise CliError(describe_list_status(exc.status, "deployments", namespace), exc.exit_code) from exc
    if args.output != "table":
        print_structured(response.json(), args.output, raw=response.text)
        return 0
    session.out.print(render_table(LIST_HEADERS, deployment_rows(response.json() or []), session.out))
    return 0


# --------------------------------------------------------------------------- inspect


def replicas_detail(d: dict[str, Any]) -> str:
    autoscale = d.get("autoscale")
    if not autoscale:
        return str(d.get("replicas", ""))
    target = d.get("desired_replicas", d.get("replicas"))
    return (
        f"{target} (declared {d.get('replicas')}, autoscale {autoscale.get('min')}-{autoscale.get('max')} "
        f"targeting {autoscale.get('target_cpu'):g}% CPU)"
    )


def render_inspect(d: dict[str, Any], events: list[dict[str, Any]], console: Console) -> str:
    status = d.get("status", "")
    fields = [
        ("ID", d.get("id", "")),
        ("Name", d.get("name", "")),
        ("Namespace", d.get("namespace", "")),
        ("Status", console.paint(status, status_colour(status))),
        ("Kind", d.get("kind", "")),
        ("Runtime", d.get("runtime", "")),
        ("Image", d.get("image", "")),
        ("Replicas", replicas_detail(d)),
        ("Restart count", str(d.get("restart_count", 0))),
        ("Created at", format_time(d.get("created_at"))),
        ("Updated at", format_time(d.get("updated_at"))),
    ]
    if d.get("image_digest"):
        fields.insert(7, ("Image digest", d["image_digest"]))
    if d.get("parent_id"):
        fields.append(("Parent", d["parent_id"]))
    lines = ["DEPLOYMENT DETAILS", "=================="]
    lines += [f"{label:<14}: {value}" for label, value in fields]
    lines.append("")
    if d.get("command"):
        lines += ["COMMAND", "-------", "  " + " ".join(d["command"]), ""]
    if d.get("labels"):
        lines += ["LABELS", "------"] + [f"  {k} = {v}" for k, v in d["labels"].items()] + [""]
    if d.get("instances"):
        lines += ["INSTANCES", "---------"]
        for instance in d["instances"]:
            address = instance.get("address")
            lines.append(f"  {instance.get('id', '')}" + (f" ({address})" if address else ""))
        lines.append("")
    if d.get("ports"):
        rows = [
            [
                p.get("host_ip", "0.0.0.0"),
                str(p.get("published", "")),
                str(p.get("target", "")),
                p.get("protocol", "tcp"),
            ]
            for p in d["ports"]
        ]
        lines += ["PORTS", "-----", render_table(("Host IP", "Published", "Target", "Protocol"), rows), ""]
    if d.get("volumes"):
        rows = [
            [
                v.get("type", ""),
                v.get("source") or "",
                v.get("destination", ""),
                v.get("key") or "",
                v.get("driver", ""),
                v.get("permission", ""),
            ]
            for v in d["volumes"]
        ]
        lines += [
            "VOLUMES",
            "-------",
            render_table(("Type", "Source", "Destination", "Key", "Driver", "Permission"), rows),
            "",
        ]
    if events:
        lines += ["RECENT EVENTS", "-------------", render_table(EVENT_HEADERS, event_rows(events), console), ""]
    return "\n".join(lines).rstrip("\n")


async def run_inspect(args: argparse.Namespace, session: Session) -> int:
    async with session.api() as api:
        deployment_id = await _one_id(api, args.id)
        try:
            response = await api.request("GET", f"/deployments/{deployment_id}")
        except ApiError as exc:
            raise _fail(exc, args.id) from exc
        if args.output != "table":
            print_structured(response.json(), args.output, raw=response.text)
            return 0
        try:
            events = await api.get(f"/deployments/{deployment_id}/events", params={"limit": RECENT_EVENTS})
        except ApiError:
            events = []  # events are a bonus here; the deployment itself was shown
    session.out.print(render_inspect(response.json(), list(reversed(events or [])), session.out))
    return 0


# --------------------------------------------------------------------------- delete


async def run_delete(args: argparse.Namespace, session: Session) -> int:
    first_failure = 0
    async with session.api() as api:
        for ref in args.ids:
            try:
                ids = await resolve_deployment_ids(api, ref, all_active=True)
            except CliError as exc:
                session.err.error(f"error: {exc.message}")
                first_failure = first_failure or exc.code
                continue
            for deployment_id in ids:
                try:
                    await api.delete(f"/deployments/{deployment_id}")
                except ApiError as exc:
                    session.err.error(f"error: {describe_status(exc.status, KIND, ref)}")
                    first_failure = first_failure or exc.exit_code
                    continue
                session.out.success(f"Deployment {deployment_id} deleted")
    return first_failure


# --------------------------------------------------------------------------- logs


def format_log_line(entry: dict[str, Any]) -> str:
    """`[<timestamp>] <instance> <message>`; the timestamp part is omitted when null."""
    stamp = entry.get("timestamp")
    prefix = f"[{stamp}] " if stamp else ""
    return f"{prefix}{entry.get('instance', '')} {entry.get('message', '')}"


def log_params(args: argparse.Namespace) -> dict[str, str]:
    params = {}
    if args.tail is not None:
        params["tail"] = str(args.tail)
    if args.since:
        params["since"] = args.since
    if args.container:
        params["container"] = args.container
    return params


async def run_logs(args: argparse.Namespace, session: Session) -> int:
    async with session.api() as api:
        deployment_id = await _one_id(api, args.id)
        params = log_params(args)
        if args.follow:
            await _follow_logs(api, deployment_id, args.id, params, session)
            return 0
        try:
            entries = await api.get(f"/deployments/{deployment_id}/logs", params=params)
        except ApiError as exc:
            raise _fail(exc, args.id) from exc
    if not entries:
        session.out.print("No logs available for this deployment")
        return 0
    for entry in entries:
        session.out.print(format_log_line(entry))
    return 0


async def _follow_logs(api: Api, deployment_id: str, ref: str, params: dict[str, str], session: Session) -> None:
    """Stream logs over SSE until interrupted or the deployment is gone.

    If the stream drops (server restart), reconnect every 2 s asking for new lines
    only. Only the first connection's failure is fatal, as with Ring's follow modes.
    """
    first = True
    while True:
        query = {**params, "follow": "true"}
        if not first:
            query["tail"] = "0"
        try:
            async with api.stream(f"/deployments/{deployment_id}/logs", params=query) as response:
                first = False
                async for sse in sse_events(response):
                    entry = sse.json()
                    if isinstance(entry, dict) and "message" in entry:
                        session.out.print(format_log_line(entry))
        except ApiError as exc:
            if first:
                raise _fail(exc, ref) from exc
            if exc.status == 404:
                session.err.print(f"Deployment {ref} is gone; stopped following its logs")
                return
        except CliError:
            if first:
                raise
        await trio.sleep(FOLLOW_RETRY_SECONDS)


# --------------------------------------------------------------------------- events

EVENT_HEADERS = ("Time", "Level", "Component", "Reason", "Message")
_LEVEL_COLOURS = {"error": "red", "warning": "yellow"}


def event_row(e: dict[str, Any]) -> list[Any]:
    level = e.get("level", "")
    return [
        format_time(e.get("timestamp")),
        (level, _LEVEL_COLOURS.get(level)),
        e.get("component", ""),
        e.get("reason") or "-",
        e.get("message", ""),
    ]


def event_rows(events: list[dict[str, Any]]) -> list[list[Any]]:
    return [event_row(e) for e in events]


async def run_events(args: argparse.Namespace, session: Session) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.level:
        params["level"] = args.level
    async with session.api() as api:
        deployment_id = await _one_id(api, args.id)
        if args.follow:
            await _follow_events(api, deployment_id, args, params, session)
            return 0
        try:
            response = await api.request("GET", f"/deployments/{deployment_id}/events", params=params)
        except ApiError as exc:
            raise _fail(exc, args.id) from exc
    if args.output != "table":
        print_structured(response.json(), args.output, raw=response.text)
        return 0
    events = list(reversed(response.json() or []))
    if not events:
        session.out.print(f"No events found for deployment {args.id}")
        return 0
    session.out.print(render_table(EVENT_HEADERS, event_rows(events), session.out))
    return 0


async def _follow_events(
    api: Api, deployment_id: str, args: argparse.Namespace, params: dict[str, Any], session: Session
) -> None:
    """Print the latest events, then each new one as it happens (SSE), until interrupted.

    The server replays the latest `limit` events when the stream opens, then pushes
    new events and status changes; events are de-duplicated by id across reconnects.
    Following ends when the deployment is purged.
    """
    seen: set[str] = set()
    first = True
    if args.output == "table":
        session.out.print(f"Following events for deployment {args.id} (Ctrl+C to stop)...")
    while True:
        try:
            async with api.stream(f"/deployments/{deployment_id}/events", params={**params, "follow": "true"}) as resp:
                first = False
                async for sse in sse_events(resp):
                    message = parse_stream_message(sse)
                    if message is None:
                        continue
                    if message.kind == "lagged":
                        session.err.warning(f"Warning: {message.data.get('missed', 'some')} event(s) were dropped")
                        continue
                    if message.kind == "status":
                        if message.new_status == "purged":
                            session.err.print(f"Deployment {args.id} was deleted")
                            return
                        continue
                    event = message.data
                    if event.get("id") in seen:
                        continue
                    seen.add(str(event.get("id", "")))
                    _print_events([event], args.output, session)
        except ApiError as exc:
            if first:
                raise _fail(exc, args.id) from exc
            if exc.status == 404:
                return
        except CliError:
            if first:
                raise
        await trio.sleep(FOLLOW_RETRY_SECONDS)


def _print_events(events: list[dict[str, Any]], output: str, session: Session) -> None:
    if output == "json":
        for e in events:
            session.out.print(json.dumps(e, ensure_ascii=False))
        return
    for e in events:
        cells = event_row(e)
        level_text, level_colour = cells[1]
        session.out.print(
            f"{cells[0]:<19}  {session.out.paint(f'{level_text:<7}', level_colour)}  {cells[2]:<10}  "
            f"{cells[3]:<22}  {cells[4]}".rstrip()
        )


# --------------------------------------------------------------------------- metrics


def render_metrics(m: dict[str, Any]) -> str:
    def mem(block: dict[str, Any]) -> str:
        return (
            f"{format_bytes(block.get('usage_bytes'))} / {format_bytes(block.get('limit_bytes'))} "
            f"({float(block.get('usage_percent') or 0):.1f}%)"
        )

    def net(block: dict[str, Any]) -> str:
        return f"{format_bytes(block.get('rx_bytes'))} rx / {format_bytes(block.get('tx_bytes'))} tx"

    def disk(block: dict[str, Any]) -> str:
        return f"{format_bytes(block.get('read_bytes'))} read / {format_bytes(block.get('write_bytes'))} write"

    lines = [
        f"DEPLOYMENT METRICS: {m.get('deployment_name', '')}",
        "===================",
        f"Instances     : {m.get('instance_count', 0)}",
        f"Total CPU     : {float(m.get('total_cpu_usage_percent') or 0):.2f}%",
        f"Total Memory  : {mem(m.get('total_memory') or {})}",
        f"Total Net I/O : {net(m.get('total_network') or {})}",
        f"Total Disk I/O: {disk(m.get('total_disk_io') or {})}",
        f"Total PIDs    : {m.get('total_pids', 0)}",
        "",
    ]
    for c in m.get("instances") or []:
        pids = c.get("pids") or {}
        lines += [
            f"  Instance: {c.get('instance_name', '')} ({c.get('instance_id', '')})",
            f"    CPU       : {float(c.get('cpu_usage_percent') or 0):.2f}%",
            f"    Memory    : {mem(c.get('memory') or {})}",
            f"    Net I/O   : {net(c.get('network') or {})}",
            f"    Disk I/O  : {disk(c.get('disk_io') or {})}",
            f"    PIDs      : {pids.get('current', 0)} / {pids.get('limit', 0)}",
            f"    Restarts  : {c.get('restart_count', 0)}",
            "",
        ]
    return "\n".join(lines).rstrip("\n")


async def run_metrics(args: argparse.Namespace, session: Session) -> int:
    async with session.api() as api:
        deployment_id = await _one_id(api, args.id)
        try:
            response = await api.request("GET", f"/deployments/{deployment_id}/metrics")
        except ApiError as exc:
            raise _fail(exc, args.id) from exc
    if args.output != "table":
        print_structured(response.json(), args.output, raw=response.text)
        return 0
    session.out.print(render_metrics(response.json()))
    return 0


# --------------------------------------------------------------------------- health checks


async def run_health_checks(args: argparse.Namespace, session: Session) -> int:
    params: dict[str, Any] = {}
    if args.latest:
        params["latest"] = "true"
    if args.limit is not None:
        params["limit"] = args.limit
    async with session.api() as api:
        deployment_id = await _one_id(api, args.id)
        try:
            response = await api.request("GET", f"/deployments/{deployment_id}/health-checks", params=params)
        except ApiError as exc:
            raise _fail(exc, args.id) from exc
    if args.output != "table":
        print_structured(response.json(), args.output, raw=response.text)
        return 0
    rows = [
        [
            c.get("check_type", ""),
            (c.get("status", ""), status_colour(c.get("status", ""))),
            format_time(c.get("started_at")),
            format_time(c.get("finished_at")),
            c.get("message", ""),
        ]
        for c in response.json() or []
    ]
    if not rows:
        session.out.print(f"No health-check results for deployment {args.id}")
        return 0
    session.out.print(render_table(("Type", "Status", "Started", "Finished", "Message"), rows, session.out))
    return 0
