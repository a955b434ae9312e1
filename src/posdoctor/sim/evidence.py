"""What the store holds about one terminal, reduced to a comparable set of markers.

Used by the tests and by `evaluate` (when no doctor is available) to check that every
injected fault left evidence that differs from a healthy terminal's. It reads only what
the doctor may read: journal rows, events (host, terminal, TMS), payouts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from posdoctor.store.models import Event, JournalEntry

__all__ = ["evidence_markers", "fleet_markers"]

QUIET_CODES = frozenset({"device.self_check_ok", "reversal.in_progress", "reversal.done", "reversal.saved",
                         "host.requirement"})
NORMAL_HEARTBEAT_KEYS = ("app_version", "firmware_version", "model", "serial", "battery_pct", "voltage",
                         "uptime_s", "params_version", "last_errors", "error_counters", "at", "tid")


def _is_error(code: str | None) -> bool:
    return bool(code) and not code.startswith("ok.") and code not in QUIET_CODES


def evidence_markers(store: Any, tid: str, mid: str | None = None) -> set[tuple[str, ...]]:
    """Markers of everything unusual in `tid`'s evidence (empty for a quiet healthy day
    apart from its heartbeat count and routes)."""
    markers: set[tuple[str, ...]] = set()
    with store.engine.connect() as conn:
        rows = conn.execute(select(JournalEntry.direction, JournalEntry.route, JournalEntry.rc)
                            .where(JournalEntry.tid == tid)).all()
        ids = [tid] + ([mid] if mid else [])
        events = conn.execute(select(Event.source, Event.kind, Event.code, Event.detail, Event.tid)
                              .where(or_(Event.tid == tid, Event.tid.is_(None)))).all()
    routes = set()
    for direction, route, rc in rows:
        routes.add(route or "?")
        if direction == "out" and rc not in (None, "00"):
            markers.add(("rc", rc))
        if direction == "in" and rc is None:
            markers.add(("unanswered", route or "?"))
    if not rows:
        markers.add(("no_journal",))
    for needed in ("sign_in_004", "settlement", "sign_off"):
        if rows and needed not in routes:
            markers.add(("missing_route", needed))
    heartbeats = 0
    for source, kind, code, detail, event_tid in events:
        detail = detail or {}
        if event_tid is None:
            if source == "tms" and str(detail.get("id")) in ids:
                markers.add(("tms", kind, str(code)))
            if source == "tms" and kind == "payout" and detail.get("mid") in ids and code != "scheduled":
                markers.add(("payout", str(code)))
            continue
        if source == "host":
            markers.add(("host", kind))
        elif kind == "terminal_event" and _is_error(code):
            markers.add(("event", str(code)))
        elif kind == "heartbeat":
            heartbeats += 1
            if code != "ok":
                markers.add(("heartbeat", str(code)))
            markers |= _heartbeat_markers(detail)
        elif kind == "self_check" and code != "ok":
            markers.add(("self_check", str(code)))
        elif source == "tms":
            markers.add(("tms", kind, str(code)))
    markers.add(("heartbeats", str(heartbeats)))
    return markers


def _heartbeat_markers(beat: dict[str, Any]) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for name, status in (beat.get("peripherals") or {}).items():
        if status != "ok":
            found.add(("peripheral", name, str(status)))
    for name, count in (beat.get("error_counters") or {}).items():
        if count:
            found.add(("counter", name))
    apps = beat.get("installed_apps") or []
    for app in apps:
        if not str(app).startswith("cup_payment"):
            found.add(("app", str(app).split(":")[0]))
    if beat.get("bt_paired") is False:
        found.add(("bt_unpaired",))
    signal = beat.get("signal_dbm")
    if isinstance(signal, int) and signal < -100:
        found.add(("weak_signal",))
    if beat.get("power_source") == "battery":
        found.add(("on_battery",))
    comm = beat.get("comm") or {}
    found.add(("comm", str(comm.get("host")), str(comm.get("port")), str(comm.get("tpdu"))))
    return found


def fleet_markers(store: Any) -> set[tuple[str, ...]]:
    """Host events without a terminal (refused connections, reloads...)."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(Event.source, Event.kind).where(Event.tid.is_(None))).all()
    return {(source, kind) for source, kind in rows}
