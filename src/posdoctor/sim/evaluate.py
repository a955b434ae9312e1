"""The scenario suite: every cause in several variations, simulated, then diagnosed.

Scenarios are packed into small simulated days: terminal causes share a day (each on its
own terminal, among healthy ones; a few terminals get two faults), while causes whose
effect spreads (a host outage, a sign-in storm, a defective rollout, a site losing power)
get a day of their own. After each day the doctor (`posdoctor.doctor.diagnose`) reads the
store for the simulated day's window and names a cause per terminal; the ground truth
stays in the simulation result. `EvaluationReport` scores top-1/top-3 per cause and
overall, the confusion matrix, and healthy terminals the doctor called failing.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from posdoctor.sim.config import FaultSpec, SimConfig, tid_of
from posdoctor.sim.faults import FAULTS
from posdoctor.sim.run import run_simulation

__all__ = ["EvaluationConfig", "EvaluationReport", "Scenario", "plan_scenarios", "run_evaluation", "Diagnoser"]

ISOLATED = frozenset({"backend.host_down", "net.host_overloaded", "upgrade.firmware_defect"})
PAIRS = (("hw.printer", "txn.insufficient_funds"), ("net.unstable", "hw.printer"),
         ("txn.wrong_pin", "hw.printer"), ("keys.tmk_mismatch", "hw.printer"))
"""Two faults on one terminal: either cause named first counts as right."""
BATCH = 14
HEALTHY_PER_BATCH = 8

Diagnoser = Callable[[Any, list[str], datetime, datetime], dict[str, list[tuple[str, float, bool]]]]
"""(store, tids, since, until) -> {tid: [(cause, confidence, failing), ...] ranked}."""


@dataclass
class EvaluationConfig:
    variations: int = 3
    seed: int = 1
    causes: list[str] = field(default_factory=list)
    """Only these causes (default: all)."""
    pairs: bool = True
    home: Path | None = None

    def check(self) -> None:
        unknown = [c for c in self.causes if c not in FAULTS]
        if unknown:
            raise ValueError(f"unknown cause(s): {', '.join(unknown)}")
        if self.variations < 1:
            raise ValueError("variations must be at least 1")


@dataclass
class Scenario:
    """One simulated day: faults (each naming its terminal) among healthy terminals."""

    terminals: int
    faults: list[FaultSpec]


def _isolated(spec: FaultSpec) -> bool:
    return spec.cause in ISOLATED or (spec.cause == "hw.power" and spec.variant == 1)


def plan_scenarios(config: EvaluationConfig) -> list[Scenario]:
    rng = random.Random(config.seed)
    causes = config.causes or sorted(FAULTS)
    specs = [FaultSpec(cause, None, k % len(FAULTS[cause].variants))
             for cause in causes for k in range(config.variations)]
    rng.shuffle(specs)
    alone = [s for s in specs if _isolated(s)]
    shared = [s for s in specs if not _isolated(s)]
    scenarios = [Scenario(10, [FaultSpec(s.cause, tid_of(rng.randrange(10)), s.variant)]) for s in alone]
    pairs = [p for p in PAIRS if set(p) <= set(causes)] if config.pairs else []
    for start in range(0, len(shared), BATCH):
        batch = shared[start:start + BATCH]
        terminals = len(batch) + HEALTHY_PER_BATCH + (1 if pairs else 0)
        slots = rng.sample(range(terminals), len(batch) + (1 if pairs else 0))
        faults = [FaultSpec(s.cause, tid_of(slot), s.variant) for s, slot in zip(batch, slots)]
        if pairs:
            pair, tid = pairs[(start // BATCH) % len(pairs)], tid_of(slots[-1])
            faults += [FaultSpec(pair[0], tid, 0), FaultSpec(pair[1], tid, 0)]
        scenarios.append(Scenario(terminals, faults))
    return scenarios


def doctor_diagnoser(store: Any, tids: list[str], since: datetime, until: datetime
                     ) -> dict[str, list[tuple[str, float, bool]]]:
    from posdoctor.doctor.diagnose import diagnose_many

    found = diagnose_many(store, tids, since=since, until=until)
    return {tid: [(f.cause, f.confidence, d.failing) for f in d.findings] for tid, d in found.items()}


@dataclass
class Verdict:
    tid: str
    truth: list[str]
    ranked: list[str]
    failing: bool

    @property
    def top1(self) -> bool:
        return bool(self.ranked) and self.ranked[0] in self.truth

    @property
    def top3(self) -> bool:
        return any(cause in self.truth for cause in self.ranked[:3])

    @property
    def predicted(self) -> str:
        return self.ranked[0] if self.ranked else "none"


@dataclass
class EvaluationReport:
    verdicts: list[Verdict] = field(default_factory=list)
    """Faulted terminals."""
    healthy: list[Verdict] = field(default_factory=list)
    days: int = 0

    def per_cause(self) -> dict[str, dict[str, float]]:
        table: dict[str, dict[str, float]] = {}
        for verdict in self.verdicts:
            for cause in verdict.truth:
                row = table.setdefault(cause, {"n": 0, "top1": 0, "top3": 0})
                row["n"] += 1
                row["top1"] += verdict.top1
                row["top3"] += verdict.top3
        for row in table.values():
            row["top1_acc"] = row["top1"] / row["n"]
            row["top3_acc"] = row["top3"] / row["n"]
        return dict(sorted(table.items()))

    def confusion(self) -> dict[str, dict[str, int]]:
        matrix: dict[str, dict[str, int]] = {}
        for verdict in self.verdicts:
            key = " + ".join(sorted(verdict.truth))
            row = matrix.setdefault(key, {})
            row[verdict.predicted] = row.get(verdict.predicted, 0) + 1
        return dict(sorted(matrix.items()))

    @property
    def top1(self) -> float:
        return sum(v.top1 for v in self.verdicts) / max(1, len(self.verdicts))

    @property
    def top3(self) -> float:
        return sum(v.top3 for v in self.verdicts) / max(1, len(self.verdicts))

    @property
    def false_positives(self) -> list[Verdict]:
        return [v for v in self.healthy if v.failing]

    def to_json(self) -> dict[str, Any]:
        return {"scenarios": len(self.verdicts), "days": self.days, "top1": round(self.top1, 4),
                "top3": round(self.top3, 4), "healthy": len(self.healthy),
                "healthy_false_positives": len(self.false_positives),
                "false_positive_rate": round(len(self.false_positives) / max(1, len(self.healthy)), 4),
                "false_positive_causes": sorted({v.predicted for v in self.false_positives}),
                "per_cause": {c: {"n": int(r["n"]), "top1": round(r["top1_acc"], 4), "top3": round(r["top3_acc"], 4)}
                              for c, r in self.per_cause().items()},
                "confusion": self.confusion()}


def _scored_tids(result: Any) -> dict[str, list[str]]:
    """Terminals to score with their true causes: every terminal a fault affected, but for
    spreading faults only those that actually met it (had a failure)."""
    scored: dict[str, list[str]] = {}
    for injection in result.injections:
        if injection.skipped:
            continue
        affected = injection.affected
        if len(affected) > 1:
            met = [tid for tid in affected if result.failures.get(tid)]
            affected = met or [injection.tid]
        for tid in affected:
            causes = scored.setdefault(tid, [])
            if injection.cause not in causes:
                causes.append(injection.cause)
    return scored


def run_evaluation(config: EvaluationConfig, *, diagnoser: Diagnoser | None = None,
                   progress: Callable[[str], None] | None = None) -> EvaluationReport:
    if config.home is None:  # a scratch home, removed afterwards
        with tempfile.TemporaryDirectory(prefix="posdoctor-eval-") as scratch:
            return _evaluate(config, Path(scratch), diagnoser or doctor_diagnoser, progress)
    return _evaluate(config, config.home, diagnoser or doctor_diagnoser, progress)


def _evaluate(config: EvaluationConfig, home: Path, diagnose: Diagnoser,
              progress: Callable[[str], None] | None) -> EvaluationReport:
    from posdoctor.store import open_store

    report = EvaluationReport()
    scenarios = plan_scenarios(config)
    for n, scenario in enumerate(scenarios, 1):
        sim = SimConfig(terminals=scenario.terminals, seed=config.seed * 1000 + n, faults=scenario.faults,
                        home=home, upgrade_share=0.0)
        result = run_simulation(sim)
        store = open_store(result.db_url, home, migrate=False)
        try:
            since, until = (datetime.fromisoformat(t) for t in result.window)
            tids = sorted(result.outcomes)
            found = diagnose(store, tids, since, until)
        finally:
            store.engine.dispose()
        scored = _scored_tids(result)
        for tid in tids:
            ranked = found.get(tid, [])
            verdict = Verdict(tid, scored.get(tid, []), [c for c, _conf, _f in ranked],
                              bool(ranked) and ranked[0][2])
            if tid in scored:
                report.verdicts.append(verdict)
            elif tid not in result.truth:  # affected by a spreading fault it never met: neither
                report.healthy.append(verdict)
        report.days += 1
        if progress is not None:
            progress(f"day {n}/{len(scenarios)}: {len(scenario.faults)} faults on {scenario.terminals} terminals, "
                     f"top-1 so far {report.top1:.0%}")
    return report
