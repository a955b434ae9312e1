"""Merchant payouts (结算款/资金划付): T+1 after settlement, held while something blocks them.

- :func:`schedule_payouts`: settled batches not yet counted go into one payout per
  merchant per settlement day (China Standard Time), due the next day; amount = debit -
  credit of those batches.
- :func:`hold_payouts` / :func:`release_payouts`: a payout is held while its merchant is
  frozen or closed, or has no valid settlement account (the reason is kept); released
  once that is cleared.
- :func:`run_payouts`: pays the due, unheld ones.
- :func:`payout_tick`: all of the above, for a periodic job (``posdoctor serve`` runs it
  every minute: ``cli.serve.run_periodic``).
- :func:`payout_status`: "why has my money not arrived", answered from data in zh/en.

Events (source ``tms``, kind ``payout``): scheduled, held, released, paid.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from posdoctor.store import Store
from posdoctor.store.models_registry import Payout

CST = timezone(timedelta(hours=8), "CST")
HOLD_TEXT = {
    "merchant_frozen": ("商户已冻结", "the merchant is frozen"),
    "merchant_closed": ("商户已注销", "the merchant is closed"),
    "merchant_pending": ("商户尚在审核中", "the merchant is still under review"),
    "no_account": ("商户没有登记结算账户", "the merchant has no settlement account"),
    "account_invalid": ("结算账户无效", "the settlement account is invalid"),
}


def settle_day(at: datetime) -> str:
    return at.astimezone(CST).strftime("%Y%m%d")


def due_after(day: str) -> datetime:
    """Payouts of a settlement day are due at the start of the next day (CST)."""
    start = datetime.strptime(day, "%Y%m%d").replace(tzinfo=CST)
    return start + timedelta(days=1)


def hold_reason(store: Store, mid: str) -> str | None:
    """``code: detail`` of what blocks the merchant's payouts now, or None."""
    merchant = store.get_merchant(mid)
    if merchant.status != "active":
        detail = f": {merchant.status_reason}" if merchant.status_reason else ""
        return f"merchant_{merchant.status}{detail}"
    account = store.find_settlement_account(mid)
    if account is None:
        return "no_account"
    if account.status != "valid":
        return "account_invalid" + (f": {account.status_reason}" if account.status_reason else "")
    return None


