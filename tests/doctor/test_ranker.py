"""The ranker on findings as the rules return them: merging, fleet absorption, order, unknown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from posdoctor.doctor.ranker import UNKNOWN, rank
from posdoctor.doctor.records import Finding, line
from posdoctor.doctor.rules import covered_causes
from posdoctor.doctor.rules.base import finding
from posdoctor.doctor.catalog import cause_ids

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def f(cause: str, confidence: float, *signals: str, at: datetime = T0, specificity: float = 0.5) -> Finding:
    return finding(cause, confidence, [line(at, f"{cause} seen", f"{cause} 出现")], signals=signals,
                   specificity=specificity)


def test_every_catalog_cause_has_a_rule() -> None:
    assert covered_causes() == set(cause_ids())


def test_same_cause_twice_keeps_the_higher_confidence_and_all_evidence() -> None:
    ranked = rank([f("net.unstable", 0.6, "comm.receive"), f("net.unstable", 0.8, "comm.connect", at=T0 + timedelta(1))])
    assert [x.cause for x in ranked] == ["net.unstable"]
    assert ranked[0].confidence == 0.8 and len(ranked[0].evidence) == 2
    assert ranked[0].signals == {"comm.receive", "comm.connect"}


def test_a_sure_host_outage_absorbs_the_terminal_level_network_reading() -> None:
    ranked = rank([f("net.firewall_blocked", 0.88, "comm.connect"),
                   f("backend.host_down", 0.92, "comm.connect", "rc.96", "comm.receive")])
    assert ranked[0].cause == "backend.host_down"
    blocked = next(x for x in ranked if x.cause == "net.firewall_blocked")
    assert blocked.confidence < 0.5 and "explained by the fleet-wide cause" in blocked.evidence[-1].en


def test_a_finding_with_signals_the_fleet_cause_does_not_explain_stays() -> None:
    ranked = rank([f("keys.tmk_mismatch", 0.95, "keys.check"), f("backend.host_down", 0.92, "comm.connect")])
    assert ranked[0].cause == "keys.tmk_mismatch" and ranked[1].confidence == 0.92


def test_ties_go_to_the_more_specific_then_the_more_recent() -> None:
    ranked = rank([f("txn.wrong_pin", 0.8, specificity=0.5), f("status.merchant_frozen", 0.8, specificity=0.9)])
    assert ranked[0].cause == "status.merchant_frozen"
    ranked = rank([f("txn.wrong_pin", 0.8, at=T0), f("txn.limit_exceeded", 0.8, at=T0 + timedelta(hours=1))])
    assert ranked[0].cause == "txn.limit_exceeded"


def test_trouble_without_a_confident_finding_is_unknown_with_what_to_collect() -> None:
    trouble = [line(T0, "host answered 05", "主机应答05")]
    ranked = rank([f("net.offline", 0.45, "silent")], trouble)
    assert ranked[0].cause == UNKNOWN and ranked[0].confidence == 0.0
    assert ranked[1].cause == "net.offline"
    text = " ".join(x.en for x in ranked[0].evidence)
    assert "host answered 05" in text and "to collect next" in text and "weak leads only" in text


def test_no_trouble_and_no_findings_is_a_healthy_terminal() -> None:
    assert rank([], []) == []


def test_confidence_is_clamped_and_evidence_is_capped() -> None:
    many = [line(T0 + timedelta(seconds=i), f"event {i}", f"事件{i}") for i in range(20)]
    capped = finding("hw.printer", 1.7, many)
    assert capped.confidence == 1.0 and len(capped.evidence) == 6 and "more like these" in capped.evidence[-1].en
