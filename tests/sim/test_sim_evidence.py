"""Every injected fault leaves evidence in the store that a healthy terminal's lacks.

Small fleets, several faults per run; the comparison reads only the store (journal,
events, payouts), as the doctor does. Fleet causes are checked on the fleet's evidence.
"""

from __future__ import annotations


import pytest

from posdoctor.sim.evidence import evidence_markers, fleet_markers
from tests_sim_groups import GROUPS
from simkit import open_result_store, simulate

RUNS: dict[str, tuple] = {}


def run_group(name: str, tmp_path_factory: pytest.TempPathFactory):
    if name not in RUNS:
        terminals, causes = GROUPS[name]
        home = tmp_path_factory.mktemp(f"sim-{name}")
        result = simulate(home, terminals, causes, seed=11)
        RUNS[name] = (result, open_result_store(result, home))
    return RUNS[name]


def _healthy_markers(result, store):
    healthy = [tid for tid in result.healthy if result.failures[tid] == 0]
    assert healthy, "every run keeps healthy terminals"
    return evidence_markers(store, healthy[0])


CASES = [(name, cause) for name, (_n, causes) in GROUPS.items() for cause in causes if name != "fleet"]


@pytest.mark.parametrize(("group", "cause"), CASES)
def test_fault_leaves_evidence_a_healthy_terminal_lacks(group: str, cause: str,
                                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    result, store = run_group(group, tmp_path_factory)
    injection = next(i for i in result.injections if i.cause == cause)
    assert not injection.skipped, injection.skipped
    assert injection.tid in result.truth and cause in result.truth[injection.tid]
    baseline = _healthy_markers(result, store)
    mid = store.get_terminal(injection.tid).mid if cause != "status.terminal_unregistered" else None
    own = evidence_markers(store, injection.tid, mid)
    assert own - baseline, f"{cause} on {injection.tid}: no evidence beyond a healthy terminal's"


def test_healthy_terminals_look_alike(tmp_path_factory: pytest.TempPathFactory) -> None:
    result, store = run_group("keys_net", tmp_path_factory)
    healthy = [tid for tid in result.healthy if result.failures[tid] == 0][:3]
    signatures = [{m for m in evidence_markers(store, tid) if m[0] not in ("heartbeats",)} for tid in healthy]
    assert all(sig == signatures[0] for sig in signatures)
    assert not any(m[0] in ("rc", "event", "host", "peripheral", "tms") for m in signatures[0])


def test_fleet_causes_leave_fleet_wide_evidence(tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("sim-down")
    result = simulate(home, 12, ["backend.host_down#0"], seed=5, txns_per_terminal=8.0)
    store = open_result_store(result, home)
    failing = [tid for tid in result.truth if ("event", "comm.connect_failed") in evidence_markers(store, tid)]
    assert len(failing) >= 2, "an outage is seen by several terminals at once"

    home = tmp_path_factory.mktemp("sim-storm")
    result = simulate(home, 24, ["net.host_overloaded"], seed=5)
    store = open_result_store(result, home)
    assert ("host", "connection_refused") in fleet_markers(store)
    refused = [tid for tid in result.truth if any(m[0] == "event" and m[1].startswith("comm.")
                                                   for m in evidence_markers(store, tid))]
    assert len(refused) >= 2
