"""Registration and status (用户状态): registry state decides between the look-alikes.

03 alone does not say which: the merchant's status in the registry does (frozen,
pending, closed), or the TID's binding to another merchant (mismatch); 97 is a
disabled terminal when the registry knows the TID.
"""

from __future__ import annotations

import re

from posdoctor.doctor.evidence import TerminalEvidence
from posdoctor.doctor.fleet import FleetContext
from posdoctor.doctor.records import Finding, Line
from posdoctor.doctor.rules.base import event_line, finding, journal_line, note, rule

MERCHANT_STATUS_CAUSE = {"frozen": "status.merchant_frozen", "pending": "status.merchant_pending",
                         "closed": "status.merchant_closed"}
DISABLED = ("suspended", "disabled", "retired", "closed", "frozen")
BINDING = re.compile(r"belongs to merchant (\d+), not (\d+)")
INVALID_ACCOUNT = ("invalid", "closed", "frozen", "suspended")


def _status_changes(ev: TerminalEvidence, entity: str) -> list:
    return [e for e in ev.tms("status_change") if e.detail.get("entity") == entity]


@rule("status.merchant_frozen", "status.merchant_pending", "status.merchant_closed")
def merchant_status(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    merchant = ev.merchant
    if merchant is None:
        return []
    cause = MERCHANT_STATUS_CAUSE.get(str(merchant.get("status")))
    if cause is None:
        return []
    rows = [r for r in ev.answers("03") if "merchant" in r.refusal_reason() and "belongs to" not in r.refusal_reason()]
    lines: list[Line] = [event_line(e) for e in _status_changes(ev, "merchant")]
    reason = merchant.get("status_reason") or ""
    lines.append(note(None, f"registry: merchant {merchant['mid']} is {merchant['status']}" + (f" ({reason})" if reason else ""),
                      f"登记库: 商户{merchant['mid']}状态为{merchant['status']}" + (f"({reason})" if reason else "")))
    lines += [journal_line(r) for r in rows]
    return [finding(cause, 0.95 if rows else 0.8, lines, signals={"rc.03"}, specificity=0.95)]


@rule("status.terminal_disabled")
def terminal_disabled(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    terminal = ev.terminal
    if terminal is None or terminal.get("status") not in DISABLED:
        return []
    rows = [r for r in ev.answers("97") if (r.refused() or ("", ""))[0] == "CheckStatus"]
    lines: list[Line] = [event_line(e) for e in _status_changes(ev, "terminal")]
    reason = terminal.get("status_reason") or ""
    lines.append(note(None, f"registry: terminal {terminal['tid']} is {terminal['status']}" + (f" ({reason})" if reason else ""),
                      f"登记库: 终端{terminal['tid']}状态为{terminal['status']}" + (f"({reason})" if reason else "")))
    lines += [journal_line(r) for r in rows]
    return [finding("status.terminal_disabled", 0.95 if rows else 0.82, lines, signals={"rc.97"}, specificity=0.95)]


@rule("status.terminal_merchant_mismatch")
def merchant_mismatch(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    rows = []
    for r in ev.answers("03"):
        match = BINDING.search(r.refusal_reason())
        if match and match.group(2) in ev.known_mids:
            rows.append(r)
    if not rows:
        return []
    lines = [journal_line(r) for r in rows]
    lines += [event_line(e) for e in ev.tms("status_change") + ev.tms("param_change") if "mid" in str(e.detail)][-2:]
    return [finding("status.terminal_merchant_mismatch", 0.92, lines, signals={"rc.03"}, specificity=0.9)]


@rule("status.device_not_whitelisted")
def device_not_whitelisted(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    rows = ev.answers("08")
    beat = ev.last_heartbeat()
    reported = beat.detail.get("serial") if beat else None
    bound = (ev.terminal or {}).get("serial")
    swapped = bool(reported and bound and reported != bound)
    if not rows and not swapped:
        return []
    lines = [journal_line(r) for r in rows]
    if swapped:
        lines.append(note(beat.at, f"the terminal reports device {reported}; TID {ev.tid} is bound to {bound}",  # type: ignore[union-attr]
                          f"终端上报设备序列号{reported}, 终端号{ev.tid}绑定的是{bound}"))
    return [finding("status.device_not_whitelisted", 0.94 if rows else 0.75, lines, signals={"rc.08"},
                    specificity=0.9)]


@rule("status.operator_locked")
def operator_locked(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    events = ev.terminal_events("local.operator_locked")
    changes = [e for e in _status_changes(ev, "operator") if e.code in ("locked", "disabled")]
    if not events and not changes:
        return []
    lines = [event_line(e) for e in changes + events]
    return [finding("status.operator_locked", 0.92, lines, signals={"operator"}, specificity=0.85)]


@rule("status.settlement_account_invalid")
def account_invalid(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    held = [e for e in ev.tms("payout", "held")]
    released = ev.tms("payout", "released") + ev.tms("payout", "paid")
    changes = [e for e in _status_changes(ev, "account") if e.code in INVALID_ACCOUNT]
    if not held and not changes:
        return []
    if held and released and released[-1].at > held[-1].at and not changes:
        return []
    lines = [event_line(e) for e in changes + held]
    confidence = 0.92 if held and (changes or "account" in str(held[-1].detail.get("reason", ""))) else 0.75
    return [finding("status.settlement_account_invalid", confidence, lines, signals={"payout"}, specificity=0.9)]
