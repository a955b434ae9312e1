"""The store behind the host: bulk loading into `Registry` records.

Single rows go through the `Store` facade; the start-up snapshot reads the store's
models in one session (the facade has no bulk readers). Writes go through
`Store.apply_host_batch` (see `ledger`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, time

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session as DbSession

from posdoctor.crypto.hsm import WrappedKey
from posdoctor.host.records import (
    AccountRecord,
    CardRecord,
    DeclineRule,
    MerchantRecord,
    SignOn,
    TerminalRecord,
    Totals,
    TxnState,
)
from posdoctor.host.registry import Snapshot
from posdoctor.store import Store
from posdoctor.store import models as m
from posdoctor.store.base import wrapped_key_from_row

NMI_BY_SHAPE = {("SM4", 16): "006", ("TDES", 8): "001"}


def signon_from_keys(keys: dict[str, m.TerminalKey]) -> SignOn | None:
    """The sign-in a terminal's active PIK/MAK(/TDK) rows stand for, if any."""
    pik, mak = keys.get("PIK"), keys.get("MAK")
    if pik is None or mak is None:
        return None
    tdk = keys.get("TDK")
    if tdk is not None and tdk.issued_at != pik.issued_at:
        tdk = None  # left over from an earlier sign-in with a TDK
    nmi = NMI_BY_SHAPE.get((pik.alg, pik.length), "004" if tdk is not None else "003")
    wrapped_pik = wrapped_key_from_row(pik)
    return SignOn(nmi, wrapped_pik.alg, wrapped_pik, wrapped_key_from_row(mak),
                  wrapped_key_from_row(tdk) if tdk is not None else None, pik.issued_at)


def last_settlement(row: m.Batch | None) -> tuple[int, Totals] | None:
    if row is None:
        return None
    return row.batch_no, Totals(row.debit_amount, row.debit_count, row.credit_amount, row.credit_count)


def terminal_record(row: m.Terminal, keys: dict[str, m.TerminalKey], settled: m.Batch | None = None) -> TerminalRecord:
    def key(kind: str) -> WrappedKey | None:
        return wrapped_key_from_row(keys[kind]) if kind in keys else None

    return TerminalRecord(
        tid=row.tid, mid=row.mid, serial=row.serial, model=row.model or "", status=row.status,
        batch_no=row.batch_no, tk=key("TK"), tmk=key("TMK"), signon=signon_from_keys(keys),
        settled=last_settlement(settled),
    )


def merchant_record(row: m.Merchant) -> MerchantRecord:
    return MerchantRecord(row.mid, row.name, row.status)


def card_record(row: m.Card) -> CardRecord:
    return CardRecord(
        id=row.id, pan_hash=row.pan_hash, pan_masked=row.pan_masked, account_id=row.account_id,
        status=row.status, expiry=row.expiry, pin_sealed=row.pin_sealed,
        single_limit=row.single_limit, daily_limit=row.daily_limit, pin_tries=row.pin_tries,
    )


def rule_record(row: m.DeclineRule) -> DeclineRule:
    return DeclineRule(
        id=row.id, tid=row.tid, pan_hash=row.pan_hash, amount_eq=row.amount_eq,
        amount_pattern=row.amount_pattern, code=row.respond_code,
        delay_s=(row.delay_ms or 0) / 1000.0, active=row.active,
    )


def txn_states(rows: Iterable[m.Txn], accounts_by_card: dict[int, int]) -> list[TxnState]:
    """Rows -> states, with originals linked and refunded amounts summed."""
    states: dict[int, TxnState] = {}
    originals: dict[int, int] = {}
    for row in rows:
        states[row.id] = TxnState(
            tid=row.tid, mid=row.mid, batch_no=row.batch_no, stan=row.stan, kind=row.kind, at=row.at,
            status=row.status, amount=row.amount, rrn=row.rrn, auth_code=row.auth_code, rc=row.rc,
            pan_masked=row.pan_masked, pan_hash=row.pan_hash, card_id=row.card_id,
            account_id=accounts_by_card.get(row.card_id) if row.card_id is not None else None,
        )
        if row.orig_txn_id is not None:
            originals[row.id] = row.orig_txn_id
    for txn_id, orig_id in originals.items():
        txn, orig = states[txn_id], states.get(orig_id)
        txn.orig = orig
        if orig is not None and txn.kind == "refund" and txn.status == "approved":
            orig.refunded += txn.amount
    return list(states.values())


def _active_keys(session: DbSession, tid: str | None = None) -> dict[str, dict[str, m.TerminalKey]]:
    query = select(m.TerminalKey).where(m.TerminalKey.active).order_by(m.TerminalKey.id)
    if tid is not None:
        query = query.where(m.TerminalKey.tid == tid)
    keys: dict[str, dict[str, m.TerminalKey]] = defaultdict(dict)
    for row in session.scalars(query):
        keys[row.tid][row.kind] = row  # the newest active row of a kind wins
    return keys


