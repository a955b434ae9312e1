"""What every rule module shares: the rule registry, finding builders, evidence lines.

A rule is a small function ``(TerminalEvidence, FleetContext) -> list[Finding]``
registered with ``@rule("cause.id", ...)`` naming the causes it can return (a test
checks every catalog cause is covered by some rule).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from posdoctor.doctor.catalog import get_cause
from posdoctor.doctor.records import EventRow, Finding, JournalRow, Line, line

if TYPE_CHECKING:
    from posdoctor.doctor.evidence import TerminalEvidence
    from posdoctor.doctor.fleet import FleetContext

Rule = Callable[["TerminalEvidence", "FleetContext"], list[Finding]]

RULES: list[tuple[Rule, tuple[str, ...]]] = []

NOT_FAILURES = frozenset({"device.self_check_ok", "reversal.in_progress", "reversal.done", "reversal.saved",
                          "host.requirement"})
FINANCIAL_ROUTES = frozenset({"sale", "void", "refund", "balance", "reversal"})
MAX_LINES = 6
CONNECT_CODES = ("comm.connect_failed", "comm.connect_timeout")
UPGRADE_EFFECT = timedelta(hours=6)
"""How long after an upgrade a newly wrong setting is put down to the upgrade."""


def rule(*causes: str) -> Callable[[Rule], Rule]:
    for cause in causes:
        get_cause(cause)  # a typo is an import-time error
    def register(fn: Rule) -> Rule:
        RULES.append((fn, causes))
        return fn
    return register


def covered_causes() -> set[str]:
    return {cause for _fn, causes in RULES for cause in causes}


def finding(cause: str, confidence: float, lines: Iterable[Line], *, signals: Iterable[str] = (),
            specificity: float = 0.5, collect: Sequence[Line] = (), resolved: bool = False) -> Finding:
    entry = get_cause(cause)
    evidence = _collapse(lines)
    if len(evidence) > MAX_LINES:  # keep the explanations (no time), shorten the timed records
        notes = [ln for ln in evidence if ln.at is None][:MAX_LINES - 2]
        timed = [ln for ln in evidence if ln.at is not None]
        keep = max(MAX_LINES - 1 - len(notes), 1)
        extra = len(timed) - keep
        evidence = timed[:keep] + ([line(None, f"... and {extra} more like these", f"……另有{extra}条类似记录")]
                                   if extra > 0 else []) + notes
    return Finding(cause, round(min(max(confidence, 0.0), 1.0), 3), evidence, list(entry.symptoms),
                   frozenset(signals), specificity, entry.fleet, collect=list(collect), resolved=resolved)


def is_failure(e: EventRow) -> bool:
    """A terminal event that reports something going wrong (the telemetry's own test)."""
    code = str(e.code or "")
    return e.source == "terminal" and e.kind == "terminal_event" and not code.startswith("ok.") \
        and code not in NOT_FAILURES


def failure_events(ev: TerminalEvidence) -> list[EventRow]:
    return [e for e in ev.events if is_failure(e)]


def _collapse(lines: Iterable[Line]) -> list[Line]:
    """Repeated identical lines become one, with how many times and the first time."""
    seen: dict[tuple[str, str], list[Any]] = {}  # in first-seen order: [first line, count]
    for ln in lines:
        seen.setdefault((ln.en, ln.zh), [ln, 0])[1] += 1
    return [ln if n == 1 else line(ln.at, f"{ln.en} (x{n}, first shown)", f"{ln.zh}(共{n}次, 显示首次)")
            for ln, n in seen.values()]


# --- evidence lines --------------------------------------------------------------------
def event_line(e: EventRow) -> Line:
    """A terminal/host/TMS event as one line."""
    d = e.detail
    if e.source == "terminal" and e.kind == "terminal_event":
        op = e.operation
        where = f" to {d['host']}:{d['port']}" if d.get("host") else ""
        zh_where = f" 目标{d['host']}:{d['port']}" if d.get("host") else ""
        op_en = f" during {op}" if op else ""
        op_zh = f"({op})" if op else ""
        return line(e.at, f"terminal reported {e.code}{op_en}{where}: {d.get('en', '')}".rstrip(": "),
                    f"终端上报{d.get('zh') or e.code}{op_zh}{zh_where} [{e.code}]")
    if e.source == "tms":
        extra = ", ".join(f"{k} {v}" for k, v in d.items() if k in ("entity", "id", "old", "new", "reason", "campaign",
                                                                      "from_version", "to_version", "ok", "due", "amount")
                          and v not in (None, ""))
        return line(e.at, f"TMS {e.kind} {e.code}: {extra}", f"TMS记录 {e.kind} {e.code}: {extra}")
    if e.source == "host":
        reason = d.get("reason") or ""
        return line(e.at, f"host event {e.kind} (code {e.code}) {reason}".strip(),
                    f"主机事件 {e.kind}(代码{e.code}) {reason}".strip())
    return line(e.at, f"{e.source} {e.kind} {e.code}", f"{e.source} {e.kind} {e.code}")


def journal_line(r: JournalRow) -> Line:
    why = r.refusal_reason()
    stan = f" STAN {r.stan}" if r.stan else ""
    return line(r.at, f"host answered {r.rc} to {r.route}{stan} (TID {r.tid})" + (f": {why}" if why else ""),
                f"主机对{r.route}{stan}应答{r.rc}(终端{r.tid})" + (f": {why}" if why else ""))


def beat_line(e: EventRow, what_en: str, what_zh: str) -> Line:
    return line(e.at, f"heartbeat: {what_en}", f"心跳上报: {what_zh}")


def note(at: datetime | None, en: str, zh: str) -> Line:
    return line(at, en, zh)


# --- common evidence questions -----------------------------------------------------------
def outside_fleet(rows: Iterable[Any], fleet: FleetContext, tid: str) -> list[Any]:
    """Rows not explained by a fleet-wide outage, overload or site power loss."""
    return [r for r in rows if fleet.outage_at(r.at) is None and fleet.overload_at(r.at) is None
            and fleet.power_at(r.at, tid) is None]


def upgrades_done(ev: TerminalEvidence) -> list[EventRow]:
    return [e for e in ev.tms("upgrade_report", "commit") if e.detail.get("ok", True)]


def last_upgrade(ev: TerminalEvidence) -> EventRow | None:
    done = upgrades_done(ev)
    return done[-1] if done else None


RESET_EVENT = "upgrade.reset"


def settings_reset(ev: TerminalEvidence) -> list[EventRow]:
    """The terminal's own events saying its last upgrade's package reset its settings."""
    done = upgrades_done(ev)
    if not done:
        return []
    previous = done[-2].at if len(done) > 1 else None
    return [e for e in ev.terminal_events(RESET_EVENT) if (previous is None or e.at > previous)
            and e.at <= done[-1].at and set(e.detail.get("resets") or ()) & {"config", "params"}]


def upgrade_explains(ev: TerminalEvidence, first_wrong: datetime) -> bool:
    """Settings first seen wrong at `first_wrong` are put down to the last upgrade: within
    UPGRADE_EFFECT of it, or any time after it when the terminal logged that the package
    reset its settings (that holds until they are set again)."""
    upgrade = last_upgrade(ev)
    if upgrade is None or first_wrong < upgrade.at:
        return False
    return first_wrong - upgrade.at <= UPGRADE_EFFECT or bool(settings_reset(ev))


def after(rows: Iterable[Any], at: datetime | None, within: timedelta | None = None) -> list[Any]:
    if at is None:
        return []
    return [r for r in rows if r.at >= at and (within is None or r.at - at <= within)]


def superseded(ev: TerminalEvidence, at: datetime, ok_codes: Iterable[str], routes: Iterable[str] = ()) -> bool:
    """Something that worked after ``at`` shows the state reported then is gone
    (a factory-fresh self-check before the first key download, for instance)."""
    codes, wanted = set(ok_codes), set(routes)
    if any(e.at > at and e.code in codes for e in ev.events if e.source == "terminal"):
        return True
    return any(r.at > at and r.rc == "00" and (r.route or "").startswith(tuple(wanted)) for r in ev.journal) \
        if wanted else False


def peripherals(beat: EventRow | None) -> dict[str, Any]:
    return dict((beat.detail.get("peripherals") or {})) if beat else {}


def self_check_faults(ev: TerminalEvidence) -> dict[str, str]:
    """Peripheral -> fault from the newest self-check and heartbeat (ok values dropped)."""
    faults: dict[str, str] = {}
    for e in ev.self_checks()[-1:] + ev.heartbeats()[-1:]:
        for name, state in (e.detail.get("peripherals") or {}).items():
            if state not in (None, "ok", True):
                faults[name] = str(state)
    return faults


def comm_of(beat: EventRow | None) -> dict[str, Any]:
    return dict(beat.detail.get("comm") or {}) if beat else {}


def endpoint_of(detail: dict[str, Any]) -> tuple[str, int] | None:
    host, port = detail.get("host"), detail.get("port")
    if not host or port in (None, ""):
        return None
    return str(host), int(port)


def assigned_endpoint(ev: TerminalEvidence, fleet: FleetContext) -> tuple[str, int] | None:
    """Where the terminal should connect: its own TMS parameter change, else the fleet's."""
    for change in reversed(ev.tms("param_change")):
        new = change.detail.get("new")
        if isinstance(new, dict) and new.get("host") and new.get("port"):
            return str(new["host"]), int(new["port"])
    return fleet.assigned_comm


def count_text(n: int, en: str, zh: str) -> tuple[str, str]:
    return f"{n} x {en}", f"{n}次{zh}"
