"""Fleet-level aggregates: what many terminals show at the same time.

Built with a handful of grouped queries over the whole window (never per terminal):
answer codes and latencies per time bucket, terminals reporting the host unreachable
or silent per bucket, the newest heartbeat of every terminal (version, comm settings,
site), upgrade roll-outs per version. From these come the fleet-wide explanations the
per-terminal rules consult (host outage windows, overload windows, defective versions,
site power losses), and the set of terminals that show any sign of trouble.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, func, not_, or_, select

from posdoctor.doctor.records import EventRow
from posdoctor.store.models import Event, JournalEntry, Merchant, Terminal

BUCKET_S = 300
SILENT = timedelta(hours=3)
"""A terminal whose heartbeats stopped this long before the newest one has gone silent."""
UNREACHABLE_CODES = ("comm.connect_failed", "comm.connect_timeout")
UNREACHABLE_RC = ("96",)
PAYMENT_ROUTES = ("sale", "balance", "refund")
"""Requests the issuer decides: one approved shows the host serving (neither stopped nor
answering 96 to everything)."""
SLOW_CODES = ("comm.receive_failed",)
POWER_CODES = ("device.power",)
OK_TERMINAL_PREFIX = "ok."
NOISE_TERMINAL_CODES = ("reversal.in_progress", "reversal.done", "reversal.saved", "host.requirement",
                        "device.self_check_ok")
"""The telemetry's own list of events that are not errors."""


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of time in which many terminals showed the same thing."""

    start: datetime
    end: datetime
    tids: frozenset[str]
    what: str

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(slots=True)
class VersionStats:
    version: str
    terminals: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)
    rollout: datetime | None = None
    other_rate: float = 0.0
    """The failure rate of the terminals not on this version."""

    @property
    def rate(self) -> float:
        return len(self.failing) / len(self.terminals) if self.terminals else 0.0


@dataclass(slots=True)
class FleetContext:
    since: datetime
    until: datetime
    active: set[str] = field(default_factory=set)
    registered: int = 0
    suspect_tids: set[str] = field(default_factory=set)
    outages: list[Span] = field(default_factory=list)
    overloads: list[Span] = field(default_factory=list)
    site_power: list[Span] = field(default_factory=list)
    versions: dict[str, VersionStats] = field(default_factory=dict)
    defective_versions: dict[str, VersionStats] = field(default_factory=dict)
    assigned_comm: tuple[str, int] | None = None
    assigned_tpdu: str | None = None
    latest_beat: dict[str, EventRow] = field(default_factory=dict)
    failing_by_tid: dict[str, Counter[str]] = field(default_factory=dict)
    answered_ok: set[str] = field(default_factory=set)
    marks_by_tid: dict[str, list[tuple[datetime, str, str | None]]] = field(default_factory=dict)
    """Requests the host could not serve (96 and the like): (time, answer code, route)."""
    signals_by_tid: dict[str, list[EventRow]] = field(default_factory=dict)
    inactive_tids: set[str] = field(default_factory=set)
    common_apps: set[str] = field(default_factory=set)
    host_busy: list[Span] = field(default_factory=list)
    newest_beat: datetime | None = None

    @property
    def size(self) -> int:
        return max(len(self.active), 1)

    def outage_at(self, at: datetime) -> Span | None:
        return next((s for s in self.outages if s.covers(at)), None)

    def overload_at(self, at: datetime) -> Span | None:
        return next((s for s in self.overloads if s.covers(at)), None)

    def power_at(self, at: datetime, tid: str) -> Span | None:
        return next((s for s in self.site_power if s.covers(at) and tid in s.tids), None)

    def others_succeeding(self, tid: str) -> int:
        return len(self.answered_ok) - (tid in self.answered_ok)


def _bucket_time(bucket: int) -> datetime:
    return datetime.fromtimestamp(int(bucket) * BUCKET_S, UTC)


def _bucket_of(at: datetime) -> int:
    return int(at.timestamp()) // BUCKET_S


def _interesting_events(since: datetime, until: datetime, kinds: list[str]) -> Any:
    """Every event in the window except heartbeats (read separately) and the plain
    'all is well' reports."""
    routine = or_(
        and_(Event.kind == "heartbeat", Event.code == "ok"),
        and_(Event.kind == "self_check", Event.code == "ok"),
        and_(Event.kind == "terminal_event",
             or_(Event.code.like(OK_TERMINAL_PREFIX + "%"), Event.code.in_(NOISE_TERMINAL_CODES))),
    )
    return (select(Event.id, Event.at, Event.source, Event.kind, Event.tid, Event.code, Event.detail)
            .where(Event.kind.in_(kinds), Event.at >= since, Event.at < until, not_(routine))
            .order_by(Event.at, Event.id))


def build_fleet_context(store: Any, window: Any) -> FleetContext:
    ctx = FleetContext(window.since, window.until)
    with store.engine.connect() as conn:
        _read_journal(conn, ctx)
        kinds = [k for k in _event_kinds(conn) if k != "heartbeat"]
        events = [EventRow(r.at, r.source, r.kind, r.tid, r.code, r.detail or {})
                  for r in conn.execute(_interesting_events(ctx.since, ctx.until, kinds))]
        _read_heartbeats(conn, ctx)
        _read_registry(conn, ctx)
        _note_merchant_suspects(conn, ctx, events)
        checks = conn.execute(select(Event.tid, Event.at).where(
            Event.kind == "self_check", Event.at >= ctx.since, Event.at < ctx.until).order_by(Event.at)).all()
        _note_event_suspects(ctx, events)
        ctx.suspect_tids.update(set(ctx.latest_beat) - ctx.answered_ok)  # reporting, yet nothing approved
        from posdoctor.doctor.fleet_spans import find_spans  # it builds on this module's types

        find_spans(ctx, events, list(checks), partial(_approvals_around, conn, ctx))
    return ctx


def _event_kinds(conn: Any) -> list[str]:
    """The distinct event kinds, one (kind, at) index seek per kind: `SELECT DISTINCT`
    read the whole index, every event ever recorded, on each diagnosis."""
    kinds: list[str] = []
    kind = conn.scalar(select(func.min(Event.kind)))
    while kind is not None:
        kinds.append(kind)
        kind = conn.scalar(select(func.min(Event.kind)).where(Event.kind > kind))
    return kinds


def _approvals_around(conn: Any, ctx: FleetContext, first: datetime, last: datetime
                      ) -> tuple[datetime | None, datetime | None]:
    """The last payment the host approved before `first` and the first one after `last`
    (None: none in the window). Two index lookups, however large the fleet."""
    approved = and_(JournalEntry.rc == "00", JournalEntry.route.in_(PAYMENT_ROUTES))
    before = conn.scalar(select(JournalEntry.at).where(approved, JournalEntry.at >= ctx.since, JournalEntry.at < first)
                         .order_by(JournalEntry.at.desc()).limit(1))
    after = conn.scalar(select(JournalEntry.at).where(approved, JournalEntry.at > last, JournalEntry.at < ctx.until)
                        .order_by(JournalEntry.at).limit(1))
    return before, after


def _read_journal(conn: Any, ctx: FleetContext) -> None:
    """Answer codes per terminal (one grouped scan) and the moments of 96 answers."""
    in_window = and_(JournalEntry.at >= ctx.since, JournalEntry.at < ctx.until)
    for tid, rc in conn.execute(select(JournalEntry.tid, JournalEntry.rc).where(in_window)
                                .group_by(JournalEntry.tid, JournalEntry.rc)):
        if tid is None:
            continue
        ctx.active.add(tid)
        if rc == "00":
            ctx.answered_ok.add(tid)
        else:
            ctx.failing_by_tid.setdefault(tid, Counter())[rc or "none"] += 1
    if any(rc in UNREACHABLE_RC for counts in ctx.failing_by_tid.values() for rc in counts):
        rows = conn.execute(select(JournalEntry.tid, JournalEntry.at, JournalEntry.rc, JournalEntry.route)
                            .where(in_window, JournalEntry.direction == "in", JournalEntry.rc.in_(UNREACHABLE_RC))).all()
        for r in rows:
            ctx.marks_by_tid.setdefault(r.tid, []).append((r.at, r.rc, r.route))


def _beat_columns(table: Any) -> list[Any]:
    """The few heartbeat fields the fleet view needs, extracted by the database as text
    (parsing 10,000 whole heartbeat documents in Python is what made this slow)."""
    detail = table.detail
    return [table.at, table.tid, table.code,
            detail["app_version"].as_string().label("app_version"),
            detail[("comm", "host")].as_string().label("comm_host"),
            detail[("comm", "port")].as_string().label("comm_port"),
            detail[("comm", "tpdu")].as_string().label("comm_tpdu"),
            detail["site"].as_string().label("site"),
            detail["installed_apps"].as_string().label("installed_apps"),
            detail[("error_counters", "crash")].as_string().label("crashes"),
            detail[("error_counters", "watchdog")].as_string().label("watchdogs")]


def _beat_detail(r: Any) -> dict[str, Any]:
    detail: dict[str, Any] = {"app_version": r.app_version, "site": r.site,
                              "error_counters": {"crash": int(r.crashes or 0), "watchdog": int(r.watchdogs or 0)}}
    if r.comm_host:
        detail["comm"] = {"host": r.comm_host, "port": r.comm_port, "tpdu": r.comm_tpdu}
    if r.installed_apps:
        try:
            detail["installed_apps"] = json.loads(r.installed_apps)
        except ValueError:
            detail["installed_apps"] = []
    return {k: v for k, v in detail.items() if v is not None}


def _latest_beat_rows(conn: Any, ctx: FleetContext) -> list[Any]:
    """Each terminal's newest heartbeat in the window: from the TMS's one-row-per-terminal
    telemetry table when the window reaches the present, else from the heartbeat events."""
    from posdoctor.store.models_tms import Telemetry

    rows = conn.execute(select(*_beat_columns(Telemetry))).all()
    if rows and all(r.at < ctx.until for r in rows):
        return [r for r in rows if r.at >= ctx.since]
    newest = (select(func.max(Event.id).label("id"))
              .where(Event.kind == "heartbeat", Event.at >= ctx.since, Event.at < ctx.until)
              .group_by(Event.tid).subquery())
    return conn.execute(select(*_beat_columns(Event)).join(newest, Event.id == newest.c.id)).all()


def _read_heartbeats(conn: Any, ctx: FleetContext) -> None:
    """The newest heartbeat of every terminal: versions, comm settings, apps, sites."""
    comms: Counter[tuple[str, int]] = Counter()
    tpdus: Counter[str] = Counter()
    apps: Counter[str] = Counter()
    for r in _latest_beat_rows(conn, ctx):
        if r.tid is None:
            continue
        detail = _beat_detail(r)
        beat = EventRow(r.at, "terminal", "heartbeat", r.tid, r.code, detail)
        ctx.latest_beat[r.tid] = beat
        ctx.active.add(r.tid)
        if r.code not in (None, "ok"):
            ctx.suspect_tids.add(r.tid)
        comm = detail.get("comm") or {}
        if comm.get("host") and comm.get("port"):
            comms[(str(comm["host"]), int(comm["port"]))] += 1
        if comm.get("tpdu"):
            tpdus[str(comm["tpdu"]).upper()] += 1
        apps.update(set(detail.get("installed_apps") or []))
        version = detail.get("app_version")
        if version:
            ctx.versions.setdefault(version, VersionStats(version)).terminals.add(r.tid)
    if comms:
        ctx.assigned_comm = comms.most_common(1)[0][0]
    if tpdus:
        ctx.assigned_tpdu = tpdus.most_common(1)[0][0]
    ctx.common_apps = {app for app, n in apps.items() if n >= 0.5 * max(len(ctx.latest_beat), 1)}
    _note_silent(ctx)


def _note_silent(ctx: FleetContext) -> None:
    """Terminals whose heartbeats stopped well before the others' did."""
    if len(ctx.latest_beat) < 2:
        return
    newest = max(b.at for b in ctx.latest_beat.values())
    ctx.newest_beat = newest
    for tid, beat in ctx.latest_beat.items():
        if newest - beat.at > SILENT:
            ctx.suspect_tids.add(tid)