def _last_settled(session: DbSession, tid: str | None = None) -> dict[str, m.Batch]:
    query = select(m.Batch).where(m.Batch.status == "settled").order_by(m.Batch.settled_at, m.Batch.id)
    if tid is not None:
        query = query.where(m.Batch.tid == tid)
    return {row.tid: row for row in session.scalars(query)}  # the latest per terminal wins


def start_of_local_day(now: datetime) -> datetime:
    local = now.astimezone()
    return datetime.combine(local.date(), time(0), tzinfo=local.tzinfo)


class StoreSource:
    """`RegistrySource` over a `Store` (runs in worker threads, never on the event loop)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def load_snapshot(self, now: datetime | None = None) -> Snapshot:
        now = now or m.utcnow()
        with DbSession(self.store.engine) as session:
            keys, settled = _active_keys(session), _last_settled(session)
            terminals = [terminal_record(row, keys.get(row.tid, {}), settled.get(row.tid))
                         for row in session.scalars(select(m.Terminal))]
            merchants = [merchant_record(row) for row in session.scalars(select(m.Merchant))]
            cards = [card_record(row) for row in session.scalars(select(m.Card))]
            accounts = [AccountRecord(row.id, row.balance) for row in session.scalars(select(m.Account))]
            rules = [rule_record(row) for row in
                     session.scalars(select(m.DeclineRule).where(m.DeclineRule.active).order_by(m.DeclineRule.id))]
            open_rows = session.scalars(
                select(m.Txn)
                .outerjoin(m.Batch, and_(m.Batch.tid == m.Txn.tid, m.Batch.batch_no == m.Txn.batch_no))
                .where(or_(m.Batch.id.is_(None), m.Batch.status != "settled"))
                .order_by(m.Txn.id)
            )
            open_txns = txn_states(open_rows, {c.id: c.account_id for c in cards})
            self._count_spending_today(session, cards, now)
        return Snapshot(terminals, merchants, cards, accounts, rules, open_txns)

    @staticmethod
    def _count_spending_today(session: DbSession, cards: list[CardRecord], now: datetime) -> None:
        since = start_of_local_day(now)
        spent = dict(session.execute(
            select(m.Txn.card_id, func.sum(m.Txn.amount))
            .where(m.Txn.kind == "sale", m.Txn.status.in_(("approved", "refunded")), m.Txn.at >= since)
            .group_by(m.Txn.card_id)
        ).all())
        day = since.strftime("%Y%m%d")
        for card in cards:
            card.spent_on, card.spent_today = day, int(spent.get(card.id) or 0)

    def load_terminal(self, tid: str | None = None, serial: str | None = None) -> tuple[TerminalRecord | None, MerchantRecord | None]:
        with DbSession(self.store.engine) as session:
            query = select(m.Terminal)
            query = query.where(m.Terminal.tid == tid) if tid is not None else query.where(m.Terminal.serial == serial)
            row = session.scalars(query.order_by(m.Terminal.tid)).first()
            if row is None:
                return None, None
            terminal = terminal_record(row, _active_keys(session, row.tid).get(row.tid, {}),
                                       _last_settled(session, row.tid).get(row.tid))
            merchant = session.get(m.Merchant, row.mid)
            return terminal, merchant_record(merchant) if merchant is not None else None

    def load_card(self, pan_hash: str) -> tuple[CardRecord | None, AccountRecord | None]:
        card = self.store.find_card_by_hash(pan_hash)
        if card is None:
            return None, None
        account = self.store.get_account(card.account_id)
        return card_record(card), AccountRecord(account.id, account.balance)

    def load_txn_by_rrn(self, rrn: str) -> TxnState | None:
        with DbSession(self.store.engine) as session:
            row = session.scalars(select(m.Txn).where(m.Txn.rrn == rrn).order_by(m.Txn.id)).first()
            if row is None:
                return None
            refunds = session.scalars(select(m.Txn).where(m.Txn.orig_txn_id == row.id)).all()
            account = session.scalar(select(m.Card.account_id).where(m.Card.id == row.card_id))
        accounts = {row.card_id: account} if row.card_id is not None and account is not None else {}
        states = txn_states([row, *refunds], accounts)
        return states[0]

    def load_batch(self, tid: str, batch_no: int) -> list[TxnState]:
        rows = self.store.txns_in_batch(tid, batch_no)
        with DbSession(self.store.engine) as session:
            card_ids = {row.card_id for row in rows if row.card_id is not None}
            accounts = dict(session.execute(select(m.Card.id, m.Card.account_id).where(m.Card.id.in_(card_ids))).all())
        return txn_states(rows, accounts)

    def pan_hash(self, pan: str) -> str:
        return self.store.pan_hash(pan)

    def unseal_pin(self, card: CardRecord) -> str:
        return self.store.card_pin(card)

