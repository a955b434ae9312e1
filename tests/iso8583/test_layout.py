"""Layouts: encode and decode agree on where each field lies, and masking with a
layout gives exactly what masking by decoding again gives."""

from __future__ import annotations

import iso8583
from hypothesis import HealthCheck, given, settings
from iso8583_strategies import messages

from posdoctor.iso8583.codec import (
    decode_message,
    decode_message_with_layout,
    encode_message,
    encode_message_with_layout,
    field_offsets,
)
from posdoctor.iso8583.mask import mask_body_hex
from posdoctor.iso8583.spec import CUP_SPEC

SALE = {"t": "0200", "2": "6222021234567890128", "3": "000000", "4": "000000000100", "11": "000123",
        "22": "021", "25": "00", "35": "6222021234567890128=30121010000", "41": "10000001",
        "42": "898100000000001", "49": "156", "52": "0123456789ABCDEF", "53": "2600000000000000",
        "60": "22000001000500", "64": "00" * 8}


def test_sale_layout_points_at_each_fields_bytes() -> None:
    body, layout = encode_message_with_layout(SALE)
    assert body == encode_message(SALE)
    assert decode_message_with_layout(body) == (decode_message(body), layout)
    assert body[slice(layout["t"][0], sum(layout["t"]))] == b"\x02\x00"
    start, size = layout["52"]
    assert body[start:start + size].hex().upper() == SALE["52"]
    start, size = layout["41"]
    assert body[start:start + size] == b"10000001"
    assert list(layout) == ["t", "p", *sorted((k for k in SALE if k != "t"), key=int)]


def test_masking_with_a_layout_equals_masking_by_decoding() -> None:
    body, layout = encode_message_with_layout(SALE)
    masked = mask_body_hex(body, layout)
    assert masked == mask_body_hex(body)
    assert "1234567890128" not in masked and SALE["52"] not in masked
    assert masked.count("*") > 16


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_layout_agrees_with_field_offsets(msg: dict[str, str]) -> None:
    body, layout = encode_message_with_layout(msg)
    _doc, decoded_layout = decode_message_with_layout(body)
    assert decoded_layout == layout
    for key, (_len_at, data_at) in field_offsets_of(body).items():
        assert layout[key][0] == data_at
    assert mask_body_hex(body, layout) == mask_body_hex(body)


def field_offsets_of(body: bytes) -> dict[str, tuple[int, int]]:
    _doc, enc = iso8583.decode(body, CUP_SPEC)
    return field_offsets(enc)
