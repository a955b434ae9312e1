"""Operation (操作不当): what the person at the counter did."""

from __future__ import annotations

from posdoctor.doctor.evidence import TerminalEvidence
from posdoctor.doctor.fleet import PAYMENT_ROUTES, FleetContext
from posdoctor.doctor.records import Finding
from posdoctor.doctor.rules.base import beat_line, event_line, failure_events, finding, note, rule

BT_CODES = ("bt.pairing_failed", "device.bluetooth", "bluetooth.pairing_failed", "mpos.pairing_failed")


@rule("op.wrong_password")
def wrong_password(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    events = ev.terminal_events("local.wrong_password")
    if not events or ev.terminal_events("local.operator_locked"):
        return []
    return [finding("op.wrong_password", min(0.88, 0.65 + 0.08 * len(events)), [event_line(e) for e in events],
                    signals={"operator"}, specificity=0.75)]


@rule("op.not_signed_in")
def not_signed_in(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    events = ev.terminal_events("local.not_signed_in")
    if not events:
        return []
    signed = ev.last_approved_sign_in()
    lines = [event_line(e) for e in events]
    tried = [e for e in failure_events(ev) if e.operation == "sign_in"] + \
        [r for r in ev.sign_ins() if r.rc not in (None, "00")]
    if tried:  # the merchant did try to sign in: why that failed is the cause
        return [finding("op.not_signed_in", 0.35, lines, signals={"local.signin"}, specificity=0.3)]
    if signed is None:
        lines.append(note(None, "no approved sign-in from this terminal in the window", "时间窗内该终端没有成功签到"))
    elif signed.at > events[-1].at:  # signed in afterwards; paid since means put right on the spot
        paid = any(r.at > signed.at and r.rc == "00" and r.route in PAYMENT_ROUTES for r in ev.journal)
        if paid:
            lines.append(note(signed.at, "signed in afterwards; payments approved since", "随后已签到, 此后交易成功"))
        return [finding("op.not_signed_in", 0.5, lines, signals={"local.signin"}, specificity=0.6, resolved=paid)]
    return [finding("op.not_signed_in", 0.88, lines, signals={"local.signin"}, specificity=0.75)]


@rule("op.settle_required")
def settle_required(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    events = ev.terminal_events("local.batch_full", "local.settle_first")
    refused = [e for e in ev.of("tms", "upgrade_report") if not e.detail.get("ok", True)
               and ("settle" in str(e.detail.get("reason") or "").lower() or "batch" in str(e.detail.get("reason") or ""))]
    if not events and not refused:
        return []
    lines = [event_line(e) for e in events + refused]
    host_refused = [r for r in ev.journal if r.route == "settlement" and r.rc not in (None, "00")]
    host_refused += [e for e in failure_events(ev) if e.operation == "settlement"
                     and e.code not in ("local.settle_first", "local.batch_full")]
    if host_refused and not ev.terminal_events("local.batch_full"):
        # the merchant tried to settle and it failed (refused, unreachable): that failure is the cause
        return [finding("op.settle_required", 0.35, lines, signals={"settlement"}, specificity=0.3)]
    return [finding("op.settle_required", 0.88, lines, signals={"settlement"}, specificity=0.8)]


@rule("op.bluetooth_pairing")
def bluetooth_pairing(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    events = [e for e in ev.events if e.source == "terminal" and
              (e.code in BT_CODES or "pair" in str(e.code) or "bluetooth" in str(e.code))]
    beats = [b for b in ev.heartbeats() if b.detail.get("bt_paired") is False]
    if not events and not beats:
        return []
    lines = [event_line(e) for e in events] + [beat_line(b, "Bluetooth not paired with the phone", "蓝牙未与手机配对")
                                               for b in beats[-1:]]
    return [finding("op.bluetooth_pairing", 0.9 if events else 0.75, lines, signals={"bt"}, specificity=0.85)]
