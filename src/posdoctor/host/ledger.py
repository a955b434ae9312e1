"""Group commit: one writer thread commits every pending write set in one transaction.

Each message collects its database writes in a `WriteSet`: a list of the store's
write records (journal rows, events, transactions, balance changes, keys...).
`Ledger.submit()` queues it and returns a future; the writer thread takes everything
queued (up to `max_items`), commits it all in one database transaction and resolves
the futures on the event loop. What arrives during a commit is the next group,
committed as soon as the last one is; only a write set that finds the writer idle
waits `interval` seconds for others to join it. The answer is sent only after its
future resolved: the journal is durable before the terminal hears anything, and the
event loop never waits on the database.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from posdoctor.store.records import (
    BalanceChange,
    EventRecord,
    HostWrite,
    JournalRecord,
    ReversalRecord,
    TxnRecord,
    TxnStatusChange,
)

log = logging.getLogger(__name__)


WriteSet = list[HostWrite]
"""Everything one message changes in the database, in order (store write records)."""

Committer = Callable[[list[HostWrite]], object]
"""Writes many messages' records in ONE database transaction (raises on failure):
`Store.apply_host_batch`."""


_INSERTS = (TxnRecord,)
_AFTER_INSERTS = (TxnStatusChange, ReversalRecord)
_EVIDENCE = (JournalRecord, EventRecord)


def group_writes(writes: Iterable[HostWrite]) -> list[HostWrite]:
    """Many messages' writes in an order the store can apply with few statements.

    New transactions first (in arrival order), then what refers to them (status
    changes, reversals, in order), balance changes summed per account, the rest in
    arrival order (keys, terminals, batches, PIN tries), journal rows and events last
    (the "in" rows, then the "out" rows, then events, so the store inserts rows of one
    shape together; an out row shares its in row's time and follows it by id).
    No write moves before one it depends on: a status change or reversal always
    arrives after the insert of the transaction it names, and balance changes commute.
    """
    inserts: list[HostWrite] = []
    after: list[HostWrite] = []
    deltas: dict[int, int] = {}
    others: list[HostWrite] = []
    evidence: list[HostWrite] = []
    for write in writes:
        if isinstance(write, _INSERTS):
            inserts.append(write)
        elif isinstance(write, _AFTER_INSERTS):
            after.append(write)
        elif isinstance(write, BalanceChange):
            deltas[write.account_id] = deltas.get(write.account_id, 0) + write.delta
        elif isinstance(write, _EVIDENCE):
            evidence.append(write)
        else:
            others.append(write)
    balances = [BalanceChange(account, delta) for account, delta in deltas.items() if delta]
    evidence.sort(key=_evidence_group)  # stable: rows of one shape together, in arrival order
    return [*inserts, *after, *balances, *others, *evidence]


def _evidence_group(write: HostWrite) -> int:
    """Journal "in" rows, then "out" rows (they have a latency), then events."""
    if isinstance(write, JournalRecord):
        return 0 if write.direction == "in" else 1
    return 2


class LedgerClosed(RuntimeError):
    pass


@dataclass(slots=True)
class _Pending:
    writes: WriteSet
    future: asyncio.Future[None]
    loop: asyncio.AbstractEventLoop


_STOP = object()


class Ledger:
    """The single writer. `start()` once, `submit()` from the event loop, `stop()` to drain."""

    def __init__(self, commit: Committer, *, interval: float = 0.0, max_items: int = 2000) -> None:
        self._commit = commit
        self._interval = interval
        self._max_items = max_items
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.commits = 0
        self.committed_sets = 0
        self.failures = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="posdoctor-ledger", daemon=True)
            self._thread.start()

    def submit(self, writes: WriteSet) -> asyncio.Future[None]:
        """Queue a write set; the future resolves once it is committed (or fails)."""
        if self._closed:
            raise LedgerClosed("ledger is stopped")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Pending(writes, future, loop))
        return future

    async def stop(self) -> None:
        """Commit what is queued, then end the writer thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
            self._thread = None

    # --- writer thread -------------------------------------------------------------
    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                first = self._queue.get_nowait()  # it queued during the last commit: go on at once
            except queue.Empty:
                first = self._queue.get()
                if self._interval and first is not _STOP:
                    time.sleep(self._interval)  # the writer was idle: let others join this one
            if first is _STOP:
                break
            batch, stopping = take_queued(self._queue, first, self._max_items, _STOP)
            self._commit_batch(batch)

    def _commit_batch(self, batch: list[_Pending]) -> None:
        error: BaseException | None = None
        try:
            self._commit(group_writes(write for pending in batch for write in pending.writes))
        except Exception as exc:  # reported to every waiting message, which answers no 00
            log.exception("group commit of %d write sets failed", len(batch))
            error = exc
            self.failures += 1
        else:
            self.commits += 1
            self.committed_sets += len(batch)
        settle_threadsafe((pending.loop, pending.future, error) for pending in batch)


def take_queued(source: queue.SimpleQueue[Any], first: Any, limit: int, stop: Any) -> tuple[list[Any], bool]:
    """`first` and what else is queued now, up to `limit` items, for a worker thread;
    True when it met `stop` (which is not in the batch)."""
    batch = [first]
    while len(batch) < limit:
        try:
            item = source.get_nowait()
        except queue.Empty:
            break
        if item is stop:
            return batch, True
        batch.append(item)
    return batch, False


def settle_threadsafe(outcomes: Iterable[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Any]]) -> None:
    """From a worker thread: give each future its result (an exception instance is set
    as its exception), with one wake-up per event loop, not one per future."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
    for loop, future, result in outcomes:
        by_loop.setdefault(loop, []).append((future, result))
    for loop, results in by_loop.items():
        loop.call_soon_threadsafe(_settle, results)


def _settle(results: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, result in results:
        if future.done():
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