def schedule_payouts(store: Store, now: datetime) -> list[Payout]:
    """Count every settled batch not yet in a payout; returns the payouts touched."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for batch, mid in store.unscheduled_batches():
        groups[(mid, settle_day(batch.settled_at or now))].append(batch.id)
    return [store.add_batches_to_payout(mid, day, due_after(day), ids, now=now)
            for (mid, day), ids in sorted(groups.items())]


def hold_payouts(store: Store, now: datetime) -> list[Payout]:
    """Hold unpaid payouts whose merchant or account blocks them (or update the reason)."""
    reasons: dict[str, str | None] = {}
    held = []
    for payout in store.payouts(status=("scheduled", "held")):
        if payout.mid not in reasons:
            reasons[payout.mid] = hold_reason(store, payout.mid)
        reason = reasons[payout.mid]
        if reason is not None and (payout.status == "scheduled" or payout.hold_reason != reason):
            held.append(store.set_payout_status(payout.id, "held", reason=reason, now=now))
    return held


def release_payouts(store: Store, now: datetime) -> list[Payout]:
    """Release held payouts whose hold has been cleared."""
    released = []
    for payout in store.payouts(status=("held",)):
        if hold_reason(store, payout.mid) is None:
            released.append(store.set_payout_status(payout.id, "released", reason=payout.hold_reason, now=now))
    return released


def run_payouts(store: Store, now: datetime) -> list[Payout]:
    """Pay every scheduled payout that is due and not blocked (blocked ones are held)."""
    paid = []
    for payout in store.payouts(status=("scheduled",)):
        if payout.due_at > now:
            continue
        reason = hold_reason(store, payout.mid)
        if reason is not None:
            store.set_payout_status(payout.id, "held", reason=reason, now=now)
            continue
        paid.append(store.set_payout_status(payout.id, "paid", now=now))
    return paid


def payout_tick(store: Store, now: datetime) -> dict[str, int]:
    """One pass of the payout job: schedule, hold, release, pay. Call it periodically."""
    scheduled = schedule_payouts(store, now)
    held = hold_payouts(store, now)
    released = release_payouts(store, now)
    paid = run_payouts(store, now)
    return {"scheduled": len(scheduled), "held": len(held), "released": len(released), "paid": len(paid)}


def payout_json(payout: Payout) -> dict[str, Any]:
    return {"id": payout.id, "mid": payout.mid, "day": payout.settle_day, "due": payout.due_at.isoformat(),
            "amount": payout.amount, "batches": list(payout.batch_ids), "status": payout.status,
            "hold_reason": payout.hold_reason, "paid_at": payout.paid_at.isoformat() if payout.paid_at else None}


def _yuan(cents: int) -> str:
    return f"{cents / 100:.2f}"


def _hold_text(reason: str) -> tuple[str, str]:
    code, _, detail = reason.partition(": ")
    zh, en = HOLD_TEXT.get(code, (code, code))
    return (f"{zh}({detail})" if detail else zh, f"{en} ({detail})" if detail else en)


def _explain(payout: Payout, now: datetime) -> tuple[str, str]:
    amount, due = _yuan(payout.amount), payout.due_at.astimezone(CST).strftime("%Y-%m-%d %H:%M")
    head_zh, head_en = f"{payout.settle_day} 结算款 {amount} 元", f"payout of {payout.settle_day}, CNY {amount}"
    if payout.status == "paid":
        paid = payout.paid_at.astimezone(CST).strftime("%Y-%m-%d %H:%M") if payout.paid_at else "?"
        return f"{head_zh}已于 {paid} 付出", f"{head_en}: paid at {paid} (CST)"
    if payout.status == "held":
        zh, en = _hold_text(payout.hold_reason or "")
        return f"{head_zh}已暂停付款: {zh}；问题解除后自动付出", f"{head_en}: held because {en}; paid once cleared"
    if payout.due_at > now:
        return f"{head_zh}将于 {due} 后付出(T+1)", f"{head_en}: due {due} CST (next day)"
    return f"{head_zh}已到期，等待付款处理", f"{head_en}: due, waiting for the next payout run"


def payout_status(store: Store, mid: str, now: datetime | None = None) -> dict[str, Any]:
    """Why the merchant's money has (not) arrived: payouts, blocks and unsettled batches."""
    now = now or datetime.now(CST)
    store.get_merchant(mid)
    payouts = store.payouts(mid)
    lines: list[tuple[str, str]] = [_explain(p, now) for p in payouts if p.status != "paid"]
    lines += [_explain(p, now) for p in payouts if p.status == "paid"][-3:]
    pending: list[dict[str, Any]] = []
    for terminal in store.list_terminals(mid=mid):
        for batch in store.batches(terminal.tid):
            if batch.status != "settled" and store.txns_in_batch(terminal.tid, batch.batch_no):
                pending.append({"tid": terminal.tid, "batch_no": batch.batch_no})
                lines.append((f"终端 {terminal.tid} 批次 {batch.batch_no:06d} 尚未结算: 结算后次日付款",
                              f"terminal {terminal.tid} batch {batch.batch_no:06d} is not settled yet: "
                              "it is paid the day after settlement"))
    unscheduled = [b.id for b, m in store.unscheduled_batches() if m == mid]
    if unscheduled:
        lines.append(("已结算批次等待排入付款计划", "settled batches are waiting to be scheduled"))
    block = hold_reason(store, mid)
    if block is not None and not any(p.status == "held" for p in payouts):
        zh, en = _hold_text(block)
        lines.append((f"注意: {zh}，新的结算款将被暂停", f"note: {en}; new payouts will be held"))
    if not lines:
        lines.append(("没有待付款项，也没有未结算的交易", "nothing is due and no transaction is waiting for settlement"))
    return {"mid": mid, "payouts": [payout_json(p) for p in payouts], "unsettled_batches": pending,
            "unscheduled_batches": unscheduled, "block": block,
            "zh": [zh for zh, _ in lines], "en": [en for _, en in lines]}
