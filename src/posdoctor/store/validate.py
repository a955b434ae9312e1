"""Validation of registry identifiers and card data typed by operators.

Each function returns the normalised value or raises :class:`InvalidValue` with the
exact bilingual message shown to the user. Messages never echo a full PAN or a PIN.
"""

from __future__ import annotations

import re

from posdoctor.store.errors import InvalidValue

CARD_STATUSES = ("active", "lost", "expired", "blocked")
REGISTRY_STATUSES = ("active", "suspended", "disabled", "frozen", "pending", "closed")

_MID = re.compile(r"[0-9]{15}")
_TID = re.compile(r"[0-9A-Za-z]{8}")
_PAN = re.compile(r"[0-9]{13,19}")
_PIN = re.compile(r"[0-9]{4,12}")
_SERIAL = re.compile(r"[0-9A-Za-z._-]{1,32}")
_EXPIRY = re.compile(r"[0-9]{2}(0[1-9]|1[0-2])")


def validate_mid(mid: str) -> str:
    if not _MID.fullmatch(mid):
        raise InvalidValue("mid", "商户号必须是15位数字", "MID must be 15 digits")
    return mid


def validate_tid(tid: str) -> str:
    if not _TID.fullmatch(tid):
        raise InvalidValue("tid", "终端号必须是8位字母或数字", "TID must be 8 letters or digits")
    return tid


def validate_serial(serial: str) -> str:
    if not _SERIAL.fullmatch(serial):
        raise InvalidValue(
            "serial",
            "设备序列号必须是1到32位字母、数字或 . _ -",
            "device serial must be 1 to 32 letters, digits or . _ -",
        )
    return serial


def _luhn_sum(digits: str) -> int:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` (all decimal) passes the Luhn (mod 10) check."""
    return _luhn_sum(digits) % 10 == 0


def luhn_complete(body: str) -> str:
    """``body`` (all decimal) with its Luhn check digit appended."""
    return body + str(-_luhn_sum(body + "0") % 10)


def validate_pan(pan: str) -> str:
    if not _PAN.fullmatch(pan):
        raise InvalidValue("pan", "卡号必须是13到19位数字", "PAN must be 13 to 19 digits")
    if not luhn_valid(pan):
        raise InvalidValue("pan", "卡号校验位错误(Luhn)", "PAN check digit is wrong (Luhn)")
    return pan


def validate_pin(pin: str) -> str:
    if not _PIN.fullmatch(pin):
        raise InvalidValue("pin", "密码必须是4到12位数字", "PIN must be 4 to 12 digits")
    return pin


def validate_expiry(expiry: str) -> str:
    if not _EXPIRY.fullmatch(expiry):
        raise InvalidValue(
            "expiry", "有效期必须是YYMM格式(月份01-12)", "expiry must be YYMM (month 01-12)"
        )
    return expiry


def validate_amount(field: str, cents: int) -> int:
    if cents < 0:
        raise InvalidValue(field, f"{field} 金额不能为负数", f"{field} must not be negative")
    return cents


def validate_choice(field: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        allowed = ", ".join(choices)
        raise InvalidValue(
            field, f"{field} 必须是以下之一: {allowed}", f"{field} must be one of: {allowed}"
        )
    return value


def mask_pan(pan: str) -> str:
    """First 6 and last 4 digits kept, the rest replaced by ``*``.

    Same rule as ``posdoctor.iso8583.mask.mask_pan``; kept here so the storage layer does
    not depend on the codec package.
    """
    if len(pan) <= 10:
        return "*" * len(pan)
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
