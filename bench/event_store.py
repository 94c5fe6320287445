"""The event-store benchmarks of issue 3: append throughput, time travel, projection catch-up.

Run ``python -m bench.event_store`` (about 5 minutes on 2 cores), ``--quick`` for a smoke test
under a minute, or ``--full`` for the sizes the issue names (about 11 minutes). One PostgreSQL
server is started for the run (or ``ORFEAS_DATABASE_URL`` is used) and every measurement gets a
fresh database on it. Each section prints one table, each figure beside its peer measured in the
same run.
"""

from __future__ import annotations

import argparse
import time

from bench import appends, projections, time_travel
from bench.harness import postgres_server
from bench.sizes import DEFAULT, FULL, QUICK, Sizes

SECTIONS = ("append", "travel", "projections")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.event_store", description=__doc__)
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    scale.add_argument("--full", action="store_true", help="the sizes issue 3 names")
    parser.add_argument("--only", choices=SECTIONS, action="append",
                        help="run just this section (repeatable)")
    parser.add_argument("--no-fsync", action="store_true",
                        help="embedded server with fsync off (the test suite's setting)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sizes: Sizes = QUICK if args.quick else FULL if args.full else DEFAULT
    chosen = args.only or list(SECTIONS)
    started = time.perf_counter()
    with postgres_server(durable=not args.no_fsync) as server_url:
        if "append" in chosen:
            appends.run_section(server_url, sizes).print()
        if "travel" in chosen:
            for table in time_travel.run_section(server_url, sizes):
                table.print()
        if "projections" in chosen:
            projections.run_section(server_url, sizes).print()
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
