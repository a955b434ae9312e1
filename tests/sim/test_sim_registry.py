"""The fault registry covers the catalog; fault specs parse; bad input is refused early."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from posdoctor.doctor.catalog import CAUSES
from posdoctor.sim.config import FaultSpec, SimConfig, parse_fault_spec
from posdoctor.sim.faults import FAULTS
from posdoctor.sim.faults_device import reuse_stan
from posdoctor.sim.run import UnknownFault, check_faults
from posdoctor.terminal.app import new_state
from posdoctor.terminal.state import TxnRecord


def _cause_ids() -> set[str]:
    return {c if isinstance(c, str) else c.id for c in CAUSES}


def test_every_cause_of_the_catalog_has_a_fault() -> None:
    assert set(FAULTS) == _cause_ids()
    assert len(FAULTS) == 54


@pytest.mark.parametrize("cause", sorted(FAULTS))
def test_every_fault_changes_something(cause: str) -> None:
    fault = FAULTS[cause]
    assert fault.what and fault.variants
    assert any((fault.setup, fault.install, fault.strike)), "a fault must change the world somewhere"
    assert fault.scope in ("terminal", "merchant", "site", "fleet")
    for variant in range(len(fault.variants)):
        window = fault.window(variant)
        if window is not None:
            assert fault.strike is not None and window[0] < window[1]


@pytest.mark.parametrize(("text", "spec"), [
    ("keys.tmk_mismatch", FaultSpec("keys.tmk_mismatch")),
    ("net.offline@10000007", FaultSpec("net.offline", "10000007")),
    ("hw.power@10000002#1", FaultSpec("hw.power", "10000002", 1)),
])
def test_fault_specs_parse(text: str, spec: FaultSpec) -> None:
    assert parse_fault_spec(text) == spec


@pytest.mark.parametrize("text", ["", "@10000001", "net.offline@123", "net.offline@10000001#x"])
def test_bad_fault_specs_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_fault_spec(text)


def test_unknown_cause_and_tid_outside_the_fleet_are_refused_before_building() -> None:
    with pytest.raises(UnknownFault) as unknown:
        check_faults(SimConfig(terminals=5, faults=[FaultSpec("net.nothing")]))
    assert "net.nothing" in unknown.value.en and unknown.value.zh
    with pytest.raises(UnknownFault):
        check_faults(SimConfig(terminals=5, faults=[FaultSpec("net.offline", "10000006")]))
    check_faults(SimConfig(terminals=5, faults=[FaultSpec("net.offline", "10000005")]))


def _txn(stan: str) -> TxnRecord:
    return TxnRecord(kind="sale", stan=stan, batch=1, amount=100, pan_masked="622202******0001",
                     pan_sealed="00", at=datetime(2026, 11, 30, 3, 0, tzinfo=UTC))


@pytest.mark.parametrize(("logged", "stan", "next_stan"), [
    (["000004", "000007"], 12, "000007"),  # STANs 8-12 went to messages not checked for duplicates
    (["000001"], 3, "000001"),
    ([], 12, "000012"),  # nothing in the batch: the last STAN sent comes again
])
def test_a_reused_stan_is_the_last_transactions(logged: list[str], stan: int, next_stan: str) -> None:
    state = new_state("10000001", "SN0001")
    state.txn_log = [_txn(s) for s in logged]
    state.stan = stan
    reuse_stan(SimpleNamespace(term=SimpleNamespace(state=state)))  # type: ignore[arg-type]
    assert state.next_stan() == next_stan
