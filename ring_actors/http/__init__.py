"""The control API: a Ring-compatible REST API served by hypercorn (see `app.create_app`)."""

from ring_actors.http.app import create_app

__all__ = ["create_app"]
