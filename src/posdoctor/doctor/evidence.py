"""Evidence loading: what the doctor may read, from the store only.

One window (default: the 24 hours ending at the newest evidence in the store, so a
simulated day is covered as well as a live one). For one terminal or the whole fleet:
journal rows (route, answer code, step verdicts), events of every source (host,
terminal uploads, TMS history, the doctor's own probes and fixes), registry rows and
working-key history. Fleet loads are bulk queries grouped by TID, never one query per
terminal. Nothing a simulator injected is read: only rows the producers wrote.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, null, or_, select, type_coerce
from sqlalchemy.types import JSON

from posdoctor.doctor.fleet import FleetContext, build_fleet_context
from posdoctor.doctor.records import EventRow, JournalRow
from posdoctor.store.models import Device, Event, JournalEntry, Merchant, Reversal, Terminal, TerminalKey, Txn

__all__ = ["TerminalEvidence", "Window", "default_window", "load_terminal", "load_fleet", "EventRow", "JournalRow",
           "FleetContext"]

DEFAULT_SPAN = timedelta(hours=24)
CHUNK = 500
WORKING_KEYS = ("PIK", "MAK", "TDK")


@dataclass(frozen=True, slots=True)
class Window:
    since: datetime
    until: datetime


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def default_window(store: Any, since: datetime | None = None, until: datetime | None = None) -> Window:
    """The window asked for; missing ends default to the newest evidence and 24 h before it."""
    since, until = _aware(since), _aware(until)
    if until is None:
        with store.engine.connect() as conn:
            newest = [conn.scalar(select(func.max(JournalEntry.at))), conn.scalar(select(func.max(Event.at)))]
        newest_aware = [_aware(_as_datetime(n)) for n in newest if n is not None]
        until = (max(newest_aware) + timedelta(seconds=1)) if newest_aware else datetime.now(UTC)
        if since is not None and until <= since:
            until = since + DEFAULT_SPAN
    if since is None:
        since = until - DEFAULT_SPAN
    return Window(since, until)


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


@dataclass(slots=True)
class TerminalEvidence:
    """Everything known about one terminal in the window (rows oldest first)."""

    tid: str
    window: Window
    terminal: dict[str, Any] | None = None
    merchant: dict[str, Any] | None = None
    device: dict[str, Any] | None = None
    serial_terminals: list[dict[str, Any]] = field(default_factory=list)
    aliases: set[str] = field(default_factory=set)
    known_mids: dict[str, str] = field(default_factory=dict)
    index: dict[Any, list[EventRow]] | None = None
    indexed: int = -1
    """How many events `index` was built from (the events list only grows)."""
    journal: list[JournalRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)
    reversals: list[dict[str, Any]] = field(default_factory=list)
    txns: list[dict[str, Any]] = field(default_factory=list)

    # --- journal ---------------------------------------------------------------------
    def answers(self, *codes: str, routes: Iterable[str] | None = None) -> list[JournalRow]:
        wanted = set(routes) if routes is not None else None
        return [r for r in self.journal if r.rc in codes and (wanted is None or r.route in wanted)]

    def failures(self) -> list[JournalRow]:
        return [r for r in self.journal if r.rc not in (None, "00")]

    def sign_ins(self) -> list[JournalRow]:
        return [r for r in self.journal if r.route and r.route.startswith("sign_in")]

    def last_approved_sign_in(self) -> JournalRow | None:
        ok = [r for r in self.sign_ins() if r.rc == "00"]
        return ok[-1] if ok else None

    # --- events ----------------------------------------------------------------------
    def _index(self) -> dict[Any, list[EventRow]]:
        """Events by (source, kind) and terminal events by code, built once per load."""
        if self.index is None or self.indexed != len(self.events):
            index: dict[Any, list[EventRow]] = defaultdict(list)
            for e in self.events:
                index[(e.source, e.kind)].append(e)
                if e.kind == "terminal_event":
                    index[("code", e.code)].append(e)
            self.index, self.indexed = index, len(self.events)
        return self.index

    def of(self, source: str | None = None, kind: str | None = None) -> list[EventRow]:
        if source is not None and kind is not None:
            return list(self._index().get((source, kind), ()))
        return [e for e in self.events
                if (source is None or e.source == source) and (kind is None or e.kind == kind)]

    def terminal_events(self, *codes: str, prefix: str | None = None) -> list[EventRow]:
        index = self._index()
        if prefix is None:
            found = [e for code in codes for e in index.get(("code", code), ())]
            return sorted(found, key=lambda e: e.at) if len(codes) > 1 else list(found)
        wanted = set(codes)
        return [e for e in index.get(("terminal", "terminal_event"), ())
                if e.code in wanted or str(e.code or "").startswith(prefix)]

    def heartbeats(self) -> list[EventRow]:
        return self.of("terminal", "heartbeat")

    def last_heartbeat(self) -> EventRow | None:
        beats = self.heartbeats()
        return beats[-1] if beats else None

    def self_checks(self) -> list[EventRow]:
        return self.of("terminal", "self_check")

    def tms(self, kind: str, code: str | None = None) -> list[EventRow]:
        return [e for e in self._index().get(("tms", kind), ()) if code is None or e.code == code]

    def host_events(self, *kinds: str) -> list[EventRow]:
        return [e for e in self.events if e.source == "host" and (not kinds or e.kind in kinds)]

    def counters(self) -> dict[str, int]:
        """The newest heartbeat's error counters (empty without heartbeats)."""
        beat = self.last_heartbeat()
        return dict(beat.detail.get("error_counters") or {}) if beat else {}

    def counter_rise(self, name: str) -> int:
        """How much a heartbeat error counter rose over the window (first to last)."""
        values = [int((b.detail.get("error_counters") or {}).get(name, 0) or 0) for b in self.heartbeats()]
        if not values:
            return 0
        return max(values[-1] - values[0], values[-1] if len(values) == 1 else 0)

    # --- keys ------------------------------------------------------------------------
    def last_key_issue(self, kind: str = "MAK") -> datetime | None:
        times = [k["issued_at"] for k in self.keys if k["kind"] == kind]
        return max(times) if times else None

    @property
    def registered(self) -> bool:
        return self.terminal is not None

    def has_activity(self) -> bool:
        return bool(self.journal or self.events)


