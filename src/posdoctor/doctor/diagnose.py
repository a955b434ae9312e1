"""Diagnose one terminal or the whole fleet: evidence -> rules -> ranker -> contract JSON.

``diagnose_terminal(store, tid)`` and ``diagnose_fleet(store)`` return `Diagnosis`
objects; ``Diagnosis.to_json()`` is the contract
``{"terminal", "symptoms", "findings": [{"cause", "confidence", "evidence", "remedy", "fix"}]}``
and ``FleetDiagnosis.to_json()`` is ``{"terminals": [...], "by_cause": {ID: count}}``.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from posdoctor.doctor.catalog import CAUSES
from posdoctor.doctor.evidence import TerminalEvidence, Window, default_window, load_many, load_terminal
from posdoctor.doctor.fleet import FleetContext, build_fleet_context
from posdoctor.doctor.ranker import CONFIDENT, FLEET_CAUSES, UNKNOWN, rank
from posdoctor.doctor.records import Finding, JournalRow, Line, line
from posdoctor.doctor.rules import run_rules
from posdoctor.doctor.rules.backend import UNREACHABLE
from posdoctor.doctor.rules.base import event_line, failure_events, journal_line

__all__ = ["Diagnosis", "FleetDiagnosis", "diagnose_terminal", "diagnose_fleet", "diagnose_evidence",
           "observed_symptoms"]

FAILING_AT = CONFIDENT
INIT_ROUTES = ("tmk_download", "param_download", "param_download_end", "capk_query", "capk_download",
               "aid_query", "aid_download")
INIT_OPS = ("tmk_download", "param_download", "capk_download", "aid_download", "key_injection")
STATUS_CODES = ("97", "03", "08")
NOT_FAILING = frozenset({"txn.funds_delayed"})
"""Named when asked about a terminal, never counted as a failure in the fleet view."""


@dataclass(slots=True)
class Diagnosis:
    tid: str
    symptoms: list[str]
    findings: list[Finding]
    window: Window

    @property
    def top(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    @property
    def cause(self) -> str | None:
        return self.top.cause if self.top else None

    @property
    def failing(self) -> bool:
        top = self.top
        return top is not None and top.cause not in NOT_FAILING and not top.resolved and \
            (top.cause == UNKNOWN or top.confidence >= FAILING_AT)

    def to_json(self, lang: str | None = None) -> dict[str, Any]:
        from posdoctor.doctor.fixes import fix_json  # fixes import the diagnosis

        return {
            "terminal": self.tid,
            "symptoms": list(self.symptoms),
            "findings": [_finding_json(self.tid, f, lang, fix_json) for f in self.findings],
        }


def _finding_json(tid: str, f: Finding, lang: str | None, fix_json: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return {
        "cause": f.cause,
        "confidence": round(f.confidence, 3),
        "evidence": [ln.text(lang) if lang else ln.both() for ln in f.evidence],
        "remedy": remedy_json(f.cause, lang),
        "fix": fix_json(tid, f.cause),
        "fleet": f.cause in FLEET_CAUSES,
        "resolved": f.resolved,
    }


@lru_cache(maxsize=512)
def remedy_json(cause: str, lang: str | None = None) -> dict[str, Any]:
    """The remedy in the contract shape (cached: the same object for every terminal, read-only)."""
    if cause == UNKNOWN:
        return {"explanation": {"zh": "证据不足, 无法确定原因", "en": "Not enough evidence to name the cause"},
                "auto_fix": None}
    try:
        from posdoctor.doctor.remedies import get_remedy
    except ImportError:  # remedies not installed in this build
        entry = CAUSES[cause]
        return {"explanation": {"zh": entry.zh, "en": entry.en}, "auto_fix": None}
    return get_remedy(cause).to_json(lang)


@dataclass(slots=True)
class FleetDiagnosis:
    terminals: list[Diagnosis]
    window: Window
    fleet: FleetContext
    examined: int = 0
    by_cause: Counter[str] = field(default_factory=Counter)

    def to_json(self, lang: str | None = None) -> dict[str, Any]:
        return {"terminals": [d.to_json(lang) for d in self.terminals], "by_cause": dict(self.by_cause)}


# --- symptoms ------------------------------------------------------------------------------
def observed_symptoms(ev: TerminalEvidence, findings: list[Finding]) -> list[str]:
    """What the merchant sees, from the evidence (else from the top finding's catalog entry)."""
    seen: list[str] = []
    failures = ev.failures()
    failed_ops = {e.operation for e in failure_events(ev)}
    if any(r.route in INIT_ROUTES for r in failures) or failed_ops & set(INIT_OPS) or ev.terminal_events("keys.no_tmk"):
        seen.append("init_failed")
    if any((r.route or "").startswith("sign_in") for r in failures) or "sign_in" in failed_ops \
            or ev.terminal_events("keys.check_failed"):
        seen.append("signin_failed")
    if any(e.code == "commit" for e in ev.tms("upgrade_report")) and (failures or failed_ops):
        seen.append("broken_after_upgrade")
    if any(r.rc in STATUS_CODES for r in failures) or (ev.terminal or {}).get("status") not in (None, "active") \
            or (ev.merchant or {}).get("status") not in (None, "active"):
        seen.append("status_abnormal")
    if (failures or failed_ops) and not seen:
        seen.append("unusable")
    if not seen and findings and findings[0].cause in CAUSES:
        seen = list(CAUSES[findings[0].cause].symptoms[:1])
    return seen


def trouble_lines(ev: TerminalEvidence, fleet: FleetContext | None = None) -> list[Line]:
    """The failures seen, as evidence for an ``unknown`` answer."""
    lines = [journal_line(r) for r in ev.failures()[-3:]]
    working = fleet.others_succeeding(ev.tid) if fleet is not None else 0
    idle = ev.terminal is not None and ev.terminal.get("status") == "active" and not any(
        r.rc == "00" and ((r.route or "").startswith("sign_in") or r.route in ("sale", "balance")) for r in ev.journal)
    if idle and working >= 3 and ev.has_activity():
        lines.append(line(None, f"no approved sign-in or transaction from {ev.tid} in the window while {working} "
                                "other terminals worked", f"时间窗内{ev.tid}没有成功的签到或交易, 同时有{working}台其他终端正常"))
    lines += [event_line(e) for e in failure_events(ev)[-3:]]
    if not lines and ev.terminal is None and not ev.has_activity():
        lines.append(line(None, f"TID {ev.tid} is not in the registry and nothing in the window mentions it",
                          f"登记库中没有终端{ev.tid}, 时间窗内也没有任何相关记录"))
    elif not lines and ev.terminal is not None and not ev.has_activity():
        lines.append(line(None, f"no evidence at all from TID {ev.tid} in the window",
                          f"时间窗内没有终端{ev.tid}的任何记录"))
    return lines


# --- entry points ---------------------------------------------------------------------------
def diagnose_evidence(ev: TerminalEvidence, fleet: FleetContext, only: frozenset[str] | None = None) -> Diagnosis:
    findings = rank(run_rules(ev, fleet, only), trouble_lines(ev, fleet))
    return Diagnosis(ev.tid, observed_symptoms(ev, findings), findings, ev.window)


def diagnose_terminal(store: Any, tid: str, *, since: datetime | None = None, until: datetime | None = None,
                      fleet: FleetContext | None = None) -> Diagnosis:
    window = default_window(store, since, until)
    context = fleet if fleet is not None else build_fleet_context(store, window)
    return diagnose_evidence(load_terminal(store, tid, window), context)


OUTAGE_CAUSES = frozenset({"backend.host_down"})
OUTAGE_SIGNALS = frozenset(UNREACHABLE)
"""What a terminal sees of a host outage (the host_down rule's signals)."""


def outage_only(tid: str, ctx: FleetContext) -> TerminalEvidence | None:
    """A suspect whose every sign of trouble lies inside a fleet outage: its evidence from
    the fleet scan alone (no per-terminal load), else None. Keeps the worst case (the host
    down for everyone) as cheap as a normal day."""
    if not ctx.outages or tid in ctx.inactive_tids:
        return None
    if set(ctx.failing_by_tid.get(tid, {})) - {"96"}:
        return None
    beat = ctx.latest_beat.get(tid)
    if beat is not None and beat.code not in (None, "ok"):
        return None
    signals = ctx.signals_by_tid.get(tid, [])
    marks = ctx.marks_by_tid.get(tid, [])
    if not signals and not marks:
        return None
    if any(e.kind != "terminal_event" or e.code not in OUTAGE_SIGNALS or ctx.outage_at(e.at) is None for e in signals):
        return None
    if any(ctx.outage_at(at) is None for at, _rc, _route in marks):
        return None
    journal = [JournalRow(at, tid, None, route, None, None, rc, [], None) for at, rc, route in marks]
    return TerminalEvidence(tid, Window(ctx.since, ctx.until), journal=journal, events=list(signals))


def diagnose_fleet(store: Any, *, since: datetime | None = None, until: datetime | None = None,
                   progress: Callable[[int, int], None] | None = None) -> FleetDiagnosis:
    """Every terminal with a sign of trouble, diagnosed; failing ones kept, fleet causes first."""
    window = default_window(store, since, until)
    context = build_fleet_context(store, window)
    light = {tid: ev for tid in context.suspect_tids if (ev := outage_only(tid, context)) is not None}
    evidences = load_many(store, sorted(context.suspect_tids - set(light)), window)
    evidences.update(light)
    aliases = {alias for ev in evidences.values() for alias in ev.aliases}
    results: list[Diagnosis] = []
    total = len(evidences)
    for n, (tid, ev) in enumerate(sorted(evidences.items()), 1):
        if tid in aliases and ev.terminal is None:
            continue  # a typo'd TID: reported under the registered terminal that uses it
        # outage-only evidence holds nothing but the outage's signals: only its rule can speak
        diagnosis = diagnose_evidence(ev, context, OUTAGE_CAUSES if tid in light else None)
        if diagnosis.failing:
            results.append(diagnosis)
        if progress is not None:
            progress(n, total)
    by_cause = Counter(d.cause for d in results if d.cause)
    results.sort(key=lambda d: (d.cause not in FLEET_CAUSES, -by_cause[d.cause or ""], d.cause or "", d.tid))
    return FleetDiagnosis(results, window, context, total, by_cause)


def diagnose_many(store: Any, tids: list[str], *, since: datetime | None = None,
                  until: datetime | None = None) -> dict[str, Diagnosis]:
    """Several named terminals against one fleet context (evaluation harnesses)."""
    window = default_window(store, since, until)
    context = build_fleet_context(store, window)
    return {tid: diagnose_evidence(ev, context) for tid, ev in load_many(store, tids, window).items()}
