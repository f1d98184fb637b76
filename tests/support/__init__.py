"""Plain helpers shared by the test suites (no fixtures: those live in conftest.py files).

`engines`: socket paths, registries, test image names, and `require_engine` / `require_registry`, which raise
when something the tests need is not up (`make test-env` brings it all up).
"""

from . import engines

__all__ = ["engines"]
