"""Outage spans: found where many terminals fail at once, then widened to the outage's
first and last victims (up to the host's approved payments around it)."""

from __future__ import annotations

from datetime import UTC, datetime

from posdoctor.doctor.fleet import FleetContext
from posdoctor.doctor.fleet_spans import find_spans
from posdoctor.doctor.records import EventRow

DAY = datetime(2025, 3, 1, tzinfo=UTC)


def _at(hhmm: str) -> datetime:
    hours, minutes = hhmm.split(":")
    return DAY.replace(hour=int(hours), minute=int(minutes))


def _refused(tid: str, hhmm: str) -> EventRow:
    return EventRow(_at(hhmm), "terminal", "terminal_event", tid, "comm.connect_failed",
                    {"host": "127.0.0.1", "port": 7000})


def _small_fleet_outage() -> tuple[FleetContext, list[EventRow]]:
    """Ten terminals; the host is down 10:12-10:48 and the few customers meet it one by
    one, three of them in the same ten minutes; two other failures lie beyond the
    payments the host approved just before and just after."""
    ctx = FleetContext(_at("00:00"), _at("23:59"))
    ctx.active = {f"1000000{n}" for n in range(10)}
    events = [_refused("10000006", "09:50"), _refused("10000004", "10:14"), _refused("10000001", "10:31"),
              _refused("10000002", "10:32"), _refused("10000003", "10:33"), _refused("10000005", "10:44"),
              _refused("10000007", "10:55")]
    return ctx, events


def test_the_busy_buckets_alone_leave_the_first_and_last_victims_out() -> None:
    ctx, events = _small_fleet_outage()
    find_spans(ctx, events, [])
    assert len(ctx.outages) == 1
    assert ctx.outage_at(_at("10:32")) is not None
    assert ctx.outage_at(_at("10:14")) is None and ctx.outage_at(_at("10:44")) is None


def test_an_outage_reaches_to_the_payments_approved_around_it() -> None:
    ctx, events = _small_fleet_outage()
    asked = []

    def approvals_around(first: datetime, last: datetime) -> tuple[datetime | None, datetime | None]:
        asked.append((first, last))
        return _at("10:00"), _at("10:50")

    find_spans(ctx, events, [], approvals_around)
    assert asked == [(_at("10:31"), _at("10:33"))]
    [span] = ctx.outages
    for hhmm in ("10:14", "10:31", "10:44"):
        assert ctx.outage_at(_at(hhmm)) is span, hhmm
    assert ctx.outage_at(_at("09:50")) is None and ctx.outage_at(_at("10:55")) is None
    assert span.tids == {"10000001", "10000002", "10000003", "10000004", "10000005"}


def test_without_approvals_around_the_outage_takes_every_failure_of_the_window() -> None:
    ctx, events = _small_fleet_outage()
    find_spans(ctx, events, [], lambda first, last: (None, None))
    [span] = ctx.outages
    assert span.start == _at("09:50") and ctx.outage_at(_at("10:55")) is span


def test_two_busy_stretches_with_no_approval_between_are_one_outage() -> None:
    ctx, events = _small_fleet_outage()
    events += [_refused("10000008", "11:30"), _refused("10000009", "11:31"), _refused("10000000", "11:32")]
    find_spans(ctx, events, [])
    assert len(ctx.outages) == 2
    find_spans(ctx, events, [], lambda first, last: (_at("10:00"), _at("12:00")))
    [span] = ctx.outages
    assert ctx.outage_at(_at("10:55")) is span and len(span.tids) == 9
