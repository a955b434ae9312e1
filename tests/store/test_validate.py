"""Identifier validation and PAN masking (pure functions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posdoctor.store.errors import InvalidValue
from posdoctor.store.validate import (
    luhn_valid,
    mask_pan,
    validate_expiry,
    validate_mid,
    validate_pan,
    validate_pin,
    validate_serial,
    validate_tid,
)


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("79927398713", True),  # the classic example
        ("4111111111111111", True),
        ("6222020000000000000", True),
        ("6222020000000000007", False),
        ("4111111111111112", False),
        ("0", True),
    ],
)
def test_luhn_known_answers(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


def _check_digit(body: str) -> str:
    return next(d for d in "0123456789" if luhn_valid(body + d))


@given(st.text("0123456789", min_size=12, max_size=18))
def test_exactly_one_check_digit_completes_a_pan(body: str) -> None:
    completing = [d for d in "0123456789" if luhn_valid(body + d)]
    assert len(completing) == 1


@given(st.text("0123456789", min_size=12, max_size=18), st.data())
def test_changing_one_digit_breaks_luhn(body: str, data: st.DataObject) -> None:
    pan = body + _check_digit(body)
    index = data.draw(st.integers(0, len(pan) - 1))
    other = data.draw(st.sampled_from([d for d in "0123456789" if d != pan[index]]))
    assert not luhn_valid(pan[:index] + other + pan[index + 1 :])


@pytest.mark.parametrize(
    ("func", "value", "message"),
    [
        (validate_mid, "89810000000000", "商户号必须是15位数字 / MID must be 15 digits"),
        (validate_mid, "89810000000000A", "商户号必须是15位数字 / MID must be 15 digits"),
        (validate_mid, "８９８１００００００００００１", "商户号必须是15位数字 / MID must be 15 digits"),
        (validate_tid, "1000001", "终端号必须是8位字母或数字 / TID must be 8 letters or digits"),
        (validate_tid, "1000-001", "终端号必须是8位字母或数字 / TID must be 8 letters or digits"),
        (validate_pan, "622202000000", "卡号必须是13到19位数字 / PAN must be 13 to 19 digits"),
        (validate_pan, "62220200000000000000", "卡号必须是13到19位数字 / PAN must be 13 to 19 digits"),
        (validate_pan, "6222020000000000007", "卡号校验位错误(Luhn) / PAN check digit is wrong (Luhn)"),
        (validate_pin, "123", "密码必须是4到12位数字 / PIN must be 4 to 12 digits"),
        (validate_pin, "1234567890123", "密码必须是4到12位数字 / PIN must be 4 to 12 digits"),
        (validate_pin, "12a4", "密码必须是4到12位数字 / PIN must be 4 to 12 digits"),
        (validate_expiry, "3013", "有效期必须是YYMM格式(月份01-12) / expiry must be YYMM (month 01-12)"),
        (validate_expiry, "300", "有效期必须是YYMM格式(月份01-12) / expiry must be YYMM (month 01-12)"),
        (validate_serial, "", "设备序列号必须是1到32位字母、数字或 . _ - / device serial must be 1 to 32 letters, digits or . _ -"),
    ],
)
def test_invalid_values_have_exact_bilingual_messages(func, value: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidValue) as err:
        func(value)
    assert str(err.value) == message


def test_valid_values_pass_unchanged() -> None:
    assert validate_mid("898100000000001") == "898100000000001"
    assert validate_tid("1000ab01") == "1000ab01"
    assert validate_pan("6222020000000000000") == "6222020000000000000"
    assert validate_pin("0000") == "0000"
    assert validate_expiry("3012") == "3012"
    assert validate_serial("SN-0001.a_b") == "SN-0001.a_b"


@pytest.mark.parametrize(
    ("pan", "masked"),
    [
        ("6222020000000000000", "622202*********0000"),
        ("4111111111111111", "411111******1111"),
        ("1234567890123", "123456***0123"),
    ],
)
def test_mask_pan_keeps_first_six_last_four(pan: str, masked: str) -> None:
    assert mask_pan(pan) == masked


@given(st.text("0123456789", min_size=13, max_size=19))
def test_mask_pan_never_shows_the_middle(pan: str) -> None:
    masked = mask_pan(pan)
    assert len(masked) == len(pan)
    assert masked[6:-4] == "*" * (len(pan) - 10)


@given(st.text(alphabet="0123456789", min_size=12, max_size=18))
def test_luhn_complete_makes_valid_numbers(body: str) -> None:
    from posdoctor.store.validate import luhn_complete

    full = luhn_complete(body)
    assert full[:-1] == body and luhn_valid(full)


def test_luhn_complete_known_answer() -> None:
    from posdoctor.store.validate import luhn_complete

    assert luhn_complete("622202123456789012") == "6222021234567890128"  # the README's test card
