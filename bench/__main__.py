"""`python -m bench [names...] [--smoke] [--out DIR]`: run benchmarks, print the table, write
`<out>/<name>.json` (default bench/results for full runs; smoke runs write nowhere unless
--out is given, so a quick check never overwrites the recorded figures)."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

from bench import BENCHMARKS, report, stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        metavar="name",
        help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes: checks it works, not speed"
    )
    parser.add_argument("--out", type=Path, help="folder for the JSON results")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    scale = "smoke" if args.smoke else "full"
    out = args.out or (None if args.smoke else report.RESULTS)
    names = args.names or list(BENCHMARKS)
    machine = stack.machine()
    print(
        f"PesaTab benchmarks ({scale}) on {machine['nproc']} x {machine['cpu_model']}, "
        f"{machine['ram_gib']} GiB, PostgreSQL {machine['postgresql']}, "
        f"commit {machine['git_commit']}",
        flush=True,
    )
    results, started = {}, time.monotonic()
    for name in names:
        t0 = time.monotonic()
        print(f"\n== {name}", flush=True)
        try:
            result = importlib.import_module(BENCHMARKS[name]).run(scale)
        except Exception as exc:  # one benchmark failing must not hide the others' figures
            traceback.print_exc()
            result = {"error": f"{type(exc).__name__}: {exc}"}
        result = {
            "benchmark": name,
            "scale": scale,
            "seconds": round(time.monotonic() - t0, 1),
            "machine": machine,
            **result,
        }
        results[name] = result
        print(report.table({name: result}), flush=True)
        print(f"({result['seconds']} s)", flush=True)
        if out is not None:
            report.write(name, result, out)
    print(f"\n== all ({round(time.monotonic() - started)} s)")
    print(report.table(results))
    if out == report.RESULTS and report.update_readme():
        print(f"\n{report.README.relative_to(stack.ROOT)}: results block updated")
    failed = [n for n, r in results.items() if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
