"""Issuer part of the ``Store``: accounts, cards (PAN hashed, PIN sealed), decline rules."""

from __future__ import annotations

import re
from datetime import datetime
from fnmatch import fnmatchcase

from sqlalchemy import func, select, update

from posdoctor.store.base import StoreBase, insert_new
from posdoctor.store.errors import AlreadyExists, InvalidValue, NotFound
from posdoctor.store.models import Account, Card, DeclineRule, Txn
from posdoctor.store.records import SealedCard
from posdoctor.store.validate import (
    CARD_STATUSES,
    mask_pan,
    validate_amount,
    validate_choice,
    validate_expiry,
    validate_pan,
    validate_pin,
    validate_tid,
)

_RESPONSE_CODE = re.compile(r"[0-9A-Z]{2}")


def rule_matches(rule: DeclineRule, tid: str, amount: int, pan_hash: str | None) -> bool:
    """True when every non-empty match column of ``rule`` agrees with the request.

    ``amount_pattern`` is a glob (fnmatch) over the amount in cents without padding:
    ``"*51"`` matches 151, 2051...
    """
    if not rule.active:
        return False
    if rule.tid is not None and rule.tid != tid:
        return False
    if rule.pan_hash is not None and rule.pan_hash != pan_hash:
        return False
    if rule.amount_eq is not None and rule.amount_eq != amount:
        return False
    return not rule.amount_pattern or fnmatchcase(str(amount), rule.amount_pattern)


