"""Helpers for the simulator tests: run a small fleet once per module."""

from __future__ import annotations

from pathlib import Path

from posdoctor.sim.config import SimConfig, parse_fault_spec
from posdoctor.sim.result import SimulationResult
from posdoctor.sim.run import run_simulation
from posdoctor.store import open_store


def simulate(home: Path, terminals: int, faults: list[str], *, seed: int = 7, **options) -> SimulationResult:
    specs = [parse_fault_spec(cause) for cause in faults]
    config = SimConfig(terminals=terminals, seed=seed, faults=specs, home=home, **options)
    return run_simulation(config)


def open_result_store(result: SimulationResult, home: Path):
    return open_store(result.db_url, home, migrate=False)
