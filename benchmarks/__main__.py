"""``python -m benchmarks [--quick] [--only NAME ...]``: run the benchmarks, print Markdown tables.

RESULTS.md is written by hand from this output: the tables plus what they mean.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import sys
import time

from benchmarks.common import machine

MODULES = ("pushdown", "replay", "report_phases", "engines", "scaling", "clustered", "watch", "watch_regimes", "series",
           "serve_load")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (still medians)")
    parser.add_argument("--only", nargs="*", choices=MODULES, help="run only these benchmarks")
    args = parser.parse_args(argv)
    header = (f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}; "
              f"Python {sys.version.split()[0]}{', --quick' if args.quick else ''}.\n")
    print(header)
    for name in args.only or MODULES:
        t = time.perf_counter()
        module = importlib.import_module(f"benchmarks.{name}")
        for table in module.run(quick=args.quick):
            text = table.markdown()
            print(text, flush=True)
        print(f"_({name}: {time.perf_counter() - t:.0f} s)_\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
