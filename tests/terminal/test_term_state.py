"""TerminalState: STAN wrap, batch wrap, validation, log questions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from posdoctor.terminal.state import CommSettings, SealedKey, TerminalState, TxnRecord, next_stan_value

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def txn(stan: str, kind: str = "sale", status: str = "approved", amount: int = 100) -> TxnRecord:
    return TxnRecord(kind=kind, stan=stan, batch=1, amount=amount, pan_masked="622202******0123",
                     pan_sealed="00", at=NOW, status=status)


@pytest.mark.parametrize(("current", "following"), [(0, 1), (1, 2), (41, 42), (999_998, 999_999), (999_999, 1)])
def test_next_stan_value_wraps_999999_to_1(current: int, following: int) -> None:
    assert next_stan_value(current) == following


def test_next_stan_is_six_digits_and_never_000000() -> None:
    state = TerminalState(tid="10000001", serial="S1", stan=999_998)
    assert [state.next_stan() for _ in range(3)] == ["999999", "000001", "000002"]
    assert state.stan == 2


def test_close_batch_empties_log_and_wraps_batch_number() -> None:
    state = TerminalState(tid="10000001", serial="S1", batch_no=999_999, txn_log=[txn("000001")])
    state.close_batch()
    assert state.txn_log == [] and state.batch == "000001"


@pytest.mark.parametrize("tid", ["1234567", "123456789", "1234-678", ""])
def test_tid_must_be_8_letters_or_digits(tid: str) -> None:
    with pytest.raises(ValidationError, match="TID must be 8 letters or digits"):
        TerminalState(tid=tid, serial="S1")


@pytest.mark.parametrize("tpdu", ["60000300", "600003000G", "60 0003000"])
def test_tpdu_must_be_10_hex_digits(tpdu: str) -> None:
    with pytest.raises(ValidationError, match="TPDU must be 10 hex digits"):
        CommSettings(tpdu=tpdu)


def test_tpdu_is_normalised_to_upper_case() -> None:
    assert CommSettings(tpdu="600a0b0000").tpdu == "600A0B0000"


def test_unsettled_ignores_reversed_and_batch_full_at_capacity() -> None:
    state = TerminalState(tid="10000001", serial="S1", txn_log=[txn("000001"), txn("000002", status="reversed")])
    assert [t.stan for t in state.unsettled()] == ["000001"]
    state.settings.batch_capacity = 3
    assert not state.batch_full()
    state.txn_log.append(txn("000003"))
    assert state.batch_full()


def test_find_txn_by_stan_rrn_and_kind_takes_latest() -> None:
    first, void = txn("000001"), txn("000002", kind="void")
    first.rrn = "111111111111"
    state = TerminalState(tid="10000001", serial="S1", txn_log=[first, void])
    assert state.find_txn(stan="000001") is first
    assert state.find_txn(rrn="111111111111", kind="sale") is first
    assert state.find_txn(stan="000002", kind="sale") is None


def test_sign_out_drops_working_keys_but_keeps_tmk() -> None:
    state = TerminalState(tid="10000001", serial="S1", signed_in=True)
    for kind in ("TMK", "PIK", "MAK", "TDK"):
        state.keys[kind] = SealedKey(blob="00", kcv="00000000", length=16)  # type: ignore[index]
    state.sign_out()
    assert not state.signed_in and list(state.keys) == ["TMK"]


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        TerminalState.model_validate({"tid": "10000001", "serial": "S1", "colour": "red"})
