"""The `ring-actors` command line: a drop-in for Ring's `ring` CLI (spec: cli.md).

One module per command group; `ring_actors.cli.main:main` is the console-script
entry point (imported lazily here so `python -m ring_actors.cli.main` runs cleanly).
"""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    from ring_actors.cli.main import main as _main

    _main()
