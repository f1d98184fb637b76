"""`apply`: create namespaces, configs and deployments from a manifest (spec: cli.md §3.3; manifest.md §1, §2, §15).

Order: env file -> manifest -> config payloads -> credentials -> namespaces (409 =
already there) -> configs (409 -> GET + PUT) -> each deployment (client checks,
interpolation, CLI defaults, `POST /deployments[?force=true]`). One failing entry
does not stop the others; the exit code is the first failure's.

Where ring-actors does better than Ring, on purpose:
- `replicas` omitted means 1 (Ring's CLI sends 0).
- `-f -` reads the manifest from stdin; entries are processed in file order.
- `--dry-run` needs no credentials nor server, and validates every deployment
  locally with the server's own rules (so a dry run that passes will not be
  rejected for the same reasons).
- Interpolation: `$NAME`, `${NAME}` and `$$` (see schemas/interpolation.py); the
  names in the `namespaces:` block are interpolated too.
- `--wait [--timeout S]` follows the server's event stream until every created
  deployment is `running` (a job may also finish `completed`), or reports the
  failure status and the latest error event's message.
- Violations are printed with their stable code: `  * <path>: <message> [<code>]`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import trio
import yaml

from ring_actors.cli.client import (
    Api,
    ApiError,
    Session,
    StreamMessage,
    parse_stream_message,
    render_failure,
    render_problem,
    sse_events,
)
from ring_actors.cli.common import add_command
from ring_actors.cli.output import CliError, Console, ExitCode, status_colour
from ring_actors.schemas.decode import BodyError, decode_manifest_entry
from ring_actors.schemas.interpolation import (
    ConfigDefinitionError,
    Lookup,
    build_config_payload,
    interpolate,
    interpolate_deployment,
    load_env_file,
    make_lookup,
)
from ring_actors.schemas.manifest import RUNTIMES, DeploymentSpec
from ring_actors.schemas.problem import validation_problem
from ring_actors.schemas.validation import normalize, validate_deployment

__all__ = [
    "CLI_DEFAULTS",
    "DeploymentItem",
    "ManifestError",
    "Plan",
    "build_plan",
    "normalize_labels",
    "parse_manifest",
    "prepare_deployment",
    "register",
    "wait_for_deployments",
]

DEFAULT_FILE = "ring.yaml"
DEFAULT_WAIT_TIMEOUT = 300.0
CLI_DEFAULTS: dict[str, Any] = {"runtime": "docker", "kind": "worker", "namespace": ""}
"""Defaults Ring's CLI fills before posting (manifest.md §1); `replicas` defaults to 1 in the schema."""

WAITING = frozenset({"pending", "creating"})


class ManifestError(Exception):
    """The manifest cannot be used at all (exit 1, nothing is sent)."""


class SkipDeployment(Exception):
    """A client-side check failed for one deployment (Ring: `Warning: Skipping ...`)."""


@dataclass
class DeploymentItem:
    key: str
    name: str
    body: dict[str, Any] | None = None
    spec: DeploymentSpec | None = None
    skip: str | None = None
    problem: dict[str, Any] | None = None  # client-side shape/validation problem

    @property
    def ok(self) -> bool:
        return self.body is not None


@dataclass
class Plan:
    namespaces: list[str] = field(default_factory=list)
    configs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    deployments: list[DeploymentItem] = field(default_factory=list)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        sub,
        "apply",
        "create or update what a manifest describes",
        run_apply,
        description=(
            "Apply a manifest: its namespaces, then its configs, then each deployment.\n"
            "`$VAR` / `${VAR}` in names, images, environment values, command arguments and\n"
            "registry settings are replaced from the environment, then from --env-file.\n"
            "Deployments are created even when an older one of the same name exists: the\n"
            "server rolls it over (or replaces it at once with --force)."
        ),
        epilog=(
            "examples:\n"
            "  ring-actors apply -f ring.yaml\n"
            "  ring-actors apply -f ring.yaml -e .env --dry-run --verbose\n"
            "  ring-actors apply -f ring.yaml --wait --timeout 120\n"
            "  envsubst < tpl.yaml | ring-actors apply -f -"
        ),
    )
    parser.add_argument(
        "-f", "--file", default=DEFAULT_FILE, metavar="FILE", help="manifest file, `-` for stdin (default ring.yaml)"
    )
    parser.add_argument("-e", "--env-file", metavar="FILE", help="KEY=VALUE file used for $VAR interpolation")
    parser.add_argument(
        "-d", "--dry-run", action="store_true", help="validate and show what would be sent; send nothing"
    )
    parser.add_argument("--verbose", action="store_true", help="print each deployment's JSON body")
    parser.add_argument("--force", action="store_true", help="replace existing deployments at once instead of rolling")
    parser.add_argument("--wait", action="store_true", help="wait until the created deployments are running")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_WAIT_TIMEOUT,
        metavar="SECONDS",
        help=f"with --wait: give up after this many seconds (default {DEFAULT_WAIT_TIMEOUT:g})",
    )


