"""Group commit: one writer thread commits every pending write set in one transaction.

Each message collects its database writes in a `WriteSet`: a list of the store's
write records (journal rows, events, transactions, balance changes, keys...). `Ledger.submit()` queues it and returns a
future; the writer thread wakes, waits `interval` seconds for more to arrive, takes
everything queued (up to `max_items`), commits it all in one database transaction
and resolves the futures on the event loop. The answer is sent only after its
future resolved: the journal is durable before the terminal hears anything, and the
event loop never waits on the database.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from posdoctor.store.records import HostWrite

log = logging.getLogger(__name__)


WriteSet = list[HostWrite]
"""Everything one message changes in the database, in order (store write records)."""

Committer = Callable[[list[HostWrite]], object]
"""Writes many messages' records in ONE database transaction (raises on failure):
`Store.apply_host_batch`."""


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

    def __init__(self, commit: Committer, *, interval: float = 0.002, max_items: int = 2000) -> None:
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
            first = self._queue.get()
            if first is _STOP:
                break
            if self._interval:
                time.sleep(self._interval)
            batch = [first]
            while len(batch) < self._max_items:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            self._commit_batch(batch)

    def _commit_batch(self, batch: list[_Pending]) -> None:
        error: BaseException | None = None
        try:
            self._commit([write for pending in batch for write in pending.writes])
        except Exception as exc:  # reported to every waiting message, which answers no 00
            log.exception("group commit of %d write sets failed", len(batch))
            error = exc
            self.failures += 1
        else:
            self.commits += 1
            self.committed_sets += len(batch)
        for pending in batch:
            pending.loop.call_soon_threadsafe(_settle, pending.future, error)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
