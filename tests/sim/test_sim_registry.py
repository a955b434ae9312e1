"""The fault registry covers the catalog; fault specs parse; bad input is refused early."""

from __future__ import annotations

import pytest

from posdoctor.doctor.catalog import CAUSES
from posdoctor.sim.config import FaultSpec, SimConfig, parse_fault_spec
from posdoctor.sim.faults import FAULTS
from posdoctor.sim.run import UnknownFault, check_faults


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
