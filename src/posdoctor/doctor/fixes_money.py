"""Fix actions on campaigns, payouts and money (see ``fixes_actions``).

``deliver_reversal`` completes at the host the reversal of an approved sale the terminal
never got the answer for: the sale becomes ``reversed``, the card's account gets the
amount back, a reversal row (reason 98, like a terminal's timeout reversal) is written,
all in ONE transaction through ``Store.apply_host_batch``, and a running host reloads
its memory from the store (``notify_host("registry")`` for everything). The check
afterwards confirms money conservation: the account grew by exactly the amounts
reversed and each sale is reversed once. A reversal the terminal still sends later
finds the sale already reversed and changes nothing (the host answers 00).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from posdoctor.store.models import Card, Event, Reversal, Txn
from posdoctor.store.records import BalanceChange, EventRecord, ReversalRecord, TxnKey, TxnStatusChange

if TYPE_CHECKING:
    from posdoctor.doctor.fixes_actions import FixEnv

Plan = dict[str, Any]
REVERSAL_REASON = "98"


def _blocked(en: str, zh: str) -> Plan:
    return {"blocked": True, "en": en, "zh": zh}


# --- campaigns ---------------------------------------------------------------------------
def _campaign_for(env: FixEnv, tid: str) -> int | None:
    """The campaign named in this terminal's newest upgrade report (else the newest live one)."""
    with env.store.engine.connect() as conn:
        rows = conn.execute(select(Event.detail).where(Event.tid == tid, Event.kind == "upgrade_report")
                            .order_by(Event.id.desc()).limit(20)).all()
        for (detail,) in rows:
            if (detail or {}).get("campaign") is not None:
                return int(detail["campaign"])
        from posdoctor.store.models_tms import Campaign

        row = conn.execute(select(Campaign.id).where(Campaign.state.in_(("running", "paused", "halted")))
                           .order_by(Campaign.id.desc())).first()
        return int(row[0]) if row else None


def plan_campaign(action: str) -> Callable[[FixEnv, str, str], Plan]:
    def plan(env: FixEnv, tid: str, cause: str) -> Plan:
        campaign_id = _campaign_for(env, tid)
        if campaign_id is None:
            return _blocked(f"no upgrade campaign found for {tid}", f"未找到终端{tid}所属的升级活动")
        campaign = env.store.get_campaign(campaign_id)
        from posdoctor.tms.campaigns import TRANSITIONS

        allowed, target = TRANSITIONS[action]
        if campaign.state not in allowed:
            return _blocked(f"campaign {campaign_id} is {campaign.state}: cannot {action}",
                            f"升级活动{campaign_id}状态为{campaign.state}, 无法执行{action}")
        return {"campaign": campaign_id, "version": campaign.version, "action": action, "expect": target,
                "en": f"{action} campaign {campaign_id} (version {campaign.version})",
                "zh": f"对升级活动{campaign_id}(版本{campaign.version})执行{'暂停' if action == 'halt' else '回退'}"}
    return plan


def apply_campaign(env: FixEnv, tid: str, plan: Plan) -> dict[str, Any]:
    from posdoctor.tms.campaigns import change_campaign

    campaign = change_campaign(env.store, plan["campaign"], plan["action"], reason=f"posdoctor fix ({tid})")
    return {"campaign": plan["campaign"], "state": campaign.state}


def check_campaign(env: FixEnv, tid: str, plan: Plan, before: dict[str, Any]) -> dict[str, Any]:
    state = env.store.get_campaign(plan["campaign"]).state
    ok = state == plan["expect"]
    return {"ok": ok, "state": state, "en": f"campaign {plan['campaign']} is {state}",
            "zh": f"升级活动{plan['campaign']}状态为{state}"}


# --- payouts -----------------------------------------------------------------------------
def plan_release(env: FixEnv, tid: str, cause: str) -> Plan:
    from posdoctor.tms.payouts import hold_reason

    mid = env.store.get_terminal(tid).mid
    held = env.store.payouts(mid, status=("held",))
    if not held:
        return _blocked(f"merchant {mid} has no held payout", f"商户{mid}没有被暂扣的结算款")
    reason = hold_reason(env.store, mid)
    if reason is not None:
        return _blocked(f"the hold's cause is not cleared ({reason}): a person must correct it first",
                        f"暂扣原因尚未消除({reason}), 需人工先处理")
    return {"mid": mid, "payouts": [p.id for p in held], "amount": sum(p.amount for p in held),
            "en": f"release {len(held)} held payout(s) of merchant {mid}",
            "zh": f"解除商户{mid}的{len(held)}笔暂扣结算款"}


def apply_release(env: FixEnv, tid: str, plan: Plan) -> dict[str, Any]:
    released = [env.store.set_payout_status(pid, "released", reason="posdoctor fix: hold cleared").id
                for pid in plan["payouts"]]
    return {"released": released}


