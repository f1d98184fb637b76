"""`node get` (spec: cli.md §3.9; api.md §5)."""

from __future__ import annotations

import argparse
from typing import Any

from ring_actors.cli.client import ApiError, Session
from ring_actors.cli.common import add_command, add_group, add_output_arg, default_subcommand
from ring_actors.cli.output import CliError, print_structured

__all__ = ["register", "render_node"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group, children = add_group(
        sub,
        "node",
        "show information about the host",
        None,
        description="Host information. Without a subcommand: `node get`.",
    )
    get = add_command(
        children,
        "get",
        "show hostname, OS, CPU, memory and load of the host",
        run_get,
        description="Hostname, OS, architecture, uptime, CPU cores, memory and load average (GET /node/get).",
    )
    add_output_arg(get)
    default_subcommand(group, get)


def render_node(data: dict[str, Any]) -> str:
    load = [*(data.get("load_average") or []), 0.0, 0.0, 0.0]
    return "\n".join(
        [
            "",
            "🖧 Node Info",
            "──────────────",
            f"Hostname         : {data.get('hostname', '')}",
            f"OS               : {data.get('os', '')}",
            f"Architecture     : {data.get('arch', '')}",
            f"Uptime           : {data.get('uptime', '')}",
            f"CPU Cores        : {data.get('cpu_count', '')}",
            f"Memory Total     : {float(data.get('memory_total') or 0):.2f} GiB",
            f"Memory Available : {float(data.get('memory_available') or 0):.2f} GiB",
            f"Load Average     : {float(load[0]):.2f}, {float(load[1]):.2f}, {float(load[2]):.2f}",
        ]
    )


async def run_get(args: argparse.Namespace, session: Session) -> int:
    async with session.api() as api:
        try:
            response = await api.request("GET", "/node/get")
        except ApiError as exc:
            if exc.status in (401, 403):
                raise CliError("not authorized to read node information", exc.exit_code) from exc
            raise CliError(f"cannot read node information: request failed ({exc.status})", exc.exit_code) from exc
    if args.output != "table":
        print_structured(response.json(), args.output, raw=response.text)
        return 0
    session.out.print(render_node(response.json()))
    return 0