# --- row conversion --------------------------------------------------------------------
# Step verdicts matter only where something was refused: approved rows skip the JSON.
_STEPS_IF_REFUSED = type_coerce(case((and_(JournalEntry.direction == "in", or_(JournalEntry.rc.is_(None), JournalEntry.rc != "00")),
                          JournalEntry.steps), else_=null()), JSON).label("steps")
JOURNAL_COLUMNS = (JournalEntry.id, JournalEntry.at, JournalEntry.tid, JournalEntry.mid, JournalEntry.direction,
                   JournalEntry.route, JournalEntry.mti, JournalEntry.stan, JournalEntry.rc, _STEPS_IF_REFUSED,
                   JournalEntry.latency_ms)
EVENT_COLUMNS = (Event.id, Event.at, Event.source, Event.kind, Event.tid, Event.code, Event.detail)


def _journal_rows(rows: Iterable[Any]) -> list[JournalRow]:
    """`in` rows carry the request and verdicts; the `out` row's latency is merged in."""
    ins: list[JournalRow] = []
    pending: dict[tuple[str | None, str | None, str | None], JournalRow] = {}
    for r in rows:
        if r.direction == "in":
            row = JournalRow(r.at, r.tid, r.mid, r.route, r.mti, r.stan, r.rc, r.steps or [], None)
            ins.append(row)
            pending[(r.tid, r.stan, r.route)] = row
        else:
            match = pending.pop((r.tid, r.stan, r.route), None)
            if match is not None:
                match.latency_ms = r.latency_ms
    return ins


def _event_rows(rows: Iterable[Any]) -> list[EventRow]:
    return [EventRow(r.at, r.source, r.kind, r.tid, r.code, r.detail or {}) for r in rows]


def _as_dict(row: Any, columns: Sequence[str]) -> dict[str, Any]:
    return {c: getattr(row, c) for c in columns}


TERMINAL_COLS = ("tid", "mid", "serial", "model", "status", "status_reason", "batch_no", "last_signin_at",
                 "created_at")
MERCHANT_COLS = ("mid", "name", "status", "status_reason")