def check_release(env: FixEnv, tid: str, plan: Plan, before: dict[str, Any]) -> dict[str, Any]:
    states = {pid: env.store.get_payout(pid).status for pid in plan["payouts"]}
    ok = all(s != "held" for s in states.values())
    return {"ok": ok, "states": states, "en": "no payout of the merchant is held" if ok else "payouts still held",
            "zh": "该商户已无暂扣结算款" if ok else "结算款仍被暂扣"}


# --- reversals ---------------------------------------------------------------------------
def _unreversed_sales(env: FixEnv, tid: str) -> list[Any]:
    """Approved sales the terminal lost: a receive failure or saved reversal right after them."""
    from posdoctor.doctor.diagnose import diagnose_terminal

    diagnosis = diagnose_terminal(env.store, tid)
    if not any(f.cause == "txn.reversal_pending" for f in diagnosis.findings):
        return []
    with env.store.engine.connect() as conn:
        reversed_keys = {(r.batch_no, r.stan) for r in conn.execute(
            select(Reversal.batch_no, Reversal.stan).where(Reversal.tid == tid))}
        sales = conn.execute(select(Txn.id, Txn.batch_no, Txn.stan, Txn.amount, Txn.rrn, Txn.card_id, Txn.mid,
                                    Txn.at, Card.account_id)
                             .join(Card, Card.id == Txn.card_id)
                             .where(Txn.tid == tid, Txn.kind == "sale", Txn.status == "approved")).all()
    lost_times = [ln.at for f in diagnosis.findings if f.cause == "txn.reversal_pending" for ln in f.evidence if ln.at]
    return [s for s in sales if (s.batch_no, s.stan) not in reversed_keys
            and any(abs((t - s.at).total_seconds()) <= 1 for t in lost_times)]


def plan_reversal(env: FixEnv, tid: str, cause: str) -> Plan:
    sales = _unreversed_sales(env, tid)
    if not sales:
        return _blocked(f"no approved sale of {tid} is waiting for a reversal", f"终端{tid}没有待冲正的已批准交易")
    items = [{"txn": s.id, "batch": s.batch_no, "stan": s.stan, "rrn": s.rrn, "amount": s.amount,
              "account": s.account_id} for s in sales]
    total = sum(s.amount for s in sales)
    return {"items": items, "total": total,
            "en": f"reverse {len(items)} approved sale(s) at the host ({total / 100:.2f} back to the cardholder)",
            "zh": f"在主机侧冲正{len(items)}笔已批准交易(退回持卡人{total / 100:.2f}元)"}


def snapshot_reversal(env: FixEnv, tid: str, plan: Plan) -> dict[str, Any]:
    accounts = {item["account"] for item in plan["items"]}
    return {"balances": {a: env.store.get_account(a).balance for a in accounts}}


def apply_reversal(env: FixEnv, tid: str, plan: Plan) -> dict[str, Any]:
    now = env.now()
    writes: list[Any] = []
    for item in plan["items"]:
        key = TxnKey(tid, item["batch"], item["stan"], "sale")
        writes += [ReversalRecord(tid, item["batch"], item["stan"], now, reason=REVERSAL_REASON,
                                  amount=item["amount"], orig=key),
                   TxnStatusChange("reversed", txn_id=item["txn"]),
                   BalanceChange(item["account"], item["amount"])]
    writes.append(EventRecord(source="doctor", kind="reversal_delivered", at=now, tid=tid, code=REVERSAL_REASON,
                              detail={"items": [{k: v for k, v in i.items() if k != "account"} for i in plan["items"]],
                                      "total": plan["total"]}))
    env.store.apply_host_batch(writes)
    env.store.notify_host("registry")
    return {"reversed": [i["txn"] for i in plan["items"]], "total": plan["total"], "notified": ["registry"]}


def check_reversal(env: FixEnv, tid: str, plan: Plan, before: dict[str, Any]) -> dict[str, Any]:
    expected: dict[int, int] = {}
    for item in plan["items"]:
        expected[item["account"]] = expected.get(item["account"], 0) + item["amount"]
    moved = {a: env.store.get_account(a).balance - b for a, b in before.get("balances", {}).items()}
    statuses = {i["txn"]: env.store.get_txn(i["txn"]).status for i in plan["items"]}
    with env.store.engine.connect() as conn:
        counts = {i["txn"]: len(conn.execute(select(Reversal.id).where(
            Reversal.tid == tid, Reversal.batch_no == i["batch"], Reversal.stan == i["stan"])).all())
            for i in plan["items"]}
    ok = all(s == "reversed" for s in statuses.values()) and moved == expected and all(c == 1 for c in counts.values())
    return {"ok": ok, "statuses": statuses, "balance_moved": moved, "expected": expected,
            "en": "sales reversed once and the exact amounts are back on the accounts" if ok else "reversal not complete",
            "zh": "交易已冲正一次且金额已全额退回账户" if ok else "冲正未完成"}
