"""Journal, events, transactions and the host's group commit on both databases."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError, StatementError

from posdoctor.store import InvalidValue, Store
from posdoctor.store.records import (
    BalanceChange,
    BatchClosed,
    BatchOpened,
    EventRecord,
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

MID = "898100000000001"
TID = "10000001"
PAN = "6222020000000000000"
T0 = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)


class Alg(enum.Enum):
    TDES = 1


@dataclass(frozen=True)
class FakeWrapped:
    blob: bytes
    kcv: bytes
    alg: Alg = Alg.TDES
    length: int = 16


def sale(stan: str, amount: int, card_id: int | None = None, at: datetime = T0, **kw: object) -> TxnRecord:
    return TxnRecord(TID, MID, 1, stan, "sale", amount, "approved", at, card_id=card_id, **kw)  # type: ignore[arg-type]


def message(n: int, tid: str = TID, direction: str = "in") -> JournalRecord:
    return JournalRecord(
        direction,
        at=T0 + timedelta(seconds=n),
        tid=tid,
        mid=MID,
        route="0200.000000.00.22",
        mti="0200" if direction == "in" else "0210",
        stan=f"{n:06d}",
        rc=None if direction == "in" else "00",
        steps=[{"step": "DecodeFrame", "verdict": "ok", "reason": ""},
               {"step": "VerifyMac", "verdict": "fail", "reason": "MAC 不符"}],
        latency_ms=1.5,
        fields={"2": "622202*********0000", "4": "000000001250"},
        raw_hex="0200" + "00" * 4,
        peer="127.0.0.1:40000",
    )


def test_journal_round_trip_and_order(store: Store) -> None:
    assert store.record_journal([message(3), message(1), message(2, tid="10000002")]) == 3
    rows = store.journal()
    assert [r.stan for r in rows] == ["000001", "000002", "000003"]  # oldest first
    first = rows[0]
    assert first.at == T0 + timedelta(seconds=1) and first.at.tzinfo is UTC
    assert first.steps[1] == {"step": "VerifyMac", "verdict": "fail", "reason": "MAC 不符"}
    assert first.fields == {"2": "622202*********0000", "4": "000000001250"}
    assert (first.latency_ms, first.peer, first.route) == (1.5, "127.0.0.1:40000", "0200.000000.00.22")
    assert [r.stan for r in store.journal(TID)] == ["000001", "000003"]


def test_journal_limit_keeps_the_newest(store: Store) -> None:
    store.record_journal([message(n) for n in range(10)])
    assert [r.stan for r in store.journal(TID, limit=3)] == ["000007", "000008", "000009"]
    since = T0 + timedelta(seconds=4)
    until = T0 + timedelta(seconds=6)
    assert [r.stan for r in store.journal(since=since, until=until)] == ["000004", "000005"]


def test_events_filters(store: Store) -> None:
    store.record_events([
        EventRecord("host", "signin_refused", at=T0, tid=TID, code="97", detail={"step": "LoadTerminal"}),
        EventRecord("terminal", "selfcheck", at=T0 + timedelta(seconds=1), tid=TID, detail={"ok": True}),
        EventRecord("host", "signin_refused", at=T0 + timedelta(seconds=2), tid="10000002", code="03"),
    ])
    assert [e.code for e in store.events(kind="signin_refused")] == ["97", "03"]
    assert [e.kind for e in store.events(TID)] == ["signin_refused", "selfcheck"]
    assert [e.source for e in store.events(source="terminal")] == ["terminal"]
    assert store.events(TID, limit=1)[0].detail == {"ok": True}
    assert store.events(since=T0 + timedelta(seconds=2))[0].tid == "10000002"
    assert store.events(TID)[0].at == T0


def test_group_commit_of_a_sale_and_its_void(store: Store) -> None:
    store.add_merchant(MID, "m")
    store.add_terminal(TID, MID, "SN1")
    card = store.add_card(PAN, "1234", balance=10_000)
    sale_key = TxnKey(TID, 1, "000001", "sale")
    result = store.apply_host_batch([
        message(1),
        sale("000001", 1_250, card.id, rrn="000000000001", auth_code="123456", pan_masked="622202*********0000"),
        BalanceChange(card.account_id, -1_250),
        message(1, direction="out"),
        EventRecord("host", "sale", tid=TID, code="00"),
        TxnRecord(TID, MID, 1, "000002", "void", 1_250, "approved", T0, card_id=card.id, orig=sale_key),
        TxnStatusChange("voided", key=sale_key),
        BalanceChange(card.account_id, +1_250),
        BalanceChange(card.account_id, -300),
    ])
    assert result.duplicates == [] and result.missing == []
    assert result.written == 9
    sale_row = store.find_txn(sale_key)
    void_row = store.find_txn(TxnKey(TID, 1, "000002", "void"))
    assert sale_row is not None and void_row is not None
    assert result.txn_ids == {sale_key: sale_row.id, TxnKey(TID, 1, "000002", "void"): void_row.id}
    assert (sale_row.status, sale_row.rrn, sale_row.auth_code, sale_row.amount) == ("voided", "000000000001", "123456", 1_250)
    assert void_row.orig_txn_id == sale_row.id
    assert store.get_account(card.account_id).balance == 10_000 - 300
    assert len(store.journal(TID)) == 2 and len(store.events(TID)) == 1
    assert [t.kind for t in store.txns_in_batch(TID, 1)] == ["sale", "void"]
    assert [t.id for t in store.find_txns_by_rrn("000000000001")] == [sale_row.id]
    assert store.get_txn(void_row.id).orig_txn_id == sale_row.id  # type: ignore[union-attr]


def test_duplicate_txn_is_skipped_not_fatal(store: Store) -> None:
    store.apply_host_batch([sale("000001", 100)])
    result = store.apply_host_batch([message(1), sale("000001", 999), sale("000002", 200), message(2)])
    assert result.duplicates == [TxnKey(TID, 1, "000001", "sale")]
    assert list(result.txn_ids) == [TxnKey(TID, 1, "000002", "sale")]
    assert result.written == 3
    assert [t.amount for t in store.txns(TID)] == [100, 200]
    assert len(store.journal()) == 2


def test_status_change_of_unknown_txn_is_reported(store: Store) -> None:
    result = store.apply_host_batch([TxnStatusChange("reversed", key=TxnKey(TID, 1, "000404", "sale")),
                                     TxnStatusChange("reversed", txn_id=404)])
    assert result.missing == [TxnKey(TID, 1, "000404", "sale"), 404]
    assert result.written == 0


def test_a_failing_write_rolls_back_the_whole_batch(store: Store) -> None:
    with pytest.raises(IntegrityError):
        store.apply_host_batch([message(1), sale("000001", 100, card_id=4242)])  # no such card
    assert store.journal() == [] and store.txns() == []


def test_bad_txn_values_are_refused(store: Store) -> None:
    bad_kind = TxnRecord(TID, MID, 1, "000001", "tip", 1, "approved", T0)
    with pytest.raises(InvalidValue, match="transaction kind tip is invalid"):
        store.apply_host_batch([bad_kind])
    with pytest.raises(InvalidValue, match="transaction status paid is invalid"):
        store.apply_host_batch([TxnStatusChange("paid", txn_id=1)])
    with pytest.raises(TypeError, match="unsupported write str"):
        store.apply_host_batch(["journal"])  # type: ignore[list-item]


def test_reversal_signin_keys_pin_tries_and_batches(store: Store) -> None:
    store.add_merchant(MID, "m")
    store.add_terminal(TID, MID, "SN1", keys={"TMK": FakeWrapped(b"tmk", b"1111")})
    card = store.add_card(PAN, "1234", balance=500)
    sale_key = TxnKey(TID, 1, "000001", "sale")
    store.apply_host_batch([
        BatchOpened(TID, 1, T0),
        sale("000001", 100, card.id),
        KeysIssued(TID, {"PIK": FakeWrapped(b"pik", b"2222"), "MAK": FakeWrapped(b"mak", b"3333")}, T0),
        TerminalSignedIn(TID, T0),
        PinTriesChange(card.id, 2),
    ])
    store.apply_host_batch([
        ReversalRecord(TID, 1, "000001", T0 + timedelta(seconds=60), reason="98", amount=100, orig=sale_key),
        ReversalRecord(TID, 1, "000777", T0 + timedelta(seconds=61), reason="98", amount=5, orig=TxnKey(TID, 1, "000777", "sale")),
        TxnStatusChange("reversed", key=sale_key),
        BatchClosed(TID, 1, T0 + timedelta(hours=8), 0, 0, 0, 0, "1"),
        BatchClosed(TID, 2, T0 + timedelta(hours=9), 100, 1, 0, 0, "2"),
        TerminalBatchChange(TID, 3),
    ])
    terminal = store.get_terminal(TID)
    assert (terminal.last_signin_at, terminal.batch_no) == (T0, 3)
    assert store.get_card(card.id).pin_tries == 2
    assert {r.kind for r in store.terminal_key_rows(TID)} == {"TMK", "PIK", "MAK"}
    store.apply_host_batch([KeysRetired(TID, ("PIK", "MAK"))])
    assert {r.kind for r in store.terminal_key_rows(TID)} == {"TMK"}
    reversals = store.reversals(TID)
    sale_row = store.find_txn(sale_key)
    assert sale_row is not None and sale_row.status == "reversed"
    assert [(r.stan, r.orig_txn_id, r.reason) for r in reversals] == [("000001", sale_row.id, "98"), ("000777", None, "98")]
    first, second = store.batches(TID)
    assert (first.status, first.opened_at, first.settled_at, first.flag) == ("settled", T0, T0 + timedelta(hours=8), "1")
    assert (second.batch_no, second.debit_amount, second.debit_count, second.flag) == (2, 100, 1, "2")
    assert store.find_batch(TID, 9) is None


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        store.record_events([EventRecord("host", "x", at=datetime(2024, 1, 1))])


def test_a_thousand_rows_in_one_commit(store: Store) -> None:
    writes = []
    for n in range(250):
        writes += [message(n), sale(f"{n:06d}", n), message(n, direction="out"), EventRecord("host", "sale", at=T0, tid=TID)]
    result = store.apply_host_batch(writes)
    assert result.written == 1000 and len(result.txn_ids) == 250
    assert len(store.journal(TID, limit=1000)) == 500


def test_duplicate_within_one_batch_is_skipped(store: Store) -> None:
    result = store.apply_host_batch([sale("000003", 1), sale("000003", 2), sale("000004", 3)])
    assert result.duplicates == [TxnKey(TID, 1, "000003", "sale")]
    assert [t.amount for t in store.txns(TID)] == [1, 3]


def test_void_of_a_sale_queued_in_the_same_batch(store: Store) -> None:
    key = TxnKey(TID, 1, "000001", "sale")
    void = TxnRecord(TID, MID, 1, "000002", "void", 5, "approved", T0, orig=key)
    result = store.apply_host_batch([sale("000001", 5), void])
    assert store.find_txn(void.key).orig_txn_id == result.txn_ids[key]  # type: ignore[union-attr]


def test_duplicate_missed_by_the_precheck_is_still_skipped(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer inserting the same key between check and insert: row-by-row fallback."""
    from posdoctor.store import hostwrites

    store.apply_host_batch([sale("000001", 100)])
    monkeypatch.setattr(hostwrites._Applier, "_stored_keys", lambda self, keys: set())
    result = store.apply_host_batch([message(1), sale("000001", 5), sale("000002", 6)])
    assert result.duplicates == [TxnKey(TID, 1, "000001", "sale")]
    assert list(result.txn_ids) == [TxnKey(TID, 1, "000002", "sale")]
    assert [t.amount for t in store.txns(TID)] == [100, 6]
    assert len(store.journal()) == 1