def _chunks(items: Sequence[str], size: int = CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- bulk loading ------------------------------------------------------------------------
def _load_rows(conn: Any, tids: Sequence[str], window: Window) -> dict[str, TerminalEvidence]:
    """Journal, events, keys, reversals, transactions for many TIDs: a few queries per chunk."""
    out = {tid: TerminalEvidence(tid, window) for tid in tids}
    since, until = window.since, window.until
    for chunk in _chunks(list(tids)):
        journal = conn.execute(select(*JOURNAL_COLUMNS).where(
            JournalEntry.tid.in_(chunk), JournalEntry.at >= since, JournalEntry.at < until,
        ).order_by(JournalEntry.at, JournalEntry.id))
        by_tid: dict[str, list[Any]] = defaultdict(list)
        for row in journal:
            by_tid[row.tid].append(row)
        for tid, rows in by_tid.items():
            out[tid].journal = _journal_rows(rows)
        for row in _events_of(conn, chunk, since, until):
            out[row.tid].events.append(EventRow(row.at, row.source, row.kind, row.tid, row.code, row.detail or {}))
        keys = conn.execute(select(TerminalKey.tid, TerminalKey.kind, TerminalKey.issued_at, TerminalKey.active)
                            .where(TerminalKey.tid.in_(chunk), TerminalKey.kind.in_(("TMK", *WORKING_KEYS)))
                            .order_by(TerminalKey.id))
        for row in keys:
            out[row.tid].keys.append({"kind": row.kind, "issued_at": row.issued_at, "active": row.active})
        reversals = conn.execute(select(Reversal.tid, Reversal.batch_no, Reversal.stan, Reversal.reason,
                                        Reversal.amount, Reversal.at, Reversal.orig_txn_id)
                                 .where(Reversal.tid.in_(chunk), Reversal.at >= since, Reversal.at < until))
        for row in reversals:
            out[row.tid].reversals.append(row._asdict())
        txns = conn.execute(select(Txn.id, Txn.tid, Txn.batch_no, Txn.stan, Txn.rrn, Txn.kind, Txn.amount,
                                   Txn.status, Txn.rc, Txn.at, Txn.pan_masked)
                            .where(Txn.tid.in_(chunk), Txn.at >= since, Txn.at < until).order_by(Txn.id))
        for row in txns:
            out[row.tid].txns.append(row._asdict())
        _load_registry(conn, chunk, out)
    return out


def _events_of(conn: Any, tids: Sequence[str], since: datetime, until: datetime) -> list[Any]:
    """Every event of these terminals, but of their heartbeats only the first, the last and
    the degraded ones (the rules compare first and last; the rest repeat them)."""
    window = (Event.tid.in_(tids), Event.at >= since, Event.at < until)
    rows = list(conn.execute(select(*EVENT_COLUMNS).where(*window, Event.kind != "heartbeat")))
    ends = select(func.min(Event.id), func.max(Event.id)).where(*window, Event.kind == "heartbeat").group_by(Event.tid)
    ids = {i for pair in conn.execute(ends) for i in pair}
    beats = select(*EVENT_COLUMNS).where(*window, Event.kind == "heartbeat",
                                         or_(Event.id.in_(ids), Event.code != "ok")) if ids else None
    if beats is not None:
        rows += list(conn.execute(beats))
    rows.sort(key=lambda r: (r.at, r.id))
    return rows


def _load_registry(conn: Any, tids: Sequence[str], out: dict[str, TerminalEvidence]) -> None:
    rows = list(conn.execute(select(*[getattr(Terminal, c) for c in TERMINAL_COLS]).where(Terminal.tid.in_(tids))))
    mids = {r.mid for r in rows}
    merchants = {r.mid: _as_dict(r, MERCHANT_COLS) for r in conn.execute(
        select(*[getattr(Merchant, c) for c in MERCHANT_COLS]).where(Merchant.mid.in_(mids)))} if mids else {}
    serials = {r.serial for r in rows}
    devices = {r.serial: {"serial": r.serial, "model": r.model} for r in conn.execute(
        select(Device.serial, Device.model).where(Device.serial.in_(serials)))} if serials else {}
    for r in rows:
        ev = out[r.tid]
        ev.terminal = _as_dict(r, TERMINAL_COLS)
        ev.merchant = merchants.get(r.mid)
        ev.device = devices.get(r.serial)


def _finish(conn: Any, evidences: dict[str, TerminalEvidence], window: Window) -> None:
    from posdoctor.doctor.evidence_links import link_evidence  # it builds on this module

    link_evidence(conn, evidences, window)


def load_terminal(store: Any, tid: str, window: Window) -> TerminalEvidence:
    """One terminal's evidence (and what its device reported under other IDs)."""
    with store.engine.connect() as conn:
        evidences = _load_rows(conn, [tid], window)
        _finish(conn, evidences, window)
    return evidences[tid]


def load_many(store: Any, tids: Sequence[str], window: Window) -> dict[str, TerminalEvidence]:
    with store.engine.connect() as conn:
        evidences = _load_rows(conn, list(tids), window)
        _finish(conn, evidences, window)
    return evidences


def load_fleet(store: Any, window: Window) -> tuple[dict[str, TerminalEvidence], FleetContext]:
    """Fleet aggregates, then full evidence for every terminal with a sign of trouble."""
    context = build_fleet_context(store, window)
    evidences = load_many(store, sorted(context.suspect_tids), window)
    return evidences, context
