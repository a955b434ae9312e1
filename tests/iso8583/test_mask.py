"""Masking: no full PAN, track, PIN block, ICC data or key material survives."""

from __future__ import annotations

import pytest

from posdoctor.iso8583.codec import encode_message
from posdoctor.iso8583.mask import mask_body_hex, mask_fields, mask_pan, mask_track


@pytest.mark.parametrize(("pan", "masked"), [
    ("6225881234567890123", "622588*********0123"),
    ("6225881234567890", "622588******7890"),
    ("62258812345", "622588*2345"),
    ("6225881234", "**********"),
    ("", ""),
])
def test_mask_pan(pan: str, masked: str) -> None:
    assert mask_pan(pan) == masked


def test_mask_track() -> None:
    assert mask_track("6225881234567890123=25121010000") == "622588*********0123=" + "*" * 11
    assert mask_track("6225881234567890D2512") == "622588******7890=****"
    assert mask_track("12345") == "*****"


def test_mask_fields_copies_and_hides() -> None:
    msg = {"t": "0200", "2": "6225881234567890", "4": "000000000100", "14": "2512",
           "35": "6225881234567890=2512101", "52": "1A2B3C4D5E6F7081", "55": "9F2701809F2608AABB",
           "62": "0011223344", "64": "0102030405060708"}
    safe = mask_fields(msg)
    assert safe == {"t": "0200", "2": "622588******7890", "4": "000000000100", "14": "****",
                    "35": "622588******7890=*******", "52": "*" * 16, "55": "*" * 18,
                    "62": "*" * 10, "64": "0102030405060708"}
    assert msg["2"] == "6225881234567890"


def test_mask_body_hex_stars_secrets_in_place() -> None:
    body = encode_message({"t": "0200", "2": "6225881234567890", "3": "000000",
                           "35": "6225881234567890=2512101", "52": "1A2B3C4D5E6F7081"})
    text = mask_body_hex(body)
    assert len(text) == 2 * len(body)
    assert text == ("0200" "6000000020001000" "16" "622588******7890" "000000"
                    "24" + "*" * 24 + "*" * 16)
    assert "1234567890" not in text and "1A2B3C" not in text


def test_mask_body_hex_of_garbage_keeps_only_mti_and_bitmap() -> None:
    body = bytes.fromhex("0200" "4000000000000000" "19" "62258812345678")
    assert mask_body_hex(body) == "0200" "4000000000000000" + "*" * 16
