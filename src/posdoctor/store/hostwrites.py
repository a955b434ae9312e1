"""Applying a batch of host writes inside one session (one transaction).

Writes are applied in list order, except that journal rows, events and new
transactions are queued and inserted many at a time (one statement each) before the
next write of another kind and at the end. A transaction whose (tid, batch_no, stan,
kind) is already stored or earlier in the batch is skipped and reported as a
duplicate, so one repeated message cannot make the whole group commit fail.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from posdoctor.store.errors import InvalidValue
from posdoctor.store.models import Account, Batch, Card, Event, JournalEntry, Reversal, Terminal, Txn
from posdoctor.store.records import (
    TXN_KINDS,
    TXN_STATUSES,
    BalanceChange,
    BatchClosed,
    BatchOpened,
    BatchResult,
    EventRecord,
    HostWrite,
    JournalRecord,
    KeysIssued,
    KeysRetired,
    PinTriesChange,
    ReversalRecord,
    TerminalBatchChange,
    TerminalSignedIn,
    TxnKey,
    TxnRecord,
    TxnStatusChange,
)
from posdoctor.store.registry import retire_keys, store_keys


_KEY_CHUNK = 500


class _Applier:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.result = BatchResult()
        self._journal: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._txns: list[TxnRecord] = []
        self._txn_keys: set[TxnKey] = set()
        self._handlers: dict[type, Callable[[Any], None]] = {
            TxnStatusChange: self._txn_status,
            BalanceChange: self._balance,
            ReversalRecord: self._reversal,
            PinTriesChange: self._pin_tries,
            KeysIssued: self._keys,
            KeysRetired: self._keys_retired,
            TerminalSignedIn: self._signed_in,
            TerminalBatchChange: self._batch_change,
            BatchOpened: self._batch_opened,
            BatchClosed: self._batch_closed,
        }

    def apply(self, writes: Sequence[HostWrite]) -> BatchResult:
        for write in writes:
            if isinstance(write, JournalRecord):
                self._journal.append(asdict(write))
            elif isinstance(write, EventRecord):
                self._events.append(asdict(write))
            elif isinstance(write, TxnRecord):
                self._queue_txn(write)
            else:
                handler = self._handlers.get(type(write))
                if handler is None:
                    raise TypeError(f"apply_host_batch: unsupported write {type(write).__name__}")
                self._flush_queued()  # later writes may refer to queued transactions
                handler(write)
            self.result.written += 1
        self._flush_queued()
        self.result.written -= len(self.result.duplicates) + len(self.result.missing)
        return self.result

    # --- journal, events, transactions: inserted many at a time -------------------------
    def _flush_queued(self) -> None:
        if self._journal:
            self.session.execute(insert(JournalEntry), self._journal)
            self._journal = []
        if self._events:
            self.session.execute(insert(Event), self._events)
            self._events = []
        if self._txns:
            self._insert_txns(self._txns)
            self._txns, self._txn_keys = [], set()

    def _queue_txn(self, txn: TxnRecord) -> None:
        check_txn(txn.kind, txn.status)
        if txn.orig is not None and txn.orig in self._txn_keys:
            self._flush_queued()  # the original needs its id first
        if txn.key in self._txn_keys:
            self.result.duplicates.append(txn.key)
            return
        self._txns.append(txn)
        self._txn_keys.add(txn.key)

    def _stored_keys(self, keys: list[TxnKey]) -> set[TxnKey]:
        found: set[TxnKey] = set()
        columns = tuple_(Txn.tid, Txn.batch_no, Txn.stan, Txn.kind)
        for start in range(0, len(keys), _KEY_CHUNK):
            chunk = [(k.tid, k.batch_no, k.stan, k.kind) for k in keys[start : start + _KEY_CHUNK]]
            rows = self.session.execute(
                select(Txn.tid, Txn.batch_no, Txn.stan, Txn.kind).where(columns.in_(chunk))
            )
            found.update(TxnKey(*row) for row in rows)
        return found

    def _insert_txns(self, txns: list[TxnRecord]) -> None:
        stored = self._stored_keys([t.key for t in txns])
        fresh = [t for t in txns if t.key not in stored]
        self.result.duplicates.extend(t.key for t in txns if t.key in stored)
        if not fresh:
            return
        rows = [self._txn_values(t) for t in fresh]
        try:
            with self.session.begin_nested():
                ids = self.session.scalars(
                    insert(Txn).returning(Txn.id, sort_by_parameter_order=True), rows
                ).all()
        except IntegrityError:  # another writer raced us: go row by row
            for txn, row in zip(fresh, rows, strict=True):
                self._insert_one_txn(txn, row)
            return
        for txn, txn_id in zip(fresh, ids, strict=True):
            self.result.txn_ids[txn.key] = txn_id

    def _txn_values(self, txn: TxnRecord) -> dict[str, Any]:
        values = asdict(txn)
        orig = values.pop("orig")
        values["orig_txn_id"] = self._txn_id(TxnKey(**orig)) if orig else None
        return values

    def _insert_one_txn(self, txn: TxnRecord, row: dict[str, Any]) -> None:
        try:
            with self.session.begin_nested():
                txn_id = self.session.scalar(insert(Txn).values(**row).returning(Txn.id))
        except IntegrityError:
            if self._txn_id(txn.key) is None:
                raise
            self.result.duplicates.append(txn.key)
            return
        assert txn_id is not None
        self.result.txn_ids[txn.key] = txn_id

    def _txn_id(self, key: TxnKey) -> int | None:
        if key in self.result.txn_ids:
            return self.result.txn_ids[key]
        return self.session.scalar(
            select(Txn.id).where(
                Txn.tid == key.tid, Txn.batch_no == key.batch_no,
                Txn.stan == key.stan, Txn.kind == key.kind,
            )
        )

    def _txn_status(self, change: TxnStatusChange) -> None:
        check_txn(None, change.status)
        txn_id = change.txn_id
        if txn_id is None and change.key is not None:
            txn_id = self._txn_id(change.key)
        target: TxnKey | int | None = change.key if change.key is not None else change.txn_id
        if txn_id is None:
            self.result.missing.append(target if target is not None else -1)
            return
        done = self.session.execute(update(Txn).where(Txn.id == txn_id).values(status=change.status))
        if not done.rowcount:
            self.result.missing.append(txn_id)

    def _reversal(self, rev: ReversalRecord) -> None:
        orig_id = self._txn_id(rev.orig) if rev.orig is not None else None
        self.session.execute(
            insert(Reversal).values(
                tid=rev.tid, batch_no=rev.batch_no, stan=rev.stan, orig_txn_id=orig_id,
                reason=rev.reason, amount=rev.amount, at=rev.at,
            )
        )

    # --- balances, cards, terminals, batches --------------------------------------------
    def _balance(self, change: BalanceChange) -> None:
        self.session.execute(
            update(Account)
            .where(Account.id == change.account_id)
            .values(balance=Account.balance + change.delta)
        )

    def _pin_tries(self, change: PinTriesChange) -> None:
        self.session.execute(update(Card).where(Card.id == change.card_id).values(pin_tries=change.tries))

    def _keys(self, issued: KeysIssued) -> None:
        store_keys(self.session, issued.tid, issued.keys, issued.at)
        self.session.flush()

    def _keys_retired(self, retired: KeysRetired) -> None:
        retire_keys(self.session, retired.tid, list(retired.kinds))

    def _signed_in(self, signin: TerminalSignedIn) -> None:
        self.session.execute(
            update(Terminal).where(Terminal.tid == signin.tid).values(last_signin_at=signin.at)
        )

    def _batch_change(self, change: TerminalBatchChange) -> None:
        self.session.execute(
            update(Terminal).where(Terminal.tid == change.tid).values(batch_no=change.batch_no)
        )

    def _batch_row(self, tid: str, batch_no: int, at: Any) -> Batch:
        batch = self.session.scalar(
            select(Batch).where(Batch.tid == tid, Batch.batch_no == batch_no)
        )
        if batch is None:
            batch = Batch(
                tid=tid, batch_no=batch_no, status="open", opened_at=at,
                debit_amount=0, debit_count=0, credit_amount=0, credit_count=0,
            )
            self.session.add(batch)
        return batch

    def _batch_opened(self, opened: BatchOpened) -> None:
        self._batch_row(opened.tid, opened.batch_no, opened.at)
        self.session.flush()

    def _batch_closed(self, closed: BatchClosed) -> None:
        batch = self._batch_row(closed.tid, closed.batch_no, closed.at)
        batch.status, batch.settled_at, batch.flag = closed.status, closed.at, closed.flag
        batch.debit_amount, batch.debit_count = closed.debit_amount, closed.debit_count
        batch.credit_amount, batch.credit_count = closed.credit_amount, closed.credit_count
        self.session.flush()


def check_txn(kind: str | None, status: str) -> None:
    if kind is not None and kind not in TXN_KINDS:
        raise InvalidValue("kind", f"交易类型 {kind} 无效", f"transaction kind {kind} is invalid")
    if status not in TXN_STATUSES:
        raise InvalidValue(
            "status", f"交易状态 {status} 无效", f"transaction status {status} is invalid"
        )


def apply_host_writes(session: Session, writes: Sequence[HostWrite]) -> BatchResult:
    """Apply ``writes`` in order within ``session``'s transaction (no commit here)."""
    return _Applier(session).apply(writes)
