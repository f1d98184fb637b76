"""The control API application: `create_app(services) -> QuartTrio`.

    request ─► CORS preflight ─► auth (route -> scope) ─► handler (10 s timeout) ─► CORS headers
                                        │                       │
                                        └──── ApiError / BodyError / HTTPException ─► problem+json

Handlers are thin: parse, authorize, call repositories or `supervisor.notify`,
encode. Streaming responses (logs, events) run after the handler returns and are
not subject to the handler timeout.
"""

from __future__ import annotations

from typing import Any

import trio
from quart.ctx import RequestContext
from quart.globals import request_ctx
from quart_trio import QuartTrio

from ring_actors.http import (
    auth,
    configs,
    deployments,
    events_stream,
    logs,
    namespaces,
    secrets,
    system,
    tokens,
    users,
    volumes,
)
from ring_actors.http.errors import install_error_handlers, problem_response
from ring_actors.http.middleware import install_middleware
from ring_actors.http.state import ApiState
from ring_actors.http.webhooks import blueprint as webhooks_blueprint
from ring_actors.services import Services

__all__ = ["RingApp", "create_app"]

BLUEPRINTS = (
    system.blueprint,
    auth.blueprint,
    deployments.blueprint,
    logs.blueprint,
    events_stream.blueprint,
    namespaces.blueprint,
    secrets.blueprint,
    configs.blueprint,
    volumes.blueprint,
    users.blueprint,
    tokens.blueprint,
    webhooks_blueprint,
)

NO_TIMEOUT_ENDPOINTS = frozenset({"logs.deployment_logs"})
"""api.md §4: the logs route has no handler timeout (it may wait on slow runtimes)."""


class RingApp(QuartTrio):
    """QuartTrio with the API state attached and a per-handler deadline."""

    ring: ApiState

    async def dispatch_request(self, request_context: RequestContext | None = None) -> Any:
        req = (request_context or request_ctx).request
        if req.routing_exception is not None or req.url_rule is None or req.url_rule.endpoint in NO_TIMEOUT_ENDPOINTS:
            return await super().dispatch_request(request_context)
        timeout = self.ring.handler_timeout
        with trio.move_on_after(timeout):
            return await super().dispatch_request(request_context)
        return problem_response(408, f"the request did not complete within {timeout:g} seconds")


def create_app(services: Services) -> RingApp:
    """Build the API for `services`; hypercorn serves it (server.py)."""
    app = RingApp("ring_actors")
    app.ring = ApiState.build(services)
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024
    app.config["BODY_TIMEOUT"] = 30
    app.url_map.strict_slashes = False
    install_middleware(app)
    install_error_handlers(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app