def _read_registry(conn: Any, ctx: FleetContext) -> None:
    ctx.registered = int(conn.scalar(select(func.count()).select_from(Terminal)) or 0)
    for (tid,) in conn.execute(select(Terminal.tid).where(Terminal.status != "active")):
        ctx.inactive_tids.add(tid)
    unusable = select(Merchant.mid).where(Merchant.status != "active")
    for (tid,) in conn.execute(select(Terminal.tid).where(Terminal.mid.in_(unusable))):
        ctx.inactive_tids.add(tid)
    ctx.suspect_tids.update(ctx.inactive_tids)


def _note_merchant_suspects(conn: Any, ctx: FleetContext, events: Iterable[EventRow]) -> None:
    """TMS history kept per merchant (payouts held, account or merchant status): its terminals."""
    mids = set()
    for e in events:
        if e.tid is not None or e.source != "tms":
            continue
        if e.kind == "payout" and e.code == "held" and e.detail.get("mid"):
            mids.add(str(e.detail["mid"]))
        elif e.kind == "status_change" and e.detail.get("entity") in ("merchant", "account") and e.detail.get("id"):
            mids.add(str(e.detail["id"]))
    for chunk in [sorted(mids)[i:i + 500] for i in range(0, len(mids), 500)]:
        for (tid,) in conn.execute(select(Terminal.tid).where(Terminal.mid.in_(chunk))):
            ctx.suspect_tids.add(tid)


def _note_event_suspects(ctx: FleetContext, events: Iterable[EventRow]) -> None:
    ctx.suspect_tids.update(ctx.failing_by_tid)
    self_checks: Counter[str] = Counter()
    for e in events:
        if e.tid is None:
            continue
        if e.kind == "upgrade_report" and e.detail.get("ok", True) and e.code not in ("postpone", "refused"):
            continue
        if e.kind == "payout" and e.code in ("scheduled", "paid", "released"):
            continue  # the normal settlement cycle: not a failure
        if e.kind == "self_check":
            faulty = any(v not in ("ok", "low_battery") for v in (e.detail.get("peripherals") or {}).values())
            self_checks[e.tid] += 1
            if not faulty and self_checks[e.tid] < 2:
                continue  # a factory-fresh terminal before its first key download
        if e.kind == "status_change" and e.code in ("active", "valid"):
            continue
        ctx.suspect_tids.add(e.tid)
        ctx.signals_by_tid.setdefault(e.tid, []).append(e)
