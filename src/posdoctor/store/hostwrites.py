"""Applying a batch of host writes inside one session (one transaction).

Writes are applied in list order, except that journal rows, events, new transactions
and issued keys are queued and inserted many at a time (one executemany each) before
the next write of another kind and at the end. A transaction whose (tid, batch_no,
stan, kind) is already stored or earlier in the batch is skipped and reported as a
duplicate, so one repeated message cannot make the whole group commit fail.

Speed (this is the host's group commit, thousands of rows a second): rows are built
from the records' attributes (no deep copies) and written with SQLAlchemy Core on the
session's connection, not through the ORM's unit of work. New transactions are
inserted optimistically in one statement (ids back by RETURNING, in parameter order);
only when that statement fails is the batch checked against the stored keys and
retried row by row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from posdoctor.store.bulk import BulkStatement
from posdoctor.store.errors import InvalidValue
from posdoctor.store.models import (
    Account, Batch, Card, Event, JournalEntry, Reversal, Terminal, TerminalKey, Txn, utcnow,
)
from posdoctor.store.records import (
    KEY_KINDS,
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
from posdoctor.store.registry import retire_keys

_KEY_CHUNK = 500

JOURNAL_COLUMNS = ("direction", "at", "tid", "mid", "route", "mti", "stan", "rc", "steps",
                   "latency_ms", "fields", "raw_hex", "peer")
EVENT_COLUMNS = ("source", "kind", "at", "tid", "code", "detail")
TXN_COLUMNS = ("tid", "mid", "batch_no", "stan", "kind", "amount", "status", "at", "rrn",
               "auth_code", "rc", "pan_masked", "pan_hash", "card_id")

_journal_values = attrgetter(*JOURNAL_COLUMNS)
_event_values = attrgetter(*EVENT_COLUMNS)
_txn_values = attrgetter(*TXN_COLUMNS)

_JOURNAL, _EVENTS, _TXNS, _KEYS = (JournalEntry.__table__, Event.__table__, Txn.__table__,
                                   TerminalKey.__table__)
_INSERT_TXNS = insert(_TXNS).returning(_TXNS.c.id, sort_by_parameter_order=True)
_TERMINALS = Terminal.__table__
KEY_COLUMNS = ("tid", "kind", "blob", "kcv", "alg", "length", "issued_at", "active")
_JOURNAL_ROWS = BulkStatement.insert(_JOURNAL, JOURNAL_COLUMNS)
_EVENT_ROWS = BulkStatement.insert(_EVENTS, EVENT_COLUMNS)
_KEY_ROWS = BulkStatement.insert(_KEYS, KEY_COLUMNS)
_SIGNED_IN = BulkStatement.update(_TERMINALS, ("last_signin_at",), "tid")
_ADD_TO_BALANCE = (
    update(Account.__table__)
    .where(Account.__table__.c.id == bindparam("account_id"))
    .values(balance=Account.__table__.c.balance + bindparam("delta"))
)


class _Applier:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.conn: Connection = session.connection()
        self.result = BatchResult()
        self._journal: list[tuple[Any, ...]] = []
        self._events: list[tuple[Any, ...]] = []
        self._txns: list[TxnRecord] = []
        self._txn_keys: set[TxnKey] = set()
        self._keys: list[KeysIssued] = []
        self._key_tids: set[str] = set()
        self._signed_in: dict[str, Any] = {}
        self._handlers: dict[type, Callable[[Any], None]] = {
            TxnStatusChange: self._txn_status,
            BalanceChange: self._balance,
            ReversalRecord: self._reversal,
            PinTriesChange: self._pin_tries,
            KeysRetired: self._keys_retired,
            TerminalBatchChange: self._batch_change,
            BatchOpened: self._batch_opened,
            BatchClosed: self._batch_closed,
        }

    def apply(self, writes: Sequence[HostWrite]) -> BatchResult:
        for write in writes:
            kind = type(write)
            if kind is JournalRecord:
                self._journal.append(_journal_values(write))
            elif kind is EventRecord:
                self._events.append(_event_values(write))
            elif kind is TxnRecord:
                self._queue_txn(write)  # type: ignore[arg-type]
            elif kind is KeysIssued:
                self._queue_keys(write)  # type: ignore[arg-type]
            elif kind is TerminalSignedIn:  # the latest time per terminal wins, as in order
                self._signed_in[write.tid] = write.at  # type: ignore[union-attr]
            else:
                handler = self._handlers.get(kind)
                if handler is None:
                    raise TypeError(f"apply_host_batch: unsupported write {kind.__name__}")
                self._flush_queued()  # later writes may refer to queued rows
                handler(write)
        self._flush_queued()
        self.result.written = len(writes) - len(self.result.duplicates) - len(self.result.missing)
        return self.result

    # --- journal, events, transactions, keys: inserted many at a time -------------------
    def _flush_queued(self) -> None:
        if self._journal:
            _JOURNAL_ROWS.execute(self.conn, self._journal)
            self._journal = []
        if self._events:
            _EVENT_ROWS.execute(self.conn, self._events)
            self._events = []
        if self._txns:
            self._insert_txns(self._txns)
            self._txns, self._txn_keys = [], set()
        if self._keys:
            self._insert_keys(self._keys)
            self._keys, self._key_tids = [], set()
        if self._signed_in:
            _SIGNED_IN.execute(self.conn, [(at, tid) for tid, at in self._signed_in.items()])
            self._signed_in = {}

    def _queue_txn(self, txn: TxnRecord) -> None:
        check_txn(txn.kind, txn.status)
        key = txn.key
        if txn.orig is not None and txn.orig in self._txn_keys:
            self._flush_queued()  # the original needs its id first
        if key in self._txn_keys:
            self.result.duplicates.append(key)
            return
        self._txns.append(txn)
        self._txn_keys.add(key)

    def _stored_keys(self, keys: list[TxnKey]) -> set[TxnKey]:
        found: set[TxnKey] = set()
        columns = tuple_(Txn.tid, Txn.batch_no, Txn.stan, Txn.kind)
        for start in range(0, len(keys), _KEY_CHUNK):
            chunk = [(k.tid, k.batch_no, k.stan, k.kind) for k in keys[start : start + _KEY_CHUNK]]
            rows = self.conn.execute(
                select(Txn.tid, Txn.batch_no, Txn.stan, Txn.kind).where(columns.in_(chunk))
            )
            found.update(TxnKey(*row) for row in rows)
        return found

    def _insert_txns(self, txns: list[TxnRecord]) -> None:
        """All in one statement; if that fails (a duplicate stored earlier, a race, a bad
        reference), find the duplicates and go row by row so the error names its row."""
        rows = [self._txn_row(t) for t in txns]
        try:
            with self.session.begin_nested():  # the SAVEPOINT starts at session.connection()
                ids = self.session.connection().execute(_INSERT_TXNS, rows).scalars().all()
        except IntegrityError:
            self._insert_txns_carefully(txns, rows)
            return
        for txn, txn_id in zip(txns, ids, strict=True):
            self.result.txn_ids[txn.key] = txn_id

    def _insert_txns_carefully(self, txns: list[TxnRecord], rows: list[dict[str, Any]]) -> None:
        stored = self._stored_keys([t.key for t in txns])
        for txn, row in zip(txns, rows, strict=True):
            if txn.key in stored:
                self.result.duplicates.append(txn.key)
            else:
                self._insert_one_txn(txn, row)

    def _txn_row(self, txn: TxnRecord) -> dict[str, Any]:
        row = dict(zip(TXN_COLUMNS, _txn_values(txn), strict=True))
        row["orig_txn_id"] = self._txn_id(txn.orig) if txn.orig is not None else None
        return row

    def _insert_one_txn(self, txn: TxnRecord, row: dict[str, Any]) -> None:
        try:
            with self.session.begin_nested():
                txn_id = self.session.connection().execute(insert(_TXNS).values(**row).returning(_TXNS.c.id)).scalar()
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
        return self.conn.execute(
            select(Txn.id).where(
                Txn.tid == key.tid, Txn.batch_no == key.batch_no,
                Txn.stan == key.stan, Txn.kind == key.kind,
            )
        ).scalar()

    def _queue_keys(self, issued: KeysIssued) -> None:
        if issued.tid in self._key_tids:
            self._flush_queued()  # a second sign-in of one terminal retires the first's keys
        self._keys.append(issued)
        self._key_tids.add(issued.tid)

    def _insert_keys(self, batch: list[KeysIssued]) -> None:
        """Retire the terminals' active keys of the kinds issued, then insert the new rows."""
        tids_by_kinds: dict[tuple[str, ...], list[str]] = {}
        rows: list[tuple[Any, ...]] = []
        for issued in batch:
            rows += key_values(issued)
            tids_by_kinds.setdefault(tuple(issued.keys), []).append(issued.tid)
        for kinds, tids in tids_by_kinds.items():
            for start in range(0, len(tids), _KEY_CHUNK):  # one statement per chunk, not per terminal
                self.conn.execute(update(_KEYS).where(_KEYS.c.tid.in_(tids[start:start + _KEY_CHUNK]),
                                                      _KEYS.c.kind.in_(kinds), _KEYS.c.active).values(active=False))
        _KEY_ROWS.execute(self.conn, rows)

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
        self.conn.execute(_ADD_TO_BALANCE, {"account_id": change.account_id, "delta": change.delta})

    def _pin_tries(self, change: PinTriesChange) -> None:
        self.session.execute(update(Card).where(Card.id == change.card_id).values(pin_tries=change.tries))

    def _keys_retired(self, retired: KeysRetired) -> None:
        retire_keys(self.session, retired.tid, list(retired.kinds))

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


def key_values(issued: KeysIssued) -> list[tuple[Any, ...]]:
    """`terminal_keys` rows (`KEY_COLUMNS`) for an issue of keys (kinds checked)."""
    rows = []
    for kind, key in issued.keys.items():
        if kind not in KEY_KINDS:
            raise InvalidValue("kind", f"密钥类型 {kind} 无效(应为 {'/'.join(KEY_KINDS)})",
                               f"key kind {kind} is invalid (expected {'/'.join(KEY_KINDS)})")
        rows.append((issued.tid, kind, bytes(key.blob), bytes(key.kcv), getattr(key.alg, "name", str(key.alg)),
                     int(key.length), issued.at or utcnow(), True))
    return rows


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
