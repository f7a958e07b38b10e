"""``make bench`` / ``make bench-quick``: every benchmark, one after the other, in fresh processes.

Each script prints its own table of medians and ratios against a baseline measured in the
same run and merges its numbers into tests/benchmarks/results.json and results.md.
Benchmarks that need the Weizmann Horse set (../shared/datasets/weizmann_horse) say so and
fall back to synthetic data or skip. A failing benchmark does not stop the others, but makes
the whole run exit non-zero.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from tests.benchmarks.common import RESULTS_MD, machine, weizmann_dir

BENCHMARKS = ("bench_inference", "bench_crf", "bench_brush", "bench_open", "bench_annotator",
              "bench_memory")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the ~2-minute subset")
    parser.add_argument("--only", nargs="*", help="run only these benchmark modules")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    if weizmann_dir() is None:
        print("Weizmann Horse not found beside the checkout: dataset benchmarks use synthetic data or skip")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    failed = []
    for name in args.only or BENCHMARKS:
        cmd = [sys.executable, "-m", f"tests.benchmarks.{name}"] + (["--quick"] if args.quick else [])
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call(cmd, env=env)
        print(f"=== {name}: exit {code}, {time.perf_counter() - t0:.0f} s ===", flush=True)
        if code != 0:
            failed.append(name)
    print(f"\nTables: {RESULTS_MD}")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
