"""Memory of the fleet simulator: peak RSS and KB per emulated terminal for a full day.

    python bench/sim_memory.py --terminals 10000 --json

Prints one JSON line: terminals, baseline_mb (process after imports), peak_mb (highest RSS
sampled during the run), per_terminal_kb = (peak - baseline) / terminals, wall/setup/day
seconds, transactions, host answers and host answers per second of the day (the mixed-load
throughput; the emulators run in the same process and share its CPU). The database is a fresh SQLite file under a
temporary home (or --home). The whole world counts: host registry, TMS, emulated
terminals and their tasks, all in this one process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from posdoctor.sim.config import SimConfig, parse_fault_spec  # noqa: E402
from posdoctor.sim.run import run_simulation  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    def __init__(self, every_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.every_s, self.peak, self.stopped = every_s, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every_s):
            self.peak = max(self.peak, rss_mb())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terminals", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault", action="append", default=[])
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="posdoctor-simbench-"))
    import posdoctor.sim.upgrades  # noqa: F401  (everything the run imports, before the baseline)
    import posdoctor.tms.service  # noqa: F401
    asyncio.set_event_loop(None)
    baseline = rss_mb()
    sampler = Sampler()
    sampler.start()
    started = time.monotonic()
    config = SimConfig(terminals=args.terminals, seed=args.seed, home=home,
                       faults=[parse_fault_spec(f) for f in args.fault])
    result = run_simulation(config)
    wall = time.monotonic() - started
    sampler.stopped.set()
    sampler.join()
    peak = max(sampler.peak, rss_mb())
    out = {"terminals": args.terminals, "baseline_mb": round(baseline, 1), "peak_mb": round(peak, 1),
           "per_terminal_kb": round((peak - baseline) * 1024 / args.terminals, 1), "wall_s": round(wall, 1),
           "setup_s": round(result.setup_s, 1), "day_s": round(result.day_s, 1), **result.counts,
           "host_answers": sum(v for k, v in result.host.items() if len(k) == 2),
           "events_written": result.reports["events_written"], "home": str(home)}
    # the host's rate over the simulated day's mixed load (emulators share this process's CPU)
    out["host_answers_per_s"] = round(out["host_answers"] / result.day_s, 1) if result.day_s else None
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:>16}: {value}")


if __name__ == "__main__":
    main()
