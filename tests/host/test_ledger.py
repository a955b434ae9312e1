"""Group commit: many write sets per transaction, failures reach every waiter."""

import asyncio
import threading

import pytest

from posdoctor.host.ledger import Ledger, LedgerClosed
from posdoctor.store.records import EventRecord


def event(n: int) -> EventRecord:
    return EventRecord(source="host", kind=f"e{n}")


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.fail = fail
        self.thread_names: set[str] = set()

    def __call__(self, writes):
        self.thread_names.add(threading.current_thread().name)
        if self.fail:
            raise RuntimeError("disk full")
        self.batches.append([w.kind for w in writes])


async def test_concurrent_submissions_share_commits_in_order():
    commit = Recorder()
    ledger = Ledger(commit, interval=0.01)
    ledger.start()
    await asyncio.gather(*(ledger.submit([event(n), event(n)]) for n in range(50)))
    await ledger.stop()
    flat = [kind for batch in commit.batches for kind in batch]
    assert flat == [f"e{n}" for n in range(50) for _ in range(2)]
    assert len(commit.batches) < 10
    assert ledger.committed_sets == 50
    assert commit.thread_names == {"posdoctor-ledger"}


async def test_only_a_write_set_that_finds_the_writer_idle_waits_the_interval(monkeypatch):
    """What queues up during a commit is the next group, committed at once: the
    interval is a wait for company when the writer was idle, not a pause per group."""
    import posdoctor.host.ledger as ledger_module

    sleeps: list[float] = []
    monkeypatch.setattr(ledger_module.time, "sleep", sleeps.append)
    release, committing = threading.Event(), threading.Event()
    batches: list[list[str]] = []

    def commit(writes):
        batches.append([w.kind for w in writes])
        if len(batches) == 1:
            committing.set()
            release.wait(10)

    ledger = Ledger(commit, interval=0.25)
    ledger.start()
    first = ledger.submit([event(0)])
    await asyncio.get_running_loop().run_in_executor(None, committing.wait, 10)
    later = [ledger.submit([event(n)]) for n in (1, 2, 3)]  # queued while group 1 commits
    release.set()
    await asyncio.gather(first, *later)
    await ledger.stop()
    assert batches == [["e0"], ["e1", "e2", "e3"]]
    assert sleeps == [0.25]  # once, for the first write set only


async def test_max_items_bounds_a_commit():
    commit = Recorder()
    ledger = Ledger(commit, interval=0.01, max_items=7)
    ledger.start()
    await asyncio.gather(*(ledger.submit([event(n)]) for n in range(20)))
    await ledger.stop()
    assert max(len(b) for b in commit.batches) <= 7


async def test_a_failed_commit_fails_every_write_set_in_it():
    ledger = Ledger(Recorder(fail=True), interval=0.01)
    ledger.start()
    results = await asyncio.gather(*(ledger.submit([event(n)]) for n in range(5)), return_exceptions=True)
    await ledger.stop()
    assert all(isinstance(r, RuntimeError) and str(r) == "disk full" for r in results)
    assert ledger.failures >= 1 and ledger.commits == 0


async def test_stop_commits_what_is_queued_then_refuses_more():
    commit = Recorder()
    ledger = Ledger(commit, interval=0.05)
    ledger.start()
    pending = [ledger.submit([event(n)]) for n in range(3)]
    await ledger.stop()
    await asyncio.gather(*pending)
    assert [k for b in commit.batches for k in b] == ["e0", "e1", "e2"]
    with pytest.raises(LedgerClosed):
        ledger.submit([event(9)])


def test_group_writes_keeps_dependencies_and_sums_balances():
    from datetime import UTC, datetime

    from posdoctor.host.ledger import group_writes
    from posdoctor.store.records import (
        BalanceChange,
        JournalRecord,
        KeysRetired,
        TxnKey,
        TxnRecord,
        TxnStatusChange,
    )

    now = datetime.now(UTC)
    sale = TxnRecord("T1", "M1", 1, "000001", "sale", 100, "approved", now)
    void = TxnRecord("T1", "M1", 1, "000002", "void", 100, "approved", now, orig=sale.key)
    voided = TxnStatusChange("voided", key=TxnKey("T1", 1, "000001", "sale"))
    rows = [JournalRecord("in", at=now, stan="1"), JournalRecord("out", at=now, stan="1", latency_ms=1.0)]
    later_rows = [JournalRecord("in", at=now, stan="2"), JournalRecord("out", at=now, stan="2", latency_ms=1.0)]
    message_1 = [BalanceChange(7, -100), sale, *rows]
    notice = event(1)
    message_2 = [voided, BalanceChange(7, 100), BalanceChange(8, 5), void, KeysRetired("T1", ("PIK",)), *later_rows,
                 notice]
    grouped = group_writes([*message_1, *message_2])
    assert grouped == [sale, void, voided, BalanceChange(8, 5), KeysRetired("T1", ("PIK",)),
                       rows[0], later_rows[0], rows[1], later_rows[1], notice]
