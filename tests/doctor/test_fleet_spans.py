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


# --- an outage only two terminals met (no busy bucket at all) -------------------------------
FLEET_ENDPOINT = ("127.0.0.1", 7000)


def _connect_failed(tid: str, hhmm: str, error: str = "ConnectionRefusedError", port: int = 7000) -> EventRow:
    return EventRow(_at(hhmm), "terminal", "terminal_event", tid, "comm.connect_failed",
                    {"host": "127.0.0.1", "port": port, "error": error})


def _two_victims(*extra: EventRow) -> tuple[FleetContext, list[EventRow]]:
    """Ten terminals; two customers, nine minutes apart, find the host refusing."""
    ctx = FleetContext(_at("00:00"), _at("23:59"))
    ctx.active = {f"1000000{n}" for n in range(10)}
    ctx.assigned_comm = FLEET_ENDPOINT
    return ctx, [_connect_failed("10000001", "12:19"), _connect_failed("10000002", "12:28"), *extra]


def _approved_at(*hhmms: str):  # type: ignore[no-untyped-def]
    """approvals_around over a journal whose approved payments are at `hhmms`, and the calls."""
    times, asked = sorted(_at(h) for h in hhmms), []

    def approvals_around(first: datetime, last: datetime) -> tuple[datetime | None, datetime | None]:
        asked.append((first, last))
        return (max((t for t in times if t < first), default=None), min((t for t in times if t > last), default=None))

    return approvals_around, asked


def test_two_terminals_refused_with_no_payment_approved_between_are_an_outage() -> None:
    ctx, events = _two_victims()
    approvals_around, asked = _approved_at("12:05", "12:40")
    find_spans(ctx, events, [], approvals_around)
    [span] = ctx.outages
    assert span.tids == {"10000001", "10000002"}
    assert ctx.outage_at(_at("12:19")) is span and ctx.outage_at(_at("12:28")) is span
    assert ctx.outage_at(_at("12:05")) is None and ctx.outage_at(_at("12:40")) is None
    assert asked[0] == (_at("12:19"), _at("12:19"))  # one lookup for the run, then the widening


def test_a_payment_approved_between_two_refusals_means_the_host_was_serving() -> None:
    ctx, events = _two_victims()
    approvals_around, asked = _approved_at("12:05", "12:22", "12:40")
    find_spans(ctx, events, [], approvals_around)
    assert ctx.outages == [] and asked == [(_at("12:19"), _at("12:19")), (_at("12:28"), _at("12:28"))]


def test_one_terminal_refused_again_and_again_is_not_an_outage() -> None:
    ctx = FleetContext(_at("00:00"), _at("23:59"))
    ctx.active = {f"1000000{n}" for n in range(10)}
    ctx.assigned_comm = FLEET_ENDPOINT
    events = [_connect_failed("10000001", hhmm) for hhmm in ("12:19", "12:24", "12:28")]
    find_spans(ctx, events, [], _approved_at("12:05")[0])
    assert ctx.outages == []


def test_only_refusals_at_the_fleets_known_endpoint_count() -> None:
    timeouts = _two_victims()[1][:1] + [_connect_failed("10000002", "12:28", error="TimeoutError")]
    elsewhere = _two_victims()[1][:1] + [_connect_failed("10000002", "12:28", port=7001)]
    for events in (timeouts, elsewhere):
        ctx = _two_victims()[0]
        find_spans(ctx, events, [], _approved_at("12:05")[0])
        assert ctx.outages == [], events
    ctx, events = _two_victims()
    ctx.assigned_comm = None  # no heartbeat says where the fleet connects
    find_spans(ctx, events, [], _approved_at("12:05")[0])
    assert ctx.outages == []


def test_refusals_while_the_host_turned_connections_away_are_its_capacity_not_an_outage() -> None:
    turned_away = [EventRow(_at("12:2" + str(n)), "host", "connection_refused", None, None, {}) for n in range(3)]
    ctx, events = _two_victims(*turned_away)
    find_spans(ctx, events, [], _approved_at("12:05")[0])
    assert ctx.outages == [] and ctx.host_busy
