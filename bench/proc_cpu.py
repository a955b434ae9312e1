"""CPU accounting of a running host process from /proc, shared by the benchmarks.

`snapshot(pid)` reads everything at one instant; `since(before, pid)` gives what was
used between two snapshots: the event-loop thread's CPU and its time runnable but
waiting for a core, the other host threads, and the host's child processes (the
commit and HSM processes).
"""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(path: Path) -> list[str]:
    return path.read_text().rsplit(")", 1)[1].split()


def process_cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, all its threads."""
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def children_cpu_seconds(pid: int) -> float:
    """CPU seconds of the live child processes of `pid` (the host's commit and HSM processes)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat_fields(entry / "stat")
        except OSError:
            continue
        if fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def main_thread_schedstat(pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of the event-loop thread."""
    try:
        on_cpu, waiting, _ = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(on_cpu) / 1e9, int(waiting) / 1e9


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each thread of a process: "main" (the event loop)
    and the others by OS thread id."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = _stat_fields(task / "stat")
        except OSError:
            continue
        name = "main" if task.name == str(pid) else f"thread {task.name}"
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return out


def snapshot(pid: int) -> dict:
    return {"cpu": process_cpu_seconds(pid), "threads": thread_cpu_seconds(pid),
            "children": children_cpu_seconds(pid), "sched": main_thread_schedstat(pid)}


def since(before: dict, pid: int) -> dict:
    """What the host used since `before` (a `snapshot`), in the benchmarks' JSON names."""
    now = snapshot(pid)
    (user0, sys0), (user1, sys1) = before["cpu"], now["cpu"]
    threads = {name: round(cpu - before["threads"].get(name, 0.0), 2) for name, cpu in now["threads"].items()}
    return {
        "host_cpu_s": round(user1 + sys1 - user0 - sys0, 2), "host_user_s": round(user1 - user0, 2),
        "host_sys_s": round(sys1 - sys0, 2), "host_thread_cpu_s": threads,
        "commit_process_cpu_s": round(now["children"] - before["children"], 2),
        "loop_on_cpu_s": round(now["sched"][0] - before["sched"][0], 2),
        "loop_runqueue_wait_s": round(now["sched"][1] - before["sched"][1], 2),
    }
