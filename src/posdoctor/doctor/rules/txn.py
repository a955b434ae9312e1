"""Transactions and funds (交易与资金): card-side declines, reversals, settlement, payouts."""

from __future__ import annotations

from datetime import datetime

from posdoctor.doctor.evidence import TerminalEvidence
from posdoctor.doctor.fleet import FleetContext
from posdoctor.doctor.records import Finding
from posdoctor.doctor.rules.base import event_line, finding, journal_line, note, rule

DECLINES = {
    "txn.insufficient_funds": ("51",),
    "txn.wrong_pin": ("55", "75"),
    "txn.limit_exceeded": ("61",),
    "txn.duplicate": ("94",),
}
RECEIVE_LOST = ("comm.receive_failed", "comm.receive_error", "check.mac")


@rule(*DECLINES)
def declines(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    out = []
    for cause, codes in DECLINES.items():
        rows = ev.answers(*codes)
        if not rows:
            continue
        confidence = min(0.9, 0.6 + 0.1 * len(rows))
        out.append(finding(cause, confidence, [journal_line(r) for r in rows], signals={f"rc.{c}" for c in codes},
                           specificity=0.8))
    return out


@rule("txn.reversal_pending")
def reversal_pending(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    """Approved at the host, the terminal never saw the answer, no reversal reached the host."""
    reversed_ids = {r.get("orig_txn_id") for r in ev.reversals}
    reversed_stans = {(r.get("batch_no"), r.get("stan")) for r in ev.reversals}
    lost = [e for e in ev.terminal_events(*RECEIVE_LOST) if e.operation in ("sale", "void", "refund", "")]
    saved = ev.terminal_events("reversal.saved", "reversal.in_progress", "reversal.failed")
    if not lost and not saved:
        return []
    seen_ok = {str(e.detail.get("stan")) for e in ev.terminal_events("ok.approved")}
    saved_stans = {str(e.detail.get("stan")) for e in saved if e.detail.get("stan")}
    unseen = [t for t in ev.txns if t["kind"] in ("sale", "void") and t["status"] == "approved"
              and t["id"] not in reversed_ids and (t["batch_no"], t["stan"]) not in reversed_stans
              and t["stan"] not in seen_ok]
    open_txns = [t for t in unseen if t["stan"] in saved_stans or _lost_near(t["at"], lost)]
    lost_money = [e for e in lost if e.operation in ("sale", "void")]
    if not open_txns and unseen and len(unseen) <= len(lost_money) + len(saved_stans):
        open_txns = unseen  # terminal clocks drift: one unseen approval per lost answer
    if not open_txns:
        return []
    lines = []
    for t in open_txns:
        lines.append(note(t["at"], f"host approved {t['kind']} STAN {t['stan']} RRN {t['rrn']} amount "
                                   f"{t['amount'] / 100:.2f} and holds no reversal for it",
                          f"主机已批准{t['kind']}(流水{t['stan']}, 参考号{t['rrn']}, 金额{t['amount'] / 100:.2f}), 未收到冲正"))
    lines += [event_line(e) for e in (lost + saved)[:3]]
    return [finding("txn.reversal_pending", 0.93, lines, signals={"comm.receive", "reversal"}, specificity=0.95)]


def _lost_near(at: datetime, events: list) -> bool:
    return any(0 <= (e.at - at).total_seconds() <= 120 for e in events)


@rule("txn.settlement_unbalanced")
def settlement_unbalanced(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    host = ev.host_events("settlement_unbalanced")
    term = ev.terminal_events("ok.settled_unbalanced", "settle.error")
    if not host and not term:
        return []
    lines = [event_line(e) for e in host + term]
    return [finding("txn.settlement_unbalanced", 0.85, lines, signals={"settlement"}, specificity=0.7)]


@rule("txn.funds_delayed")
def funds_delayed(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    """A scheduled payout not yet due: the normal cycle, named only when nothing else is wrong."""
    scheduled = ev.tms("payout", "scheduled")
    done = {e.detail.get("payout") for e in ev.tms("payout", "paid") + ev.tms("payout", "held")}
    waiting = [e for e in scheduled if e.detail.get("payout") not in done]
    if not waiting:
        return []
    last = waiting[-1]
    due = last.detail.get("due")
    lines = [event_line(last), note(None, f"payout due {due}; it is not late", f"预计到账时间{due}, 尚在结算周期内")]
    return [finding("txn.funds_delayed", 0.45, lines, signals={"payout"}, specificity=0.3)]