class CardsMixin(StoreBase):
    # --- accounts ------------------------------------------------------------------
    def add_account(self, balance: int, currency: str = "156") -> Account:
        validate_amount("balance", balance)
        with self._write() as session:
            account = Account(balance=balance, currency=currency)
            session.add(account)
        return account

    def get_account(self, account_id: int) -> Account:
        with self._read() as session:
            account = session.get(Account, account_id)
        if account is None:
            raise NotFound("account", str(account_id))
        return account

    # --- cards ---------------------------------------------------------------------
    def add_card(
        self,
        pan: str,
        pin: str,
        *,
        balance: int | None = None,
        account_id: int | None = None,
        expiry: str | None = None,
        status: str = "active",
        single_limit: int | None = None,
        daily_limit: int | None = None,
    ) -> Card:
        """Issue a test card. Give ``balance`` to open a new account for it, or
        ``account_id`` to share an existing one."""
        self._check_card_values(pan, pin, expiry, status, single_limit, daily_limit)
        if (balance is None) == (account_id is None):
            raise InvalidValue(
                "balance", "必须给出余额或账户之一", "give either a balance or an account id"
            )
        pan_hash = self.secrets.pan_hash(pan)
        with self._write() as session:
            if session.scalar(select(Card.id).where(Card.pan_hash == pan_hash)) is not None:
                raise AlreadyExists("card", mask_pan(pan))
            if account_id is None:
                account = Account(balance=validate_amount("balance", balance or 0))
                session.add(account)
                session.flush()
                account_id = account.id
            elif session.get(Account, account_id) is None:
                raise NotFound("account", str(account_id))
            card = Card(
                pan_hash=pan_hash,
                pan_masked=mask_pan(pan),
                pin_sealed=self.secrets.seal_pin(pin, pan_hash),
                expiry=expiry,
                status=status,
                single_limit=single_limit,
                daily_limit=daily_limit,
                pin_tries=0,
                account_id=account_id,
            )
            insert_new(session, card, "card", mask_pan(pan))
        return card

    @staticmethod
    def _check_card_values(
        pan: str,
        pin: str,
        expiry: str | None,
        status: str,
        single_limit: int | None,
        daily_limit: int | None,
    ) -> None:
        validate_pan(pan)
        validate_pin(pin)
        if expiry is not None:
            validate_expiry(expiry)
        validate_choice("status", status, CARD_STATUSES)
        if single_limit is not None:
            validate_amount("single_limit", single_limit)
        if daily_limit is not None:
            validate_amount("daily_limit", daily_limit)

    def pan_hash(self, pan: str) -> str:
        """The lookup key of ``pan`` (HMAC-SHA256 under an LMK-derived key)."""
        return self.secrets.pan_hash(pan)

    def find_card_by_pan(self, pan: str) -> Card | None:
        """The card for a PAN from field 2 or 35, or None."""
        return self.find_card_by_hash(self.secrets.pan_hash(pan))

    def find_card_by_hash(self, pan_hash: str) -> Card | None:
        with self._read() as session:
            return session.scalar(select(Card).where(Card.pan_hash == pan_hash))

    def get_card(self, card_id: int) -> Card:
        with self._read() as session:
            card = session.get(Card, card_id)
        if card is None:
            raise NotFound("card", str(card_id))
        return card

    def card_pin(self, card: SealedCard) -> str:
        """The card's clear PIN, only to hand to ``SoftHSM.verify_pin``; never display it."""
        return self.secrets.unseal_pin(card.pin_sealed, card.pan_hash)

    def set_card_status(self, card_id: int, status: str) -> None:
        validate_choice("status", status, CARD_STATUSES)
        with self._write() as session:
            changed = session.execute(
                update(Card).where(Card.id == card_id).values(status=status)
            ).rowcount
        if not changed:
            raise NotFound("card", str(card_id))

    def card_spent_since(self, card_id: int, since: datetime) -> int:
        """Cents of approved sales on the card at or after ``since`` (daily limit)."""
        query = select(func.coalesce(func.sum(Txn.amount), 0)).where(
            Txn.card_id == card_id, Txn.kind == "sale", Txn.status == "approved", Txn.at >= since
        )
        with self._read() as session:
            return int(session.scalar(query) or 0)

    # --- decline rules -------------------------------------------------------------
    def add_decline_rule(
        self,
        *,
        respond_code: str | None = None,
        delay_ms: int | None = None,
        tid: str | None = None,
        amount_eq: int | None = None,
        amount_pattern: str | None = None,
        pan: str | None = None,
        note: str | None = None,
    ) -> DeclineRule:
        """A test rule: requests matching tid/amount/PAN get ``respond_code`` and/or
        wait ``delay_ms`` first. The PAN is stored only as its hash."""
        if respond_code is None and delay_ms is None:
            raise InvalidValue(
                "rule", "规则必须给出应答码或延时", "a rule needs a response code or a delay"
            )
        if respond_code is not None and not _RESPONSE_CODE.fullmatch(respond_code):
            raise InvalidValue(
                "respond_code", "应答码必须是2位数字或大写字母",
                "response code must be 2 digits or capital letters",
            )
        if delay_ms is not None:
            validate_amount("delay_ms", delay_ms)
        if tid is not None:
            validate_tid(tid)
        if amount_eq is not None:
            validate_amount("amount_eq", amount_eq)
        rule = DeclineRule(
            tid=tid,
            amount_eq=amount_eq,
            amount_pattern=amount_pattern,
            pan_hash=self.secrets.pan_hash(validate_pan(pan)) if pan is not None else None,
            respond_code=respond_code,
            delay_ms=delay_ms,
            active=True,
            note=note,
        )
        with self._write() as session:
            session.add(rule)
        return rule

    def decline_rules(self, tid: str | None = None, *, include_inactive: bool = False) -> list[DeclineRule]:
        """Rules in match order (oldest first); with ``tid``, those that can apply to it."""
        query = select(DeclineRule).order_by(DeclineRule.id)
        if tid is not None:
            query = query.where((DeclineRule.tid.is_(None)) | (DeclineRule.tid == tid))
        if not include_inactive:
            query = query.where(DeclineRule.active)
        with self._read() as session:
            return list(session.scalars(query))

    def match_decline_rule(self, tid: str, amount: int, pan: str | None) -> DeclineRule | None:
        """The first active rule matching the request, or None."""
        pan_hash = self.secrets.pan_hash(pan) if pan is not None else None
        for rule in self.decline_rules(tid):
            if rule_matches(rule, tid, amount, pan_hash):
                return rule
        return None

    def set_decline_rule_active(self, rule_id: int, active: bool) -> None:
        with self._write() as session:
            changed = session.execute(
                update(DeclineRule).where(DeclineRule.id == rule_id).values(active=active)
            ).rowcount
        if not changed:
            raise NotFound("decline rule", str(rule_id))
