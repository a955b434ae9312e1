"""Evidence part of the ``Store``: journal, events, transactions, batches, reversals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from posdoctor.store.base import StoreBase
from posdoctor.store.hostwrites import apply_host_writes
from posdoctor.store.models import Batch, Event, JournalEntry, Reversal, Txn
from posdoctor.store.records import BatchResult, EventRecord, HostWrite, JournalRecord, TxnKey

DEFAULT_LIMIT = 1000


class EvidenceMixin(StoreBase):
    # --- writing -------------------------------------------------------------------
    def record_journal(self, entries: Sequence[JournalRecord]) -> int:
        """Insert journal rows (already masked) in one transaction; returns the count."""
        return self.apply_host_batch(entries).written

    def record_events(self, events: Sequence[EventRecord]) -> int:
        return self.apply_host_batch(events).written

    def apply_host_batch(self, writes: Sequence[HostWrite]) -> BatchResult:
        """The host's group commit: every write in ``writes`` (journal rows, events,
        transactions, status changes, balance deltas, reversals, keys, batches...) in ONE
        transaction, in order. Duplicated transactions are skipped and reported in the
        result; any other failure rolls the whole batch back and raises."""
        with self._write() as session:
            return apply_host_writes(session, writes)

    # --- reading -------------------------------------------------------------------
    def journal(
        self,
        tid: str | None = None,
        *,
        limit: int = 100,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[JournalEntry]:
        """The newest ``limit`` messages (for ``tid`` if given), oldest first."""
        query = select(JournalEntry)
        if tid is not None:
            query = query.where(JournalEntry.tid == tid)
        if since is not None:
            query = query.where(JournalEntry.at >= since)
        if until is not None:
            query = query.where(JournalEntry.at < until)
        query = query.order_by(JournalEntry.at.desc(), JournalEntry.id.desc()).limit(limit)
        with self._read() as session:
            rows = list(session.scalars(query))
        rows.reverse()
        return rows

    def events(
        self,
        tid: str | None = None,
        *,
        kind: str | None = None,
        source: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[Event]:
        """The newest ``limit`` matching events, oldest first."""
        query = select(Event)
        if tid is not None:
            query = query.where(Event.tid == tid)
        if kind is not None:
            query = query.where(Event.kind == kind)
        if source is not None:
            query = query.where(Event.source == source)
        if since is not None:
            query = query.where(Event.at >= since)
        if until is not None:
            query = query.where(Event.at < until)
        query = query.order_by(Event.at.desc(), Event.id.desc()).limit(limit)
        with self._read() as session:
            rows = list(session.scalars(query))
        rows.reverse()
        return rows

    def find_txn(self, key: TxnKey) -> Txn | None:
        query = select(Txn).where(
            Txn.tid == key.tid, Txn.batch_no == key.batch_no,
            Txn.stan == key.stan, Txn.kind == key.kind,
        )
        with self._read() as session:
            return session.scalar(query)

    def get_txn(self, txn_id: int) -> Txn | None:
        with self._read() as session:
            return session.get(Txn, txn_id)

    def find_txns_by_rrn(self, rrn: str, tid: str | None = None) -> list[Txn]:
        query = select(Txn).where(Txn.rrn == rrn).order_by(Txn.id)
        if tid is not None:
            query = query.where(Txn.tid == tid)
        with self._read() as session:
            return list(session.scalars(query))

    def txns_in_batch(self, tid: str, batch_no: int) -> list[Txn]:
        query = select(Txn).where(Txn.tid == tid, Txn.batch_no == batch_no).order_by(Txn.id)
        with self._read() as session:
            return list(session.scalars(query))

    def txns(
        self, tid: str | None = None, *, since: datetime | None = None, limit: int = DEFAULT_LIMIT
    ) -> list[Txn]:
        query = select(Txn)
        if tid is not None:
            query = query.where(Txn.tid == tid)
        if since is not None:
            query = query.where(Txn.at >= since)
        with self._read() as session:
            rows = list(session.scalars(query.order_by(Txn.id.desc()).limit(limit)))
        rows.reverse()
        return rows

    def find_batch(self, tid: str, batch_no: int) -> Batch | None:
        query = select(Batch).where(Batch.tid == tid, Batch.batch_no == batch_no)
        with self._read() as session:
            return session.scalar(query)

    def batches(self, tid: str) -> list[Batch]:
        query = select(Batch).where(Batch.tid == tid).order_by(Batch.batch_no)
        with self._read() as session:
            return list(session.scalars(query))

    def reversals(self, tid: str | None = None, *, limit: int = DEFAULT_LIMIT) -> list[Reversal]:
        query = select(Reversal)
        if tid is not None:
            query = query.where(Reversal.tid == tid)
        with self._read() as session:
            rows = list(session.scalars(query.order_by(Reversal.id.desc()).limit(limit)))
        rows.reverse()
        return rows
