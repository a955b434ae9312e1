"""What a simulation run returns: ground truth, per-terminal outcomes and fleet counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from posdoctor.sim.faults import Injection

__all__ = ["SimulationResult", "build_result"]


@dataclass
class SimulationResult:
    seed: int
    terminals: int
    day: str
    db_url: str
    injections: list[Injection]
    outcomes: dict[str, dict[str, str]]
    """tid -> {operation: "ok/tried"} (reproducible for a seed)."""
    failures: dict[str, int]
    counts: dict[str, int]
    host: dict[str, int]
    reports: dict[str, int]
    setup_s: float
    day_s: float
    window: tuple[str, str] = ("", "")
    """The simulated day as UTC ISO times (pass to the doctor as --since/--until)."""
    truth: dict[str, list[str]] = field(default_factory=dict)
    """tid -> causes injected that affect it (the simulator's ground truth)."""

    @property
    def healthy(self) -> list[str]:
        return [tid for tid in self.outcomes if tid not in self.truth]

    def summary(self) -> dict[str, Any]:
        return {"terminals": self.terminals, "faulted_terminals": len(self.truth),
                "healthy_terminals": self.terminals - len(self.truth),
                "terminals_with_failures": sum(1 for n in self.failures.values() if n),
                **self.counts, "setup_s": round(self.setup_s, 2), "day_s": round(self.day_s, 2)}

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "day": self.day, "db": self.db_url,
                "window": {"since": self.window[0], "until": self.window[1]}, "summary": self.summary(),
                "faults": [i.to_json() for i in self.injections],
                "truth": self.truth, "host": self.host, "reports": self.reports,
                "outcomes": self.outcomes}


def build_result(world: Any, injections: list[Injection], *, setup_s: float, day_s: float) -> SimulationResult:
    for injection in injections:
        injection.detail.pop("_strike_s", None)
    truth: dict[str, list[str]] = {}
    for injection in injections:
        if injection.skipped:
            continue
        for tid in injection.affected:
            causes = truth.setdefault(tid, [])
            if injection.cause not in causes:
                causes.append(injection.cause)
    outcomes = {t.tid: t.summary() for t in world.terminals}
    failures = {t.tid: t.failures for t in world.terminals}
    host = dict(world.host_stats)
    return SimulationResult(
        seed=world.config.seed, terminals=len(world.terminals), day=world.clock.midnight.date().isoformat(),
        db_url=world.db_url, injections=injections, outcomes=outcomes, failures=failures, counts=world.tally(),
        host=host, reports={"reports": world.sink.reports, "events_written": world.sink.written,
                            "rejected": world.sink.errors, "retried": world.sink.retries},
        setup_s=setup_s, day_s=day_s, truth=dict(sorted(truth.items())),
        window=(world.clock.at(0).astimezone(UTC).isoformat(), world.clock.at(24 * 3600).astimezone(UTC).isoformat()))
