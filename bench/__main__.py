"""`python -m bench [--quick] [--only NAME]`: run the benchmarks, print figures, write bench/results/.

A benchmark that cannot run (an engine is down, a layer is missing) is reported and skipped: the exit status is
0 whatever the figures say, so `make bench` never fails a build on performance.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
import traceback

from bench import BENCHMARKS
from bench.common import RESULTS_DIR, environment, log, write_result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run (~2 minutes): fewer rounds and sizes")
    parser.add_argument("--only", choices=BENCHMARKS, action="append", help="run only this benchmark (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    selected = args.only or list(BENCHMARKS)
    env = environment()
    env["mode"] = "quick" if args.quick else "full"
    sections: list[str] = []
    began = time.monotonic()
    for name in selected:
        log(f"{name}: starting ({env['mode']} mode)")
        started = time.monotonic()
        load_start = [round(x, 2) for x in os.getloadavg()]
        try:
            module = importlib.import_module(f"bench.{name}")
            payload, markdown = module.run(quick=args.quick)
        except Exception as exc:  # noqa: BLE001 - a benchmark reports, never fails the build
            traceback.print_exc()
            log(f"{name}: could not run: {exc!r}")
            sections.append(f"# {name}\n\nNot run: `{exc!r}`\n")
            continue
        elapsed = time.monotonic() - started
        load_end = [round(x, 2) for x in os.getloadavg()]
        payload["environment"] = env
        payload["elapsed_s"] = round(elapsed, 1)
        payload["loadavg"] = {"start": load_start, "end": load_end}
        markdown = markdown.rstrip() + (
            f"\n\n_Load average (1, 5, 15 min) at start {load_start}, at end {load_end}, on {env['host_cpus']} "
            f"CPUs: anything else running on the machine shows in these figures._\n")
        json_path, md_path = write_result(name, payload, markdown)
        print(markdown, flush=True)
        print(f"\n({name}: {elapsed:.0f} s; {json_path.relative_to(RESULTS_DIR.parent.parent)}, "
              f"{md_path.relative_to(RESULTS_DIR.parent.parent)})\n", flush=True)
        sections.append(markdown)
    total = time.monotonic() - began
    header = (
        f"# ring-actors benchmarks ({env['mode']} mode)\n\n"
        f"{env['date']}, {env['host_cpus']} CPUs, kernel {env['kernel']}, Python {env['python']}, "
        f"git {env.get('git_revision', '?')}, load at start {env.get('loadavg_at_start')}; total {total:.0f} s.\n"
    )
    if set(selected) == set(BENCHMARKS):
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / "summary.md").write_text(header + "\n" + "\n\n".join(sections) + "\n")
    log(f"done in {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
