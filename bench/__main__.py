"""Run the benchmarks in bench/ (all, or those named): `python -m bench [--quick] [NAME ...]`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time

import bench


def main(argv: list[str] | None = None) -> int:
    names = sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_")
    )
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all): {', '.join(names)}",
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in names]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(names)}")
    failed = 0
    for name in args.names or names:
        print(f"\n=== bench/{name} ===", flush=True)
        started = time.perf_counter()
        module = importlib.import_module(f"bench.{name}")
        rc = module.main(["--quick"] if args.quick else [])
        failed += bool(rc)
        print(f"=== bench/{name} done in {time.perf_counter() - started:.1f} s ===", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
