"""Field 60, 53, 54 and 48 sub-field codecs: known answers and exact errors."""

from __future__ import annotations

import pytest

from posdoctor.iso8583.errors import DecodeError, EncodeError
from posdoctor.iso8583.fields import (
    Balance,
    BatchItem,
    BatchKind,
    Field60,
    ReconFlag,
    SecurityControl,
    SettlementTotals,
    decode_balance,
    decode_balances,
    decode_batch_end,
    decode_batch_items,
    encode_balance,
    encode_batch_end,
    encode_batch_items,
)


def test_field60_known_answers() -> None:
    assert Field60("00", "000001", "004").encode() == "00000001004"
    assert Field60("22", "000123", "000", "5", "0", "1").encode() == "22000123000501"
    assert Field60.decode("22000123000501") == Field60("22", "000123", "000", "5", "0", "1")
    assert Field60.decode("00000001004") == Field60("00", "000001", "004")
    assert Field60.decode("2200012300050123") == Field60("22", "000123", "000", "5", "0", "1", extra="23")
    assert Field60.decode("220001230005") == Field60("22", "000123", "000", "5")


def test_security_control_known_answer() -> None:
    assert SecurityControl().encode() == "2600000000000000"
    assert SecurityControl.decode("0310000000000000") == SecurityControl("0", "3", "1")


def test_balance_known_answers() -> None:
    assert encode_balance(123456) == "1002156C000000123456"
    assert encode_balance(-5, "840", account_type="00", amount_type="01") == "0001840D000000000005"
    assert decode_balance("1002156C000000123456") == 123456
    assert decode_balance("1001156D0000000000101002156C000000000200") == 200
    assert decode_balances("1001156D000000000010") == [Balance(-10, "156", "10", "01")]


def test_settlement_totals_known_answer() -> None:
    totals = SettlementTotals(150000, 3, 2000, 1, ReconFlag.NONE)
    digits = "000000150000" "003" "000000002000" "001" "0" + "0" * 31
    assert totals.encode() == digits
    assert SettlementTotals.decode(digits) == totals
    answer = SettlementTotals.decode("000000150000" "003" "000000002000" "001" "2")
    assert answer.flag is ReconFlag.UNBALANCED
    assert answer.foreign_debit_amount == 0


def test_batch_items_known_answer() -> None:
    items = [BatchItem("6225881234567890", "000042", 12345, BatchKind.SALE),
             BatchItem("6225881234567890123", "000043", 100, BatchKind.VOID)]
    digits = ("02"
              "16" "6225881234567890000" "000042" "000000012345" "22"
              "19" "6225881234567890123" "000043" "000000000100" "23")
    assert encode_batch_items(items) == digits
    assert decode_batch_items(digits) == items
    assert encode_batch_end(17) == "0017"
    assert decode_batch_end("0017") == 17


DECODE_ERRORS = [
    ("60 short", lambda: Field60.decode("0000000100"), "60", 10,
     "field 60 has 10 digits, needs at least 11 (60.1 type, 60.2 batch, 60.3 network management code)"),
    ("60 not digits", lambda: Field60.decode("00000001A04"), "60", 8, "character 'A' at 8 is not a decimal digit"),
    ("53 short", lambda: SecurityControl.decode("26000"), "53", 5, "field 53 has 5 digits, expecting 16"),
    ("54 empty", lambda: decode_balance(""), "54", 0,
     "field 54 is 0 characters, expecting a non-zero multiple of 20"),
    ("54 length", lambda: decode_balance("1002156C00000012345"), "54", 0,
     "field 54 is 19 characters, expecting a non-zero multiple of 20"),
    ("54 sign", lambda: decode_balance("1002156+000000123456"), "54", 7, "balance sign '+' is neither 'C' nor 'D'"),
    ("54 amount", lambda: decode_balance("1002156C0000001234x6"), "54", 18, "character 'x' at 18 is not a decimal digit"),
    ("48 totals length", lambda: SettlementTotals.decode("0" * 30), "48", 30,
     "settlement totals are 30 digits, expecting 31 or 62"),
    ("48 totals flag", lambda: SettlementTotals.decode("0" * 30 + "7"), "48", 30,
     "reconciliation flag '7' is not one of 0, 1, 2, 3"),
    ("48 foreign flag", lambda: SettlementTotals.decode("0" * 61 + "9"), "48", 61,
     "reconciliation flag '9' is not one of 0, 1, 2, 3"),
    ("48 batch empty", lambda: decode_batch_items(""), "48", 0, "batch upload field 48 lacks its 2-digit item count"),
    ("48 batch count", lambda: decode_batch_items("02" + "0" * 41), "48", 43,
     "batch upload announces 2 items (84 digits) but holds 43 digits"),
    ("48 batch zero", lambda: decode_batch_items("00"), "48", 2,
     "batch upload announces 0 items (2 digits) but holds 2 digits"),
    ("48 PAN length", lambda: decode_batch_items("01" "20" + "0" * 39), "48", 2, "PAN length 20 is outside 12..19"),
    ("48 PAN pad", lambda: decode_batch_items("01" "12" "1234567890121" + "0" * 6 + "000001" + "0" * 12 + "22"),
     "48", 16, "PAN padding is not zeros"),
    ("48 kind", lambda: decode_batch_items("01" "12" + "1" * 12 + "0" * 7 + "000001" + "0" * 12 + "24"), "48", 41,
     "item kind '24' is not one of 22, 23, 25"),
    ("48 end", lambda: decode_batch_end("17"), "48", 2, "batch upload end count is 2 digits, expecting 4"),
]


