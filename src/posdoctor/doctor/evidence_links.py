"""What ties a terminal's evidence to rows filed under other keys: the typo'd TID its
device used, TMS history recorded per merchant or fleet-wide, the terminals registered
on the same device, whether a MID the host refused is registered at all."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from posdoctor.doctor.evidence import (
    EVENT_COLUMNS,
    TERMINAL_COLS,
    TerminalEvidence,
    Window,
    _as_dict,
    _chunks,
    _event_rows,
    _load_rows,
)
from posdoctor.doctor.records import EventRow
from posdoctor.store.models import Event, JournalEntry, Merchant, Terminal

__all__ = ["link_evidence"]


def _serial_terminals(conn: Any, serials: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    serials = [s for s in set(serials) if s]
    for chunk in _chunks(serials):
        for r in conn.execute(select(*[getattr(Terminal, c) for c in TERMINAL_COLS]).where(Terminal.serial.in_(chunk))):
            found[r.serial].append(_as_dict(r, TERMINAL_COLS))
    return found


def _reported_serials(ev: TerminalEvidence) -> set[str]:
    serials = {e.detail.get("serial") for e in ev.heartbeats()}
    serials.add((ev.terminal or {}).get("serial"))
    return {s for s in serials if s}


ALIAS_SLACK = timedelta(seconds=3)


def _alias_candidates(conn: Any, ev: TerminalEvidence) -> set[str]:
    """TIDs this device used instead of its own: the host journal holds 97 answers for an
    unregistered TID at the moments this terminal reported receiving 97, while the host
    has no 97 under the terminal's own TID."""
    aliases = {str(b.detail["tid"]) for b in ev.heartbeats() if b.detail.get("tid") and b.detail["tid"] != ev.tid}
    if any(r.rc == "97" for r in ev.journal):
        return aliases
    moments = [e.at for e in ev.terminal_events("host.rc.97")]
    if not moments:
        return aliases
    registered = select(Terminal.tid)
    rows = conn.execute(select(JournalEntry.tid, JournalEntry.at).where(
        JournalEntry.direction == "in", JournalEntry.rc == "97", JournalEntry.tid != ev.tid,
        JournalEntry.tid.not_in(registered),
        JournalEntry.at >= min(moments) - ALIAS_SLACK, JournalEntry.at <= max(moments) + ALIAS_SLACK))
    for tid, at in rows:
        if tid and any(abs(at - m) <= ALIAS_SLACK for m in moments):
            aliases.add(tid)
    return aliases


def _attach_aliases(conn: Any, evidences: dict[str, TerminalEvidence], window: Window) -> None:
    """A device that sends other IDs than its registered ones (typo'd TID): the journal
    rows under the TID it used belong to this terminal's evidence."""
    for ev in evidences.values():
        if ev.terminal is not None:
            ev.aliases = _alias_candidates(conn, ev) - {ev.tid}
    aliased = {alias for ev in evidences.values() for alias in ev.aliases}
    if not aliased:
        return
    loaded = _load_rows(conn, sorted(aliased), window)
    for ev in evidences.values():
        for alias in ev.aliases:
            other = loaded[alias]
            ev.journal = sorted(ev.journal + other.journal, key=lambda r: r.at)
            ev.events = sorted(ev.events + [e for e in other.events if e.source == "host"], key=lambda e: e.at)


def _global_event_owner(e: EventRow) -> tuple[str, str] | None:
    """(key kind, value) a TMS event without a TID belongs to; None = the whole fleet."""
    d = e.detail
    entity = d.get("entity")
    if entity in ("merchant", "account") and d.get("id"):
        return "mid", str(d["id"])
    if entity == "terminal" and d.get("id"):
        return "tid", str(d["id"])
    if entity == "device" and d.get("id"):
        return "serial", str(d["id"])
    if entity == "operator" and d.get("id"):
        return "tid", str(d["id"]).split("/")[0]
    if d.get("tid"):
        return "tid", str(d["tid"])
    if d.get("mid"):
        return "mid", str(d["mid"])
    return None


def _attach_global_events(conn: Any, evidences: dict[str, TerminalEvidence], window: Window) -> None:
    """TMS history recorded without a TID (merchant/account status, payouts, policies,
    campaigns) goes to the terminals it concerns."""
    rows = _event_rows(conn.execute(select(*EVENT_COLUMNS).where(
        Event.tid.is_(None), Event.source == "tms", Event.at >= window.since, Event.at < window.until,
    ).order_by(Event.at, Event.id)))
    if not rows:
        return
    by_owner: dict[tuple[str, str], list[EventRow]] = defaultdict(list)
    fleet_wide: list[EventRow] = []
    for e in rows:
        owner = _global_event_owner(e)
        if owner is None:
            fleet_wide.append(e)
        else:
            by_owner[owner].append(e)
    for ev in evidences.values():
        term = ev.terminal or {}
        extra = list(fleet_wide)
        for key in (("tid", ev.tid), ("mid", term.get("mid")), ("serial", term.get("serial"))):
            extra += by_owner.get(key, [])  # type: ignore[arg-type]
        if extra:
            ev.events = sorted(ev.events + extra, key=lambda e: e.at)


def link_evidence(conn: Any, evidences: dict[str, TerminalEvidence], window: Window) -> None:
    _attach_aliases(conn, evidences, window)
    _attach_global_events(conn, evidences, window)
    by_serial = _serial_terminals(conn, {s for ev in evidences.values() for s in _reported_serials(ev)})
    for ev in evidences.values():
        seen: dict[str, dict[str, Any]] = {}
        for serial in _reported_serials(ev):
            for row in by_serial.get(serial, []):
                seen[row["tid"]] = row
        ev.serial_terminals = [row for tid, row in sorted(seen.items()) if tid != ev.tid]
    _attach_mentioned_mids(conn, evidences)


MID_MENTION = re.compile(r"\b(\d{15})\b")


def _attach_mentioned_mids(conn: Any, evidences: dict[str, TerminalEvidence]) -> None:
    """Merchant IDs named in refusal reasons (the MID a terminal sent): registered or not."""
    mentioned = {m for ev in evidences.values() for r in ev.journal if r.rc == "03"
                 for m in MID_MENTION.findall(r.refusal_reason())}
    if not mentioned:
        return
    found = {r.mid: r.status for r in conn.execute(
        select(Merchant.mid, Merchant.status).where(Merchant.mid.in_(sorted(mentioned))))}
    for ev in evidences.values():
        ev.known_mids = found
