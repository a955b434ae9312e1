"""The group commit in a child process: same rows as in the thread, errors come back,
a dead child is replaced, a bad database refuses to start."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from posdoctor.host.commitproc import CommitError, ProcessCommitter
from posdoctor.store import Store
from posdoctor.store.records import EventRecord, JournalRecord, TxnKey, TxnRecord

T0 = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
TID, MID = "10000001", "898100000000001"


def sale(stan: str, kind: str = "sale") -> TxnRecord:
    return TxnRecord(TID, MID, 1, stan, kind, 1200, "approved", T0)


def journal(stan: str) -> JournalRecord:
    return JournalRecord("in", at=T0, tid=TID, mid=MID, route="sale", mti="0200", stan=stan, rc="00",
                         steps=[{"step": "Authorize", "verdict": "ok", "reason": "批准"}], fields={"11": stan})


@pytest.fixture
def committer(store: Store, db_url: str) -> Iterator[ProcessCommitter]:
    store.add_merchant(MID, "m")
    made = ProcessCommitter(db_url)
    made.start()
    try:
        yield made
    finally:
        made.close()


def test_a_group_is_committed_by_the_child_and_read_back_here(store: Store, committer: ProcessCommitter) -> None:
    result = committer([sale("000001"), journal("000001"), sale("000002"), EventRecord("host", "sale", at=T0, tid=TID)])
    assert set(result.txn_ids) == {TxnKey(TID, 1, "000001", "sale"), TxnKey(TID, 1, "000002", "sale")}
    assert result.written == 4 and result.duplicates == []
    assert [t.stan for t in store.txns_in_batch(TID, 1)] == ["000001", "000002"]
    (row,) = store.journal(TID)
    assert row.steps == [{"step": "Authorize", "verdict": "ok", "reason": "批准"}] and row.at == T0
    again = committer([sale("000001")])  # a duplicate is reported, as in the thread
    assert again.duplicates == [TxnKey(TID, 1, "000001", "sale")]


def test_a_refused_group_is_an_error_and_writes_nothing(store: Store, committer: ProcessCommitter) -> None:
    with pytest.raises(CommitError, match="InvalidValue.*transaction kind cashback is invalid"):
        committer([journal("000003"), sale("000003", kind="cashback")])
    assert store.journal(TID) == []
    assert committer([journal("000004")]).written == 1  # the child is still there


def test_a_dead_child_is_replaced(store: Store, committer: ProcessCommitter) -> None:
    committer._process.kill()
    committer._process.join(5)
    assert committer([journal("000005")]).written == 1
    assert [row.stan for row in store.journal(TID)] == ["000005"]


def test_a_database_that_does_not_open_stops_the_start(tmp_path) -> None:  # type: ignore[no-untyped-def]
    refused = ProcessCommitter("nosuchdialect://nowhere")
    with pytest.raises(CommitError, match="could not open the database"):
        refused.start()
