"""How fast this machine's CPU is right now, for reading a benchmark's wall times.

    python bench/machine_speed.py [--json]

The development machines are 2-core VMs whose CPU speed drifts: this module's loop has
taken from 0.16 s to 0.68 s within one evening on an otherwise idle machine (2026-11-29),
so one run's wall time says as much about the machine as about the code.
The benchmarks that compare against a time target call `measure()` before and after
their timed part and print both as `machine_speed` (1.0 = the fastest this loop has run
here, `REFERENCE_S`; 0.7 = the CPU did 70 % of that work per second).
"""

from __future__ import annotations

import json
import sys
import time

LOOP_ITERATIONS = 3_000_000
REFERENCE_S = 0.16
"""The fastest run of the loop seen on these 2-core machines (Python 3.11)."""


def _work(n: int) -> int:
    total = 0
    for i in range(n):
        total += i & 7
    return total


def measure() -> float:
    """Speed of one core now, relative to `REFERENCE_S` (takes about half a second)."""
    started = time.process_time()
    _work(LOOP_ITERATIONS)
    return round(REFERENCE_S / (time.process_time() - started), 2)


if __name__ == "__main__":
    speeds = [measure() for _ in range(5)]
    print(json.dumps({"machine_speed": speeds}) if "--json" in sys.argv else
          f"machine speed (1.0 = fastest seen): {' '.join(f'{s:.2f}' for s in speeds)}")