@pytest.mark.parametrize(("call", "field", "pos", "reason"), [c[1:] for c in DECODE_ERRORS],
                         ids=[c[0] for c in DECODE_ERRORS])
def test_decode_errors(call, field: str, pos: int, reason: str) -> None:  # noqa: ANN001
    with pytest.raises(DecodeError) as info:
        call()
    assert (info.value.field, info.value.pos, info.value.reason) == (field, pos, reason)


ENCODE_ERRORS = [
    ("60 batch width", lambda: Field60("00", "1", "004").encode(), "60", "batch must be 6 digits, got '1'"),
    ("60 gap", lambda: Field60("22", "000001", "000", read_cap="", ic_cond="0").encode(), "60",
     "ic_cond is set but an earlier sub-field of 60.4-60.6 is empty"),
    ("60 extra without 60.6", lambda: Field60("22", "000001", "000", "5", extra="1").encode(), "60",
     "extra digits need 60.4-60.6 to be set"),
    ("53 digit", lambda: SecurityControl(algorithm="S").encode(), "53", "algorithm must be 1 digits, got 'S'"),
    ("54 amount too big", lambda: encode_balance(10**12), "54", "amount 1000000000000 does not fit in 12 digits"),
    ("54 not int", lambda: encode_balance(1.5), "54", "amount must be int cents, got 1.5"),  # type: ignore[arg-type]
    ("54 currency", lambda: encode_balance(1, "RMB"), "54", "currency must be 3 digits, got 'RMB'"),
    ("48 negative", lambda: SettlementTotals(-1, 0, 0, 0).encode(), "48",
     "debit amount must be a non-negative int, got -1"),
    ("48 count", lambda: SettlementTotals(0, 1000, 0, 0).encode(), "48", "debit count 1000 does not fit in 3 digits"),
    ("48 flag", lambda: SettlementTotals(0, 0, 0, 0, "5").encode(), "48",
     "reconciliation flag '5' is not one of 0, 1, 2, 3"),
    ("48 no items", lambda: encode_batch_items([]), "48", "a batch upload carries 1 to 8 items, got 0"),
    ("48 bad PAN", lambda: encode_batch_items([BatchItem("12345", "000001", 1, "22")]), "48",
     "PAN must be 12 to 19 digits"),
    ("48 bad kind", lambda: encode_batch_items([BatchItem("6" * 16, "000001", 1, "99")]), "48",
     "item kind '99' is not one of 22, 23, 25"),
    ("48 bad STAN", lambda: encode_batch_items([BatchItem("6" * 16, "1", 1, "22")]), "48",
     "STAN must be 6 digits, got '1'"),
]


@pytest.mark.parametrize(("call", "field", "reason"), [c[1:] for c in ENCODE_ERRORS],
                         ids=[c[0] for c in ENCODE_ERRORS])
def test_encode_errors(call, field: str, reason: str) -> None:  # noqa: ANN001
    with pytest.raises(EncodeError) as info:
        call()
    assert (info.value.field, info.value.reason) == (field, reason)
