"""BER-TLV as used by EMV (field 55, CAPK/AID entries in field 62).

Tags are uppercase hex strings (``"9F06"``); multi-byte tags follow BER: a first byte
whose low 5 bits are all 1 continues, and every following byte with bit 8 set continues.
Lengths use the short form (< 0x80) or the 0x81 / 0x82 long forms; longer forms and the
indefinite form are refused. Constructed tags are returned flat (their value unparsed).
"""

from __future__ import annotations

from posdoctor.iso8583.errors import DecodeError, EncodeError
from posdoctor.iso8583.fields._util import check_bytes

__all__ = ["encode_tlv", "decode_tlv", "encode_emv_list", "decode_emv_list", "EMV_LIST_STATUSES"]

_MAX_VALUE = 0xFFFF
_HEX = frozenset("0123456789abcdefABCDEF")
EMV_LIST_STATUSES = frozenset("0123")
"""CAPK/AID answer status: 0 none, 1/3 complete, 2 more follow."""


def encode_tlv(items: list[tuple[str, bytes]], *, field: str = "55") -> bytes:
    out = bytearray()
    for tag, value in items:
        out += _encode_tag(tag, field)
        if not isinstance(value, (bytes, bytearray)):
            raise EncodeError(field, f"TLV {tag} value must be bytes, not {type(value).__name__}")
        out += _encode_length(len(value), tag, field) + bytes(value)
    return bytes(out)


def _encode_tag(tag: object, field: str) -> bytes:
    raw = None
    if isinstance(tag, str) and tag and len(tag) % 2 == 0 and all(c in _HEX for c in tag):
        raw = bytes.fromhex(tag)
    if not raw:
        raise EncodeError(field, f"TLV tag {tag!r} is not hex bytes")
    if _tag_length(raw, 0) != len(raw):
        raise EncodeError(field, f"TLV tag {tag} is not a well-formed BER tag")
    return raw


def _tag_length(data: bytes, pos: int) -> int:
    """Bytes taken by the tag starting at `pos` (0 if it runs past the end)."""
    if pos >= len(data):
        return 0
    if data[pos] & 0x1F != 0x1F:
        return 1
    end = pos + 1
    while end < len(data) and data[end] & 0x80:
        end += 1
    return end - pos + 1 if end < len(data) else 0


def _encode_length(length: int, tag: str, field: str) -> bytes:
    if length < 0x80:
        return bytes([length])
    if length <= 0xFF:
        return b"\x81" + bytes([length])
    if length <= _MAX_VALUE:
        return b"\x82" + length.to_bytes(2, "big")
    raise EncodeError(field, f"TLV {tag} value is {length} bytes, larger than {_MAX_VALUE}")


def decode_tlv(data: bytes, *, field: str = "55") -> list[tuple[str, bytes]]:
    data = check_bytes(field, data)
    items: list[tuple[str, bytes]] = []
    pos = 0
    while pos < len(data):
        tag_len = _tag_length(data, pos)
        if tag_len == 0:
            raise DecodeError(field, pos, "TLV tag runs past the end of the data")
        tag = data[pos:pos + tag_len].hex().upper()
        length, value_start = _decode_length(data, pos + tag_len, tag, field)
        end = value_start + length
        if end > len(data):
            raise DecodeError(field, value_start,
                              f"TLV {tag} announces {length} bytes, only {len(data) - value_start} left")
        items.append((tag, data[value_start:end]))
        pos = end
    return items


def _decode_length(data: bytes, pos: int, tag: str, field: str) -> tuple[int, int]:
    if pos >= len(data):
        raise DecodeError(field, pos, f"TLV {tag} has no length byte")
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    width = first & 0x7F
    if width == 0:
        raise DecodeError(field, pos, f"TLV {tag} uses the indefinite length form")
    if width > 2:
        raise DecodeError(field, pos, f"TLV {tag} length form {first:#04x} is not supported (0x81, 0x82 only)")
    raw = data[pos + 1:pos + 1 + width]
    if len(raw) != width:
        raise DecodeError(field, pos, f"TLV {tag} length needs {width} more bytes")
    return int.from_bytes(raw, "big"), pos + 1 + width


def encode_emv_list(status: str, items: list[tuple[str, bytes]]) -> bytes:
    """CAPK/AID answer field 62: one status character + the TLV items."""
    if status not in EMV_LIST_STATUSES:
        raise EncodeError("62", f"list status {status!r} is not one of 0, 1, 2, 3")
    return status.encode("ascii") + encode_tlv(items, field="62")


def decode_emv_list(data: bytes) -> tuple[str, list[tuple[str, bytes]]]:
    data = check_bytes("62", data)
    if not data:
        raise DecodeError("62", 0, "empty list: the status character is missing")
    status = chr(data[0])
    if status not in EMV_LIST_STATUSES:
        raise DecodeError("62", 0, f"list status {status!r} is not one of 0, 1, 2, 3")
    try:
        return status, decode_tlv(data[1:], field="62")
    except DecodeError as exc:
        raise DecodeError("62", exc.pos + 1, exc.reason) from None
