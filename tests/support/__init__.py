"""Plain helpers shared by the test suites (no fixtures: those live in conftest.py files).

`engines`: socket paths, registries, test image names, and `require_engine` / `require_registry`, which raise
when something the tests need is not up (`make test-env` brings it all up).
`runtimes`: the Docker and Podman `Engine` profiles of the runtime and lifecycle integration tests, their
engine views, `Scope`, and helpers shared by both engines' tests.
`server`: `RingServer`, a real `ring-actors serve` for end-to-end tests.
`manifests`: pieces of deployment manifests shared by end-to-end tests.
`inprocess`: the API app on the SIMULATED runtime in-process (`simulated_services`, `admin_client`).
"""

from . import engines

__all__ = ["engines"]
