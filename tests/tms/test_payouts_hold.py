"""Payouts: T+1 per merchant per settlement day, held while frozen/closed or the account is
invalid, released once cleared, and explained ("why has my money not arrived")."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from posdoctor.store import Store
from posdoctor.store.records import BatchClosed
from posdoctor.tms import registry as reg
from posdoctor.tms.payouts import (
    CST,
    payout_status,
    payout_tick,
    release_payouts,
    run_payouts,
    schedule_payouts,
)

MID, MID2 = "898100000000301", "898100000000302"
TID, TID2, TID3 = "40000001", "40000002", "40000003"
DAY1 = datetime(2026, 11, 29, 10, 0, tzinfo=CST)


@pytest.fixture
def fleet(store: Store) -> Store:
    for mid in (MID, MID2):
        store.add_merchant(mid, "付款商户")
        store.set_settlement_account(mid, "6222021234567890" + mid[-3:], "工商银行")
    store.add_terminal(TID, MID, "SN-PO-1")
    store.add_terminal(TID2, MID, "SN-PO-2")
    store.add_terminal(TID3, MID2, "SN-PO-3")
    return store


def settle(store: Store, tid: str, batch_no: int, at: datetime, debit: int, credit: int = 0) -> None:
    store.apply_host_batch([BatchClosed(tid, batch_no, at, debit, 1, credit, 1 if credit else 0, "1")])


def test_one_payout_per_merchant_and_day_due_next_day(fleet: Store) -> None:
    store = fleet
    settle(store, TID, 1, DAY1, 10_000, 1_000)
    settle(store, TID2, 1, DAY1 + timedelta(hours=2), 5_000)
    settle(store, TID3, 1, DAY1, 700)
    settle(store, TID, 2, DAY1 + timedelta(days=1), 300)
    payouts = schedule_payouts(store, DAY1 + timedelta(days=1, hours=1))
    assert schedule_payouts(store, DAY1 + timedelta(days=1, hours=2)) == []  # each batch counted once
    rows = sorted((p.mid, p.settle_day, p.amount, len(p.batch_ids), p.status) for p in payouts)
    assert rows == [(MID, "20261129", 14_000, 2, "scheduled"), (MID, "20261130", 300, 1, "scheduled"),
                    (MID2, "20261129", 700, 1, "scheduled")]
    first = next(p for p in payouts if p.mid == MID and p.settle_day == "20261129")
    assert first.due_at == datetime(2026, 11, 30, 0, 0, tzinfo=CST)
    assert run_payouts(store, DAY1 + timedelta(hours=13)) == []  # not due yet (same day)
    paid = run_payouts(store, datetime(2026, 11, 30, 9, 0, tzinfo=CST))
    assert sorted((p.mid, p.amount) for p in paid) == [(MID, 14_000), (MID2, 700)]
    codes = [(e.code, e.detail["mid"]) for e in store.events(kind="payout")]
    assert codes.count(("scheduled", MID)) == 2 and codes.count(("paid", MID)) == 1


def test_frozen_merchant_is_held_then_released_and_paid(fleet: Store) -> None:
    store = fleet
    settle(store, TID, 1, DAY1, 8_800)
    reg.freeze_merchant(store, MID, "risk review", actor="risk")
    counts = payout_tick(store, DAY1 + timedelta(hours=1))
    assert counts == {"scheduled": 1, "held": 1, "released": 0, "paid": 0}
    [payout] = store.payouts(MID)
    assert (payout.status, payout.hold_reason) == ("held", "merchant_frozen: risk review")
    why = payout_status(store, MID, DAY1 + timedelta(days=2))
    assert any("商户已冻结(risk review)" in line for line in why["zh"])
    assert any("held because the merchant is frozen (risk review)" in line for line in why["en"])
    assert payout_tick(store, DAY1 + timedelta(days=2))["paid"] == 0  # still frozen: not paid
    reg.unfreeze_merchant(store, MID)
    assert payout_tick(store, DAY1 + timedelta(days=2)) == {"scheduled": 0, "held": 0, "released": 1, "paid": 1}
    [payout] = store.payouts(MID)
    assert (payout.status, payout.hold_reason, payout.amount) == ("paid", None, 8_800)
    assert [e.code for e in store.events(kind="payout")] == ["scheduled", "held", "released", "paid"]
    assert "已于" in payout_status(store, MID, DAY1 + timedelta(days=2))["zh"][0]


def test_invalid_account_holds_and_reason_follows_the_cause(fleet: Store) -> None:
    store = fleet
    settle(store, TID3, 1, DAY1, 500)
    reg.set_account_status(store, MID2, "invalid", "account closed by bank")
    schedule_payouts(store, DAY1)
    assert run_payouts(store, DAY1 + timedelta(days=1)) == []
    [payout] = store.payouts(MID2)
    assert (payout.status, payout.hold_reason) == ("held", "account_invalid: account closed by bank")
    assert release_payouts(store, DAY1 + timedelta(days=1)) == []
    store.set_settlement_account(MID2, "6222029999999999", "建设银行")  # a new, valid account
    assert [p.id for p in release_payouts(store, DAY1 + timedelta(days=1))] == [payout.id]
    assert run_payouts(store, DAY1 + timedelta(days=1))[0].status == "paid"


def test_why_explains_unsettled_and_scheduled_money(fleet: Store) -> None:
    store = fleet
    empty = payout_status(store, MID, DAY1)
    assert empty["en"] == ["nothing is due and no transaction is waiting for settlement"]
    settle(store, TID, 1, DAY1, 1_000)
    assert payout_status(store, MID, DAY1)["unscheduled_batches"]
    schedule_payouts(store, DAY1)
    why = payout_status(store, MID, DAY1 + timedelta(hours=1))
    assert why["zh"] == ["20261129 结算款 10.00 元将于 2026-11-30 00:00 后付出(T+1)"]
    assert why["en"] == ["payout of 20261129, CNY 10.00: due 2026-11-30 00:00 CST (next day)"]
