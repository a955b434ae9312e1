"""The test issuer's decisions, without sockets or a database."""

import asyncio
import time
from datetime import UTC, datetime

import pytest

from posdoctor.crypto.ciphers import Algorithm
from posdoctor.crypto.hsm import SoftHSM
from posdoctor.host.config import HostConfig
from posdoctor.host.issuer import TestIssuer, card_expired
from posdoctor.host.records import AccountRecord, CardRecord, DeclineRule, SignOn
from posdoctor.host.registry import Registry
from posdoctor.host.results import Result
from posdoctor.store.records import BalanceChange, PinTriesChange

PAN = "6222020000000000000"
NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


class PinSource:
    """Just enough of a registry source: the PIN of every card is 1234."""

    def unseal_pin(self, card):
        return "1234"


@pytest.fixture
def setup():
    hsm = SoftHSM(bytes(range(32)))
    registry = Registry(PinSource())  # type: ignore[arg-type]
    card = CardRecord(id=1, pan_hash="h1", pan_masked="622202*********0000", account_id=7, status="active",
                      expiry="2512", pin_sealed=b"", single_limit=5_000, daily_limit=8_000)
    registry.cards[card.pan_hash] = card
    registry.accounts[7] = AccountRecord(7, 10_000)
    config = HostConfig(issuer_timeout_s=0.05, max_pin_tries=3)
    pik = hsm.generate_key(16, Algorithm.TDES)
    signon = SignOn("004", Algorithm.TDES, pik, hsm.generate_key(), None, NOW)
    return TestIssuer(registry, hsm, config), registry, card, signon, hsm


@pytest.mark.parametrize(("expiry", "expired"), [("2505", True), ("2506", False), ("2507", False), ("2412", True)])
def test_a_card_is_valid_through_its_expiry_month(expiry, expired):
    assert card_expired(expiry, NOW) is expired


@pytest.mark.parametrize(("status", "result"), [("active", Result.OK), ("expired", Result.CARD_EXPIRED),
                                                ("lost", Result.UNKNOWN_CARD), ("blocked", Result.UNKNOWN_CARD)])
def test_card_status(setup, status, result):
    issuer, _, card, _, _ = setup
    card.status = status
    assert issuer.check_card(card, NOW).result is result


def test_expired_card(setup):
    issuer, _, card, _, _ = setup
    card.expiry = "2505"
    decision = issuer.check_card(card, NOW)
    assert (decision.result, decision.reason) == (Result.CARD_EXPIRED, "card expired at the end of 05/25")


@pytest.mark.parametrize(("amount", "result"), [(4_000, Result.OK), (5_001, Result.OVER_LIMIT),
                                                (0, Result.INVALID_AMOUNT)])
def test_single_limit(setup, amount, result):
    issuer, _, card, _, _ = setup
    assert issuer.check_debit(card, amount, NOW).result is result


def test_daily_limit_counts_the_day_spent(setup):
    issuer, _, card, _, _ = setup
    issuer.count_spending(card, 4_000, NOW)
    assert issuer.check_debit(card, 4_000, NOW).result is Result.OK
    issuer.count_spending(card, 4_000, NOW)
    decision = issuer.check_debit(card, 100, NOW)
    assert decision.result is Result.OVER_LIMIT
    assert decision.reason == "8000 spent today + 100 over the daily limit 8000"


def test_insufficient_funds(setup):
    issuer, registry, card, _, _ = setup
    registry.accounts[7].balance = 300
    decision = issuer.check_debit(card, 301, NOW)
    assert (decision.result, decision.reason) == (Result.INSUFFICIENT_FUNDS, "balance 300 below amount 301")


def test_move_money_changes_memory_and_records_the_delta(setup):
    issuer, registry, _, _, _ = setup
    writes: list = []
    issuer.move_money(7, -250, writes)
    assert registry.accounts[7].balance == 9_750
    assert writes == [BalanceChange(7, -250)]