# --------------------------------------------------------------------------- manifest (pure)


def read_manifest(file: str) -> tuple[str, Path]:
    """The manifest text and the directory `files:` paths are relative to."""
    if file == "-":
        return sys.stdin.read(), Path.cwd()
    path = Path(file)
    try:
        return path.read_text(encoding="utf-8"), path.resolve().parent
    except OSError as exc:
        raise ManifestError(f"cannot read manifest '{file}': {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ManifestError(f"cannot read manifest '{file}': not UTF-8 text") from exc


def parse_manifest(text: str) -> dict[str, Any]:
    """YAML (or JSON) text -> the top-level mapping, with `deployments` required."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError(f"invalid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise ManifestError("the manifest must be a mapping with a 'deployments' key")
    if "deployments" not in doc:
        raise ManifestError("the manifest has no 'deployments' key")
    for section in ("namespaces", "configs", "deployments"):
        value = doc.get(section)
        if value is not None and not isinstance(value, dict):
            raise ManifestError(f"'{section}' must be a mapping of <key>: <entry>")
    return doc


def normalize_labels(raw: Any) -> dict[str, str]:
    """Ring's accepted label shapes: a mapping, a list of single-key mappings, [] or null.

    Entries whose key or value is not a string are dropped, as Ring does.
    """
    items: list[tuple[Any, Any]] = []
    if isinstance(raw, Mapping):
        items = list(raw.items())
    elif isinstance(raw, list):
        for entry in raw:
            if isinstance(entry, Mapping):
                items.extend(entry.items())
    return {k: v for k, v in items if isinstance(k, str) and isinstance(v, str)}


def prepare_deployment(key: str, raw: Any, lookup: Lookup) -> DeploymentItem:
    """One `deployments:` entry -> the JSON body to post, or why it is skipped.

    CLI defaults (runtime docker, kind worker, namespace "", replicas 1, volume
    driver local, permission rw / ro for config and secret) are applied, Ring's
    interpolation field list is substituted, and the result is decoded with the
    API's own schema so shape errors are caught before sending.
    """
    if not isinstance(raw, Mapping):
        return DeploymentItem(key, key, skip=f"deployment '{key}' must be a mapping")
    entry = dict(raw)
    for field_name, default in CLI_DEFAULTS.items():
        if entry.get(field_name) is None:
            entry[field_name] = default
    entry["labels"] = normalize_labels(entry.get("labels"))
    entry = interpolate_deployment(entry, lookup)
    name = entry.get("name")
    label = name if isinstance(name, str) and name.strip() else key
    try:
        _client_checks(entry)
    except SkipDeployment as exc:
        return DeploymentItem(key, label, skip=str(exc))
    try:
        spec = decode_manifest_entry(entry, DeploymentSpec)
    except BodyError as exc:
        return DeploymentItem(key, label, problem=msgspec.to_builtins(exc.problem))
    spec = normalize(spec, force_read_only=True)
    return DeploymentItem(key, spec.name, body=msgspec.to_builtins(spec), spec=spec)


def _client_checks(entry: Mapping[str, Any]) -> None:
    """Ring's three client-side checks (manifest.md §2), with its messages."""
    name, image, runtime = entry.get("name"), entry.get("image"), entry.get("runtime")
    if name is None or (isinstance(name, str) and not name.strip()):
        raise SkipDeployment("Deployment name cannot be empty")
    if image is None or (isinstance(image, str) and not image.strip()):
        raise SkipDeployment("Deployment image cannot be empty")
    if runtime not in RUNTIMES:
        raise SkipDeployment(f"Runtime '{runtime}' not supported. Supported runtimes: {', '.join(RUNTIMES)}.")


def build_plan(doc: Mapping[str, Any], base_dir: Path, lookup: Lookup) -> Plan:
    """Everything `apply` will send, computed before the first request.

    Raises:
        ManifestError: a namespaces/configs entry is unusable (exit 1, nothing sent).
    """
    plan = Plan()
    for key, entry in (doc.get("namespaces") or {}).items():
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if not isinstance(name, str) or not name:
            raise ManifestError(f"namespace '{key}': 'name' must be a non-empty string")
        plan.namespaces.append(interpolate(name, lookup))
    for key, entry in (doc.get("configs") or {}).items():
        if not isinstance(entry, Mapping):
            raise ManifestError(f"config '{key}' must be a mapping")
        try:
            plan.configs.append((str(key), build_config_payload(str(key), entry, base_dir, lookup)))
        except ConfigDefinitionError as exc:
            raise ManifestError(exc.message) from exc
    for key, entry in (doc.get("deployments") or {}).items():
        plan.deployments.append(prepare_deployment(str(key), entry, lookup))
    return plan


# --------------------------------------------------------------------------- run


@dataclass
class Created:
    id: str
    namespace: str
    name: str
    kind: str
    status: str | None = None
    last_error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"

    def settled(self) -> bool:
        return self.status is not None and self.status not in WAITING

    def succeeded(self) -> bool:
        return self.status == "running" or (self.kind == "job" and self.status == "completed")


class _Run:
    """Counters and output of one apply."""

    def __init__(self, session: Session, args: argparse.Namespace) -> None:
        self.session = session
        self.args = args
        self.out: Console = session.out
        self.err: Console = session.err
        self.successful = 0
        self.failed = 0
        self.first_failure = 0

    def fail(self, code: int) -> None:
        self.first_failure = self.first_failure or int(code)

    def sendable(self, item: DeploymentItem) -> bool:
        """Print `Processing deployment` and report an entry that failed client-side checks."""
        self.out.print(f"Processing deployment '{item.key}'")
        if item.skip:
            self.err.warning(f"Warning: Skipping '{item.key}': Validation error: {item.skip}")
            self.failed += 1
            self.fail(ExitCode.GENERAL)
            return False
        if item.problem:
            self.reject_locally(item, item.problem)
            return False
        return True

    def reject_locally(self, item: DeploymentItem, problem: Mapping[str, Any]) -> None:
        render_problem(self.err, f"Unable to apply deployment '{item.name}'", problem, int(problem.get("status", 422)))
        self.failed += 1
        self.fail(ExitCode.GENERAL)

    def show_body(self, item: DeploymentItem) -> None:
        self.out.print("Configuration:")
        self.out.print(json.dumps(item.body, indent=2, ensure_ascii=False))

    def summary(self) -> None:
        self.out.print("")
        self.out.print("Summary:")
        self.out.print(f"  Successful: {self.successful}")
        if self.failed:
            self.out.print(f"  Failed: {self.failed}", "red")


async def run_apply(args: argparse.Namespace, session: Session) -> int:
    file_values: dict[str, str] = {}
    if args.env_file:
        file_values, warnings = load_env_file(args.env_file)
        for warning in warnings:
            session.err.warning(warning)
    try:
        text, base_dir = read_manifest(args.file)
        plan = build_plan(parse_manifest(text), base_dir, make_lookup(file_values))
    except ManifestError as exc:
        raise CliError(str(exc)) from exc
    run = _Run(session, args)
    if args.dry_run:
        _dry_run(plan, run)
        return run.first_failure
    session.require_token()  # before anything is sent (exit 2 with a hint)
    async with session.api() as api:
        await _apply_namespaces(api, plan, run)
        await _apply_configs(api, plan, run)
        created = await _apply_deployments(api, plan, run)
        run.summary()
        if args.wait and created:
            run.fail(await wait_for_deployments(api, created, args.timeout, run.out, run.err))
    return run.first_failure


def _dry_run(plan: Plan, run: _Run) -> None:
    out = run.out
    for name in plan.namespaces:
        out.print(f"DRY RUN - Would create namespace '{name}'")
    for _, payload in plan.configs:
        out.print(f"DRY RUN - Would create config '{payload['name']}' in namespace '{payload['namespace']}'")
    base_url = run.session.base_url
    for item in plan.deployments:
        if not run.sendable(item):
            continue
        assert item.spec is not None
        violations = validate_deployment(item.spec)
        if violations:
            run.reject_locally(item, msgspec.to_builtins(validation_problem(violations)))
            continue
        out.print(f"DRY RUN - Deployment '{item.name}'")
        out.print(f"Would POST to: {base_url}/deployments" + ("?force=true" if run.args.force else ""))
        if run.args.force:
            out.print("Force mode enabled")
        if run.args.verbose:
            run.show_body(item)
        out.print("---")
        run.successful += 1
    run.summary()
    out.print("")
    out.print("DRY RUN COMPLETE - No actual changes were made")
    out.print("To deploy for real, remove the --dry-run flag")


async def _apply_namespaces(api: Api, plan: Plan, run: _Run) -> None:
    for name in plan.namespaces:
        try:
            await api.post("/namespaces", {"name": name})
        except ApiError as exc:
            if exc.status == 409:
                run.out.print(f"Namespace '{name}' already exists, skipping")
                continue
            render_failure(run.err, f"Unable to create namespace '{name}'", exc)
            run.fail(exc.exit_code)
            continue
        run.out.success(f"Namespace '{name}' created")


async def _apply_configs(api: Api, plan: Plan, run: _Run) -> None:
    for key, payload in plan.configs:
        name, namespace = payload["name"], payload["namespace"]
        try:
            await api.post("/configs", payload)
            run.out.success(f"Config '{name}' created in namespace '{namespace}'")
            continue
        except ApiError as exc:
            if exc.status != 409:
                render_failure(run.err, f"Unable to apply config '{key}'", exc)
                run.fail(exc.exit_code)
                continue
        try:
            found = await api.get("/configs", params={"namespace": namespace, "name": name})
            match = next((c for c in found or [] if c.get("name") == name and c.get("namespace") == namespace), None)
            if match is None:
                run.err.error(f"Unable to apply config '{key}': it exists but could not be found to update it")
                run.fail(ExitCode.CONFLICT)
                continue
            body = {k: v for k, v in payload.items() if k != "namespace"}
            await api.put(f"/configs/{match['id']}", body)
        except ApiError as exc:
            render_failure(run.err, f"Unable to update config '{key}'", exc)
            run.fail(exc.exit_code)
            continue
        run.out.success(f"Config '{name}' updated in namespace '{namespace}'")


async def _apply_deployments(api: Api, plan: Plan, run: _Run) -> list[Created]:
    created: list[Created] = []
    params = {"force": "true"} if run.args.force else None
    for item in plan.deployments:
        if not run.sendable(item):
            continue
        if run.args.verbose:
            run.show_body(item)
        try:
            body = await api.post("/deployments", item.body, params=params)
        except ApiError as exc:
            render_failure(run.err, f"Unable to apply deployment '{item.name}'", exc)
            run.failed += 1
            run.fail(exc.exit_code)
            continue
        run.successful += 1
        run.out.success(f"Deployment '{item.name}' created")
        if isinstance(body, dict) and body.get("id"):
            created.append(
                Created(body["id"], body.get("namespace", ""), body.get("name", item.name), body.get("kind", "worker"))
            )
    return created


# --------------------------------------------------------------------------- --wait


async def wait_for_deployments(api: Api, targets: list[Created], seconds: float, out: Console, err: Console) -> int:
    """Follow the event stream until every target is running (or failed); returns an exit code.

    The stream is opened first and the current statuses read after, so a change
    that happens in between is never missed. A status message updates a target
    directly; any other event of a target makes us re-read that deployment (the
    stream says *that* something happened, the deployment says *what* it is now).
    No polling: without events nothing is requested.
    """
    by_id = {t.id: t for t in targets}
    out.print("")
    out.print(f"Waiting for {len(targets)} deployment(s) to be running (timeout {seconds:g}s)...")
    with trio.move_on_after(seconds) as deadline:
        try:
            await _follow(api, "/events", by_id, out)
        except ApiError as exc:
            if exc.status not in (404, 405):
                raise CliError(
                    f"cannot follow deployment events: request failed ({exc.status})", exc.exit_code
                ) from exc
            # No global stream on this server: one stream per deployment.
            async with trio.open_nursery() as nursery:
                for target in targets:
                    nursery.start_soon(_follow_one, api, target, by_id, out, nursery.cancel_scope)
    failed = [t for t in targets if t.settled() and not t.succeeded()]
    pending = [t for t in targets if not t.settled()]
    for target in failed:
        if target.last_error is None:
            target.last_error = await _latest_error(api, target)
    if deadline.cancelled_caught and pending:
        for target in pending:
            err.error(f"  {target.label}: still {target.status or 'unknown'} after {seconds:g}s")
    for target in failed:
        reason = f": {target.last_error}" if target.last_error else ""
        err.error(f"  {target.label}: {target.status}{reason}")
    if failed or pending:
        what = "failed" if failed and not pending else ("timed out" if not failed else "failed or timed out")
        err.error(f"error: {len(failed) + len(pending)} of {len(targets)} deployment(s) {what}")
        return ExitCode.GENERAL
    done = "running" if all(t.status == "running" for t in targets) else "running or completed"
    out.success(f"All {len(targets)} deployment(s) {done}")
    return 0


async def _follow(api: Api, path: str, by_id: dict[str, Created], out: Console) -> None:
    async with api.stream(path, params={"follow": "true"}) as response:
        for target in by_id.values():
            await _refresh(api, target, out)
        if all(t.settled() for t in by_id.values()):
            return
        async for sse in sse_events(response):
            message = parse_stream_message(sse)
            if message is None:
                continue
            if message.kind == "lagged":  # messages were lost: re-read what we wait for
                for pending in [t for t in by_id.values() if not t.settled()]:
                    await _refresh(api, pending, out)
            else:
                current = by_id.get(message.deployment_id)
                if current is None or current.settled():
                    continue
                await _handle(api, current, message, out)
            if all(t.settled() for t in by_id.values()):
                return


async def _follow_one(
    api: Api, target: Created, by_id: dict[str, Created], out: Console, scope: trio.CancelScope
) -> None:
    await _follow(api, f"/deployments/{target.id}/events", {target.id: target}, out)
    if all(t.settled() for t in by_id.values()):
        scope.cancel()


async def _handle(api: Api, target: Created, message: StreamMessage, out: Console) -> None:
    if message.kind == "status" and message.new_status:
        _set_status(target, "deleted" if message.new_status == "purged" else message.new_status, out)
        return
    if message.data.get("level") == "error" and message.data.get("message"):
        target.last_error = str(message.data["message"])
    await _refresh(api, target, out)


async def _refresh(api: Api, target: Created, out: Console) -> None:
    try:
        deployment = await api.get(f"/deployments/{target.id}")
    except ApiError as exc:
        if exc.status == 404:
            _set_status(target, "deleted", out)
            return
        raise
    if isinstance(deployment, dict) and isinstance(deployment.get("status"), str):
        _set_status(target, deployment["status"], out)


def _set_status(target: Created, status: str, out: Console) -> None:
    if status == target.status:
        return
    target.status = status
    if status in WAITING or target.succeeded():
        out.print(f"  {target.label}: {out.paint(status, status_colour(status))}")


async def _latest_error(api: Api, target: Created) -> str | None:
    """The message of the deployment's most recent error event (or most recent event)."""
    for params in ({"level": "error", "limit": 1}, {"limit": 1}):
        try:
            events = await api.get(f"/deployments/{target.id}/events", params=params)
        except (ApiError, CliError):
            return None
        if events:
            return str(events[0].get("message") or "") or None
    return None
