"""Terminal reports written by ``record_report(s)`` and the service layer (no HTTP)."""

from datetime import timedelta

import pytest
from tmsfleet import START

from posdoctor.tms.credentials import CredentialError
from posdoctor.tms.reports import Report, ReportError, record_report, record_reports
from posdoctor.tms.service import TmsService


def test_batch_is_one_transaction_and_a_bad_report_writes_nothing(fleet):
    tids = fleet.add(3)
    before = len(fleet.store.events(kind="heartbeat"))
    batch = [Report(tid, "heartbeat", {"app_version": "1.0.2"}, START + timedelta(minutes=1)) for tid in tids]
    batch.append(Report(tids[0], "self_check", {"keys": "gone"}, START))
    with pytest.raises(ReportError, match="keys"):
        record_reports(fleet.store, batch)
    assert len(fleet.store.events(kind="heartbeat")) == before
    assert record_reports(fleet.store, batch[:-1]) == 3
    assert {t.app_version for t in fleet.store.latest_heartbeats(tids).values()} == {"1.0.2"}


def test_last_received_heartbeat_wins_even_with_a_wrong_clock(fleet):
    tid = fleet.add(1)[0]
    record_report(fleet.store, tid, "heartbeat", {"app_version": "1.5", "at": "2001-01-01T00:00:00"},
                  START + timedelta(hours=1))
    latest = fleet.store.latest_heartbeat(tid)
    assert latest.app_version == "1.5"
    assert latest.at.year == 2001 and latest.received_at == START + timedelta(hours=1)
    assert fleet.store.get_terminal(tid).app_version == "1.5"


def test_unknown_kind_and_oversized_upload_are_refused(fleet):
    with pytest.raises(ReportError, match="unknown report kind"):
        record_report(fleet.store, "10000000", "selfie", {}, START)
    events = [{"at": START.isoformat(), "kind": "comm", "code": "x"}] * 1001
    with pytest.raises(ReportError, match="events"):
        record_report(fleet.store, "10000000", "logs", {"events": events}, START)


def test_heartbeat_answer_carries_policies_and_params_when_the_registry_has_them(fleet, home, clock):
    tid = fleet.add(1)[0]
    store = fleet.store
    if hasattr(store, "set_policy"):
        store.set_policy("min_app_version", "1.2.0")
        store.set_policy("allowed_apps", ["pay", "tms"])
    service = TmsService(store, home, clock)
    answer = service.heartbeat(tid, {"app_version": "1.0.0"})
    assert answer["server_time"] == START.isoformat() and answer["upgrade"] is False
    if hasattr(store, "set_policy"):
        assert answer["min_app_version"] == "1.2.0" and answer["allowed_apps"] == ["pay", "tms"]
    with pytest.raises(CredentialError) as refused:
        service.status(tid, {"tid": "10009999"})
    assert refused.value.status == 403


def test_thousands_of_heartbeats_in_one_batch(fleet):
    """The simulator's path: one transaction, latest per terminal queryable at once."""
    reports = [Report(f"{20000000 + i:08d}", "heartbeat",
                      {"app_version": "1.0.0", "peripherals": {"printer": "ok" if i % 10 else "fault"}}, START)
               for i in range(2_000)]
    assert record_reports(fleet.store, reports) == 2_000
    latest = fleet.store.latest_heartbeats()
    assert len(latest) == 2_000
    assert sum(1 for row in latest.values() if row.code == "degraded") == 200


def test_a_new_app_version_reaches_running_hosts_through_the_change_feed(fleet):
    tid = fleet.add(1)[0]  # registered and reported 1.0.0
    before = [c.id for c in fleet.store.host_changes_after(0)]
    last = max(before, default=0)
    record_report(fleet.store, tid, "heartbeat", {"app_version": "1.0.0"}, START)
    assert fleet.store.host_changes_after(last) == []  # unchanged: no news for the host
    record_report(fleet.store, tid, "heartbeat", {"app_version": "2.0.0"}, START)
    [change] = fleet.store.host_changes_after(last)
    assert (change.kind, change.tid, change.value) == ("registry", tid, "app_version")
    assert fleet.store.get_terminal(tid).app_version == "2.0.0"
