"""Accounts, cards (hashed PAN, sealed PIN) and decline rules on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from posdoctor.store import AlreadyExists, InvalidValue, NotFound, Store
from posdoctor.store.cards import rule_matches
from posdoctor.store.models import Card, DeclineRule
from posdoctor.store.records import TxnRecord

PAN = "6222020000000000000"
PAN2 = "4111111111111111"


def test_card_is_stored_without_clear_pan_or_pin(store: Store) -> None:
    card = store.add_card(PAN, "123456", balance=100_000, expiry="3012", single_limit=50_000, daily_limit=80_000)
    assert card.pan_masked == "622202*********0000"
    with store.engine.connect() as conn:
        row = conn.execute(select(Card.__table__)).one()
    flat = " ".join(str(v) for v in row)
    assert PAN not in flat and "123456" not in flat
    assert PAN.encode() not in row.pin_sealed and b"123456" not in row.pin_sealed
    assert row.pan_hash == store.pan_hash(PAN)


def test_find_card_by_pan_and_its_pin(store: Store) -> None:
    added = store.add_card(PAN, "123456", balance=100_000, expiry="3012")
    found = store.find_card_by_pan(PAN)
    assert found is not None
    assert (found.id, found.status, found.expiry, found.pin_tries) == (added.id, "active", "3012", 0)
    assert store.card_pin(found) == "123456"
    assert store.get_account(found.account_id).balance == 100_000
    assert store.get_account(found.account_id).currency == "156"
    assert store.find_card_by_pan(PAN2) is None
    assert store.find_card_by_hash(found.pan_hash).id == added.id  # type: ignore[union-attr]


def test_duplicate_card_message_shows_masked_pan(store: Store) -> None:
    store.add_card(PAN, "1234", balance=0)
    with pytest.raises(AlreadyExists) as err:
        store.add_card(PAN, "9999", balance=5)
    assert str(err.value) == "卡 622202*********0000 已存在 / card 622202*********0000 already exists"


def test_cards_can_share_an_account(store: Store) -> None:
    account = store.add_account(5_000)
    first = store.add_card(PAN, "1234", account_id=account.id)
    second = store.add_card(PAN2, "4321", account_id=account.id)
    assert first.account_id == second.account_id == account.id
    with pytest.raises(NotFound, match="account 999 not found"):
        store.add_card("4000000000000002", "1234", account_id=999)
    assert store.find_card_by_pan("4000000000000002") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pan": "6222020000000000007"}, "PAN check digit is wrong (Luhn)"),
        ({"pin": "12"}, "PIN must be 4 to 12 digits"),
        ({"expiry": "2913"}, "expiry must be YYMM (month 01-12)"),
        ({"status": "stolen"}, "status must be one of: active, lost, expired, blocked"),
        ({"balance": -1}, "balance must not be negative"),
        ({"daily_limit": -5}, "daily_limit must not be negative"),
        ({"balance": None}, "give either a balance or an account id"),
        ({"account_id": 1}, "give either a balance or an account id"),
    ],
)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # validation: one backend is enough
def test_bad_card_values(store: Store, kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    args = {"pan": PAN, "pin": "1234", "balance": 100} | kwargs
    with pytest.raises(InvalidValue, match=message.replace("(", r"\(").replace(")", r"\)")):
        store.add_card(args.pop("pan"), args.pop("pin"), **args)
    assert store.find_card_by_pan(PAN) is None


def test_card_status_change(store: Store) -> None:
    card = store.add_card(PAN, "1234", balance=1)
    store.set_card_status(card.id, "lost")
    assert store.get_card(card.id).status == "lost"
    with pytest.raises(NotFound, match="card 12345 not found"):
        store.set_card_status(12345, "lost")


def test_card_spent_since_counts_approved_sales_only(store: Store) -> None:
    card = store.add_card(PAN, "1234", balance=10_000)
    day = datetime(2024, 6, 1, tzinfo=UTC)

    def txn(stan: str, kind: str, amount: int, status: str, at: datetime) -> TxnRecord:
        return TxnRecord("10000001", "898100000000001", 1, stan, kind, amount, status, at, card_id=card.id)

    store.apply_host_batch([
        txn("000001", "sale", 100, "approved", day - timedelta(minutes=1)),
        txn("000002", "sale", 200, "approved", day),
        txn("000003", "sale", 400, "declined", day + timedelta(hours=1)),
        txn("000004", "sale", 800, "approved", day + timedelta(hours=2)),
        txn("000005", "refund", 1600, "approved", day + timedelta(hours=3)),
        txn("000006", "sale", 3200, "voided", day + timedelta(hours=4)),
    ])
    assert store.card_spent_since(card.id, day) == 1000
    assert store.card_spent_since(card.id, day + timedelta(days=1)) == 0


# --- decline rules ---------------------------------------------------------------------


def test_decline_rule_matching_order_and_fields(store: Store) -> None:
    by_pattern = store.add_decline_rule(amount_pattern="*51", respond_code="51", note="余额不足")
    by_pan = store.add_decline_rule(pan=PAN2, respond_code="14")
    by_tid_amount = store.add_decline_rule(tid="10000002", amount_eq=1000, delay_ms=3000)
    assert store.match_decline_rule("10000001", 151, PAN).id == by_pattern.id  # type: ignore[union-attr]
    assert store.match_decline_rule("10000001", 152, PAN2).id == by_pan.id  # type: ignore[union-attr]
    assert store.match_decline_rule("10000001", 1000, PAN) is None
    rule = store.match_decline_rule("10000002", 1000, PAN)
    assert rule is not None and (rule.id, rule.delay_ms, rule.respond_code) == (by_tid_amount.id, 3000, None)
    assert [r.id for r in store.decline_rules("10000001")] == [by_pattern.id, by_pan.id]
    assert store.decline_rules()[1].pan_hash == store.pan_hash(PAN2)
    store.set_decline_rule_active(by_pattern.id, False)
    assert store.match_decline_rule("10000001", 151, PAN) is None
    assert len(store.decline_rules(include_inactive=True)) == 3
    with pytest.raises(NotFound, match="decline rule 999 not found"):
        store.set_decline_rule_active(999, True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "a rule needs a response code or a delay"),
        ({"respond_code": "5"}, "response code must be 2 digits or capital letters"),
        ({"respond_code": "a0"}, "response code must be 2 digits or capital letters"),
        ({"delay_ms": -1}, "delay_ms must not be negative"),
        ({"respond_code": "05", "tid": "short"}, "TID must be 8 letters or digits"),
        ({"respond_code": "05", "pan": "1234567890123"}, r"PAN check digit is wrong \(Luhn\)"),
    ],
)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_bad_decline_rules(store: Store, kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidValue, match=message):
        store.add_decline_rule(**kwargs)


def test_rule_matches_is_pure() -> None:
    rule = DeclineRule(tid=None, amount_eq=None, amount_pattern="1?0", pan_hash=None, active=True)
    assert rule_matches(rule, "10000001", 100, None)
    assert rule_matches(rule, "10000001", 190, "h")
    assert not rule_matches(rule, "10000001", 1000, None)
    rule.active = False
    assert not rule_matches(rule, "10000001", 100, None)
