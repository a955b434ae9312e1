"""The test issuer: cards with balances, PINs, limits and status; decline rules.

It decides; it does not write. Money moves through `move_money()`, which changes the
in-memory balance and records the change in the message's `WriteSet` (committed by
the ledger before the answer leaves).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from posdoctor.host.ledger import WriteSet
from posdoctor.host.records import CardRecord, DeclineRule, SignOn, TxnState
from posdoctor.host.results import Result
from posdoctor.store.records import BalanceChange, PinTriesChange

if TYPE_CHECKING:
    from posdoctor.crypto.hsm import SoftHSM
    from posdoctor.host.config import HostConfig
    from posdoctor.host.registry import Registry


@dataclass(frozen=True, slots=True)
class Decision:
    result: Result
    reason: str = ""
    code: str | None = None
    """Field 39 forced by a decline rule (with Result.ISSUER_DECLINED)."""

    @property
    def approved(self) -> bool:
        return self.result is Result.OK


APPROVED = Decision(Result.OK, "approved")


def local_day(at: datetime) -> str:
    """YYYYMMDD of the host's local day (daily limits reset at local midnight)."""
    start, end, day = _last_local_day
    if at.tzinfo is not None and start <= at < end:
        return day
    return _remember_local_day(at)


def _remember_local_day(at: datetime) -> str:
    """`at`'s local day, remembered with its bounds: `astimezone()` consults the OS time
    zone (a few µs, partly in system calls), and every sale asks twice."""
    global _last_local_day
    local = at.astimezone()
    day = local.strftime("%Y%m%d")
    if at.tzinfo is not None:
        midnight = time.mktime((local.year, local.month, local.day, 0, 0, 0, 0, 0, -1))
        next_midnight = time.mktime((local.year, local.month, local.day + 1, 0, 0, 0, 0, 0, -1))
        _last_local_day = (datetime.fromtimestamp(midnight, UTC), datetime.fromtimestamp(next_midnight, UTC), day)
    return day


_last_local_day = (datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC), "")


def card_expired(expiry: str, now: datetime) -> bool:
    """A YYMM card is valid through the last day of that month."""
    year, month = 2000 + int(expiry[:2]), int(expiry[2:4])
    return (now.year, now.month) > (year, month)


class TestIssuer:
    __test__ = False  # not a pytest class

    def __init__(self, registry: Registry, hsm: SoftHSM, config: HostConfig) -> None:
        self.registry = registry
        self.hsm = hsm
        self.config = config

    # --- card and cardholder --------------------------------------------------------
    def check_card(self, card: CardRecord, now: datetime) -> Decision:
        if card.status == "expired":
            return Decision(Result.CARD_EXPIRED, "card status is expired")
        if card.status != "active":
            return Decision(Result.UNKNOWN_CARD, f"card status is {card.status}")
        if card.expiry and card_expired(card.expiry, now):
            return Decision(Result.CARD_EXPIRED, f"card expired at the end of {card.expiry[2:]}/{card.expiry[:2]}")
        return APPROVED

    def verify_pin(self, card: CardRecord, signon: SignOn, block: bytes, pan: str, writes: WriteSet) -> Decision:
        """Check the PIN block from field 52 under the session PIK, counting failures."""
        limit = self.config.max_pin_tries
        if card.pin_tries >= limit:
            return Decision(Result.PIN_TRIES_EXCEEDED, f"{card.pin_tries} wrong PINs: card locked for PIN use")
        expected = self.registry.card_pin(card)
        if expected is None:
            return Decision(Result.WRONG_PIN, "card has no PIN on file")
        if self.hsm.verify_pin(signon.pik, block, pan, expected):
            if card.pin_tries:
                card.pin_tries = 0
                writes.append(PinTriesChange(card.id, 0))
            return Decision(Result.OK, "PIN verified under the session PIK")
        card.pin_tries += 1
        writes.append(PinTriesChange(card.id, card.pin_tries))
        if card.pin_tries >= limit:
            return Decision(Result.PIN_TRIES_EXCEEDED, f"wrong PIN ({card.pin_tries} of {limit}): locked")
        return Decision(Result.WRONG_PIN, f"wrong PIN ({card.pin_tries} of {limit})")

    # --- rules ------------------------------------------------------------------------
    def matching_rule(self, tid: str, pan_hash: str, amount: int) -> DeclineRule | None:
        cents = str(amount)
        for rule in self.registry.rules:
            if not rule.active:
                continue
            if rule.tid is not None and rule.tid != tid:
                continue
            if rule.pan_hash is not None and rule.pan_hash != pan_hash:
                continue
            if rule.amount_eq is not None and rule.amount_eq != amount:
                continue
            if rule.amount_pattern and not fnmatchcase(cents, rule.amount_pattern):
                continue
            return rule
        return None

    async def apply_rules(self, tid: str, card: CardRecord, amount: int) -> Decision:
        """Wait the rule's delay (bounded by the issuer timeout), then its forced code."""
        rule = self.matching_rule(tid, card.pan_hash, amount)
        if rule is None:
            return APPROVED
        timeout = self.config.issuer_timeout_s
        if rule.delay_s:
            if rule.delay_s >= timeout:
                await asyncio.sleep(timeout)
                return Decision(
                    Result.ISSUER_TIMEOUT,
                    f"issuer gave no answer within {timeout:g}s (rule {rule.id} delays {rule.delay_s:g}s)",
                )
            await asyncio.sleep(rule.delay_s)
        if rule.code and rule.code != "00":
            return Decision(Result.ISSUER_DECLINED, f"decline rule {rule.id} forces {rule.code}", rule.code)
        return APPROVED

    # --- money --------------------------------------------------------------------------
    def check_debit(self, card: CardRecord, amount: int, now: datetime) -> Decision:
        if amount <= 0:
            return Decision(Result.INVALID_AMOUNT, "amount must be positive")
        if card.single_limit is not None and amount > card.single_limit:
            return Decision(Result.OVER_LIMIT, f"amount {amount} over the single limit {card.single_limit}")
        today = local_day(now)
        spent = card.spent_today if card.spent_on == today else 0
        if card.daily_limit is not None and spent + amount > card.daily_limit:
            return Decision(Result.OVER_LIMIT, f"{spent} spent today + {amount} over the daily limit {card.daily_limit}")
        account = self.registry.accounts[card.account_id]
        if account.balance < amount:
            return Decision(Result.INSUFFICIENT_FUNDS, f"balance {account.balance} below amount {amount}")
        return APPROVED

    def move_money(self, account_id: int, delta: int, writes: WriteSet) -> None:
        """Change a balance (negative = debit) in memory and in the pending write set."""
        self.registry.accounts[account_id].balance += delta
        writes.append(BalanceChange(account_id, delta))

    def count_spending(self, card: CardRecord, amount: int, now: datetime) -> None:
        today = local_day(now)
        if card.spent_on != today:
            card.spent_on, card.spent_today = today, 0
        card.spent_today += amount

    def uncount_spending(self, sale: TxnState) -> None:
        """A voided or reversed sale no longer counts toward its day's limit."""
        card = self.registry.cards.get(sale.pan_hash or "")
        if card is not None and card.spent_on == local_day(sale.at):
            card.spent_today = max(0, card.spent_today - sale.amount)

    def count_spending_again(self, sale: TxnState) -> None:
        """A sale whose void was reversed counts again."""
        card = self.registry.cards.get(sale.pan_hash or "")
        if card is not None and card.spent_on == local_day(sale.at):
            card.spent_today += sale.amount
