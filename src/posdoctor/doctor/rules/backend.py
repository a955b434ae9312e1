"""Acquirer / backend (后台与政策): host outage, issuer timeouts, policy restrictions."""

from __future__ import annotations

from datetime import datetime, timedelta

from posdoctor.doctor.evidence import TerminalEvidence
from posdoctor.doctor.fleet import FleetContext, Span
from posdoctor.doctor.records import Finding, hm
from posdoctor.doctor.rules.base import FINANCIAL_ROUTES, event_line, finding, journal_line, note, rule

UNREACHABLE = ("comm.connect_failed", "comm.connect_timeout", "host.rc.96", "comm.receive_failed")


RESTART_EFFECT = timedelta(hours=3)


def _restarted_before(fleet: FleetContext, at: datetime) -> Span | None:
    """The outage `at` falls in or shortly after (when lost sessions still show)."""
    return next((s for s in fleet.outages if s.start <= at <= s.end + RESTART_EFFECT), None)


@rule("backend.host_down")
def host_down(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    events = [e for e in ev.terminal_events(*UNREACHABLE) if fleet.outage_at(e.at)]
    rows = [r for r in ev.answers("96") if fleet.outage_at(r.at)]
    after = [r for r in ev.answers("77") if _restarted_before(fleet, r.at)]
    if not events and not rows and not after:
        return []
    span = fleet.outage_at((events or rows)[0].at) if (events or rows) else _restarted_before(fleet, after[0].at)
    lines = [journal_line(r) for r in rows] + [event_line(e) for e in events]
    lines.append(note(span.start, f"{len(span.tids)} terminals found the host refusing or answering 96 between "  # type: ignore[union-attr]
                                  f"{hm(span.start)} and {hm(span.end)}",  # type: ignore[union-attr]
                      f"{hm(span.start)}至{hm(span.end)}共{len(span.tids)}台终端连接被拒或收到96"))  # type: ignore[union-attr]
    if after:
        lines += [journal_line(r) for r in after[:2]]
        lines.append(note(after[0].at, "sign-in required after the host came back: its sessions were lost",
                          "主机恢复后需重新签到: 会话随主机重启丢失"))
    confidence = 0.92 if events or rows else 0.82
    return [finding("backend.host_down", confidence, lines, signals={"comm.connect", "rc.96", "comm.receive", "rc.77"},
                    specificity=0.7)]


@rule("backend.issuer_timeout")
def issuer_timeout(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    rows = [r for r in ev.answers("98", "68") if r.route in FINANCIAL_ROUTES]
    if not rows:
        return []
    reversals = [r for r in ev.reversals if r.get("reason") == "98"]
    lines = [journal_line(r) for r in rows]
    if reversals:
        lines.append(note(reversals[-1]["at"], f"{len(reversals)} reversal(s) with reason 98",
                          f"{len(reversals)}笔冲正, 原因98"))
    return [finding("backend.issuer_timeout", min(0.93, 0.75 + 0.06 * len(rows)), lines, signals={"rc.98"},
                    specificity=0.8)]


@rule("backend.policy_restriction")
def policy_restriction(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    rows = [r for r in ev.answers("40", "58", "57") if r.route not in (None, "")]
    changes = ev.tms("policy_change")
    events = ev.terminal_events("host.rc.40", "host.rc.58", "host.rc.57")
    if not rows and not events:
        return []
    lines = [event_line(c) for c in changes] + [journal_line(r) for r in rows] + [event_line(e) for e in events[-2:]]
    confidence = 0.92 if changes else 0.6
    return [finding("backend.policy_restriction", confidence, lines, signals={"rc.40", "rc.58"}, specificity=0.8)]
