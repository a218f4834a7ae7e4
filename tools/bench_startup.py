"""`make bench` (first part): how long the commands that need no appliance take, start to exit.

`rescue --help`, `rescue bcd enum BCDFILE` and `rescue reg query HIVEFILE KEY` do not launch
libguestfs, so their time is Python start-up plus imports plus the work itself: each is run
RUNS times (default 10) as a fresh process and the median is compared with the goal (0.3 s).
The hive files are built with the project's sample builders in a temporary directory.

    .venv/bin/python tools/bench_startup.py [--rescue PATH] [--runs N]

Exits 1 when a median misses the goal, so it can gate a change; not a test (timings depend on the
machine's load).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 0.3


def build_samples(work: Path) -> tuple[Path, Path]:
    from rescue.samples.bcd_store import build_bcd_hive
    from rescue.samples.hives import build_system_hive

    bcd, system = work / "BCD", work / "SYSTEM"
    build_bcd_hive(bcd, generation="gen2")
    build_system_hive(system)
    return bcd, system


def run_once(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+system) of one run. The CPU time shows what the command
    itself costs when the machine is shared (wall time then includes waiting for a core)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {stderr.strip()[-400:]}")
    return elapsed, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rescue", default=str(Path(sys.executable).with_name("rescue")),
                        help="the rescue command to time (default: the one beside this Python)")
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_STARTUP_RUNS", "10")))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rescue-bench-startup-") as tmp:
        bcd, system = build_samples(Path(tmp))
        cases = [
            ("rescue --help", [args.rescue, "--help"]),
            ("rescue bcd enum BCDFILE", [args.rescue, "bcd", "enum", str(bcd)]),
            ("rescue reg query HIVEFILE KEY", [args.rescue, "reg", "query", str(system),
                                               "ControlSet001\\Control\\CrashControl"]),
        ]
        rows = []
        for name, argv in cases:
            run_once(argv)                    # warm the page cache and the .pyc files first
            runs = [run_once(argv) for _ in range(args.runs)]
            walls = [w for w, _ in runs]
            rows.append((name, statistics.median(walls), min(walls), max(walls),
                         statistics.median(c for _, c in runs)))
    load = os.getloadavg()[0]
    width = max(len(r[0]) for r in rows)
    print(f"{'no-appliance command'.ljust(width)}  median    min    max    cpu  (s, {args.runs} runs; "
          f"goal: median < {GOAL}; load average {load:.1f} on {os.cpu_count()} cores)")
    missed = 0
    for name, median, lo, hi, cpu in rows:
        mark = "ok" if median < GOAL else "SLOW"
        missed += median >= GOAL
        print(f"{name.ljust(width)}  {median:6.3f} {lo:6.3f} {hi:6.3f} {cpu:6.3f}  {mark}")
    if missed and load > (os.cpu_count() or 1):
        print("The machine is busier than it has cores: wall times include waiting for a CPU; "
              "the cpu column is what the commands cost.")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