def test_pin_tries_count_lock_and_reset(setup):
    issuer, _, card, signon, hsm = setup
    wrong, right = hsm.encrypt_pin(signon.pik, "9999", PAN), hsm.encrypt_pin(signon.pik, "1234", PAN)
    writes: list = []
    assert issuer.verify_pin(card, signon, wrong, PAN, writes).result is Result.WRONG_PIN
    assert issuer.verify_pin(card, signon, right, PAN, writes).result is Result.OK
    assert card.pin_tries == 0
    results = [issuer.verify_pin(card, signon, wrong, PAN, writes).result for _ in range(3)]
    assert results == [Result.WRONG_PIN, Result.WRONG_PIN, Result.PIN_TRIES_EXCEEDED]
    locked = issuer.verify_pin(card, signon, right, PAN, writes)
    assert locked.result is Result.PIN_TRIES_EXCEEDED
    assert writes[:2] == [PinTriesChange(1, 1), PinTriesChange(1, 0)]
    assert writes[-1] == PinTriesChange(1, 3)


def rule(**kw) -> DeclineRule:
    return DeclineRule(id=kw.pop("id", 1), **kw)


@pytest.mark.parametrize(("fields", "amount", "tid", "matches"), [
    ({"amount_pattern": "*51"}, 151, "T1", True),
    ({"amount_pattern": "*51"}, 150, "T1", False),
    ({"amount_eq": 777}, 777, "T1", True),
    ({"amount_eq": 777}, 778, "T1", False),
    ({"tid": "T2"}, 100, "T1", False),
    ({"tid": "T1"}, 100, "T1", True),
    ({"pan_hash": "other"}, 100, "T1", False),
    ({"pan_hash": "h1"}, 100, "T1", True),
    ({"active": False}, 100, "T1", False),
])
def test_rule_matching(setup, fields, amount, tid, matches):
    issuer, registry, card, _, _ = setup
    registry.rules = [rule(code="05", **fields)]
    assert (issuer.matching_rule(tid, card.pan_hash, amount) is not None) is matches


async def test_forced_code_and_short_delay(setup):
    issuer, registry, card, _, _ = setup
    registry.rules = [rule(code="58", delay_s=0.01)]
    started = time.perf_counter()
    decision = await issuer.apply_rules("T1", card, 100)
    assert time.perf_counter() - started >= 0.01
    assert (decision.result, decision.code) == (Result.ISSUER_DECLINED, "58")


async def test_a_delay_past_the_issuer_timeout_is_a_timeout(setup):
    issuer, registry, card, _, _ = setup
    registry.rules = [rule(id=4, delay_s=10.0)]
    decision = await asyncio.wait_for(issuer.apply_rules("T1", card, 100), 1.0)
    assert decision.result is Result.ISSUER_TIMEOUT
    assert decision.reason == "issuer gave no answer within 0.05s (rule 4 delays 10s)"


async def test_a_delay_only_rule_approves(setup):
    issuer, registry, card, _, _ = setup
    registry.rules = [rule(delay_s=0.001)]
    assert (await issuer.apply_rules("T1", card, 100)).approved


LOCAL_DAY_CHILD = """
from datetime import UTC, datetime, timedelta
from posdoctor.host.issuer import local_day

start = datetime(2026, 3, 1, tzinfo=UTC)  # spans spring-forward and fall-back where there is DST
wrong = [t for t in (start + timedelta(minutes=17 * i) for i in range(30_000))
         if local_day(t) != t.astimezone().strftime("%Y%m%d")]
backwards = [t for t in (start + timedelta(days=300) - timedelta(minutes=23 * i) for i in range(20_000))
             if local_day(t) != t.astimezone().strftime("%Y%m%d")]
print(len(wrong), len(backwards))
"""


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Lord_Howe", "UTC"])
def test_local_day_matches_the_os_time_zone_across_midnights_and_dst(zone: str) -> None:
    """`local_day` remembers the bounds of the last day it worked out; every minute
    sampled over most of a year (forwards, then backwards) must still match the OS."""
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", LOCAL_DAY_CHILD], capture_output=True, text=True, check=True,
                         timeout=120, env={**os.environ, "TZ": zone})
    assert out.stdout.split() == ["0", "0"]
