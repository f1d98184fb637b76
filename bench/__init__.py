"""Benchmarks of ring-actors against the engines' own behaviour (`python -m bench`).

Three benchmarks, each measuring ring-actors and its comparison in the same run:

- `crashloop`: crash -> replacement latency against the engine's own restart policy (real Docker).
- `apply_latency`: `POST /deployments` -> `running` against a raw engine create+start (real Docker).
- `scale`: thousands of actors on the SIMULATED runtime (no engine; labelled as such everywhere).

Benchmarks print figures and write `bench/results/`; they never fail a build.
"""

__all__ = ["BENCHMARKS"]

BENCHMARKS = ("crashloop", "apply_latency", "scale")
