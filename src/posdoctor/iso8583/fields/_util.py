"""Small checks shared by the sub-field codecs."""

from __future__ import annotations

from posdoctor.iso8583.errors import DecodeError, EncodeError


def require_digits(field: str, name: str, value: object, width: int) -> str:
    """`value` must be exactly `width` ASCII digits (EncodeError otherwise)."""
    if not (isinstance(value, str) and len(value) == width and value.isdigit() and value.isascii()):
        raise EncodeError(field, f"{name} must be {width} digits, got {value!r}")
    return value


def number_to_digits(field: str, name: str, value: object, width: int) -> str:
    """A non-negative int -> `width` zero-padded digits (EncodeError if it does not fit)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise EncodeError(field, f"{name} must be a non-negative int, got {value!r}")
    digits = str(value).zfill(width)
    if len(digits) > width:
        raise EncodeError(field, f"{name} {value} does not fit in {width} digits")
    return digits


def check_digit_string(field: str, value: object) -> str:
    """A decoder's input must be a str of ASCII digits; DecodeError names the first offender."""
    if not isinstance(value, str):
        raise DecodeError(field, 0, f"value must be str, not {type(value).__name__}")
    for index, ch in enumerate(value):
        if not ("0" <= ch <= "9"):
            raise DecodeError(field, index, f"character {ch!r} at {index} is not a decimal digit")
    return value


def check_bytes(field: str, value: object) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise DecodeError(field, 0, f"value must be bytes, not {type(value).__name__}")
    return bytes(value)
