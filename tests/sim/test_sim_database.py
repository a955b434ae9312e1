"""A simulated day on SQLite and PostgreSQL (`--db`), with the bulk registration path."""

from __future__ import annotations

from pathlib import Path

import pytest

import posdoctor.sim.world as world_module
from posdoctor.sim.config import FaultSpec, SimConfig
from posdoctor.sim.run import run_simulation
from posdoctor.store import open_store


@pytest.mark.parametrize("bulk", [False, True])
def test_a_day_on_the_given_database(db_url: str, home: Path, bulk: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if bulk:
        monkeypatch.setattr(world_module, "BULK_FROM", 1)
    faults = [FaultSpec("txn.insufficient_funds", "10000002"), FaultSpec("status.merchant_frozen", "10000004")]
    config = SimConfig(terminals=5, seed=9, faults=faults, db_url=db_url, home=home)
    first = run_simulation(config)
    assert first.truth == {"10000002": ["txn.insufficient_funds"], "10000004": ["status.merchant_frozen"]}
    store = open_store(db_url, home, migrate=False)
    try:
        assert len(store.list_terminals()) == 5
        assert store.get_merchant("898100000000004").status == "frozen"
        codes = {row.rc for row in store.journal("10000002", limit=500) if row.direction == "out"}
        assert "51" in codes
        assert store.events("10000001", kind="heartbeat")
    finally:
        store.engine.dispose()
    second = run_simulation(config)  # the database is the simulation's: reset, same day again
    assert second.outcomes == first.outcomes
