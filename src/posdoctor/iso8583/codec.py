"""Encode and decode CUP ISO 8583 message bodies (MTI .. last field).

Thin wrappers over pyiso8583 with `CUP_SPEC`. They add only what pyiso8583 cannot say
in a spec: digits-only checks for BCD fields (pyiso8583 would accept hex), the ``=`` <->
``D`` mapping of track data, space padding of 41/42/43, and a refusal of bitmap bits the
dialect does not define (bit 1 = secondary bitmap included). Every pyiso8583 error is
translated into `EncodeError` / `DecodeError`; nothing else escapes for bytes input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import iso8583

from posdoctor.iso8583.errors import DecodeError, EncodeError
from posdoctor.iso8583.spec import CUP_SPEC, DEFINED_FIELDS, NUMERIC_FIELDS, TRACK_FIELDS

__all__ = [
    "Layout", "encode_message", "encode_message_with_layout", "decode_message", "decode_message_with_layout",
    "mac_input", "with_mac", "field_offsets", "data_layout",
]

Layout = dict[str, tuple[int, int]]
"""Where each field's data lies in an encoded body: key -> (byte offset, byte length).
Masking uses it to star secrets in place without decoding the body a second time."""

_MTI_AND_BITMAP = 10
_MAC_LEN = 8
_SPACE_PADDED = (("41", 8), ("42", 15))
_NAME_FIELD, _NAME_LEN, _NAME_ENCODING = "43", 40, "gbk"
_PAD_MISMATCH = re.compile(r"Field data is (\d+) nibbles, expecting (\d+)")
_UNDEFINED_BITS = sum(1 << (64 - n) for n in range(1, 65) if n not in DEFINED_FIELDS)


# -- encode ------------------------------------------------------------------------------

def encode_message(msg: Mapping[str, str]) -> bytes:
    """`msg` (``"t"`` + fields as strings) -> body bytes; the input is not modified."""
    return encode_message_with_layout(msg)[0]


def encode_message_with_layout(msg: Mapping[str, str]) -> tuple[bytes, Layout]:
    """`encode_message` and the `Layout` of the bytes it made."""
    doc = dict(msg)
    doc.pop("p", None)
    if "1" in doc or "65" in doc:
        raise EncodeError("1" if "1" in doc else "65", "bitmap extension fields are not used in the CUP dialect")
    _prepare_for_wire(doc)
    try:
        raw, enc = iso8583.encode(doc, CUP_SPEC)
    except iso8583.EncodeError as exc:
        raise EncodeError(exc.field, exc.msg) from None
    except (KeyError, TypeError, ValueError, AttributeError, NameError) as exc:
        raise _explain_encode_failure(doc, exc) from exc
    return bytes(raw), data_layout(enc)


def _prepare_for_wire(doc: dict[str, str]) -> None:
    mti = doc.get("t")
    if type(mti) is str and len(mti) != 4:
        raise EncodeError("t", f"MTI must be 4 digits, got {len(mti)}")
    for key in NUMERIC_FIELDS:
        value = doc.get(key)
        if value is None or value == "":
            continue
        if type(value) is not str or not (value.isdigit() and value.isascii()):
            raise EncodeError(key, _not_digits(value))
    for key in TRACK_FIELDS:
        value = doc.get(key)
        if value is not None:
            doc[key] = _track_to_wire(key, value)
    for key, width in _SPACE_PADDED:
        value = doc.get(key)
        if value is not None:
            if type(value) is not str:
                raise EncodeError(key, f"value must be str, not {type(value).__name__}")
            doc[key] = value.ljust(width)
    if _NAME_FIELD in doc:
        doc[_NAME_FIELD] = _pad_merchant_name(doc[_NAME_FIELD])


def _not_digits(value: object) -> str:
    if type(value) is not str:
        return f"value must be str, not {type(value).__name__}"
    return "numeric field holds non-digit characters"


def _track_to_wire(key: str, value: object) -> str:
    if type(value) is not str:
        raise EncodeError(key, f"value must be str, not {type(value).__name__}")
    wire = value.replace("=", "D")
    if not _is_track(wire):
        raise EncodeError(key, "track data holds characters other than digits and '='")
    return wire


def _is_track(wire: str) -> bool:
    """Digits and separator nibbles only (an empty value is fine)."""
    digits = wire.replace("D", "")
    return wire.isascii() and (digits == "" or digits.isdigit())


def _pad_merchant_name(value: object) -> str:
    if type(value) is not str:
        raise EncodeError(_NAME_FIELD, f"value must be str, not {type(value).__name__}")
    try:
        size = len(value.encode(_NAME_ENCODING))
    except UnicodeEncodeError:
        raise EncodeError(_NAME_FIELD, "merchant name has characters outside GBK") from None
    if size > _NAME_LEN:
        raise EncodeError(_NAME_FIELD, f"merchant name is {size} bytes in GBK, larger than {_NAME_LEN}")
    return value + " " * (_NAME_LEN - size)


def _explain_encode_failure(doc: Mapping[object, object], exc: Exception) -> EncodeError:
    """Slow path: name the key or value pyiso8583 tripped over without saying so."""
    for key, value in doc.items():
        if type(key) is not str:
            return EncodeError(str(key), f"field keys must be str, not {type(key).__name__}")
        if key not in CUP_SPEC:
            return EncodeError(key, "field not defined in the CUP dialect (fields 2..64 of a primary bitmap)")
        if type(value) is not str:
            return EncodeError(key, f"value must be str, not {type(value).__name__}")
    return EncodeError("p", f"message could not be encoded: {type(exc).__name__}")


# -- decode ------------------------------------------------------------------------------

def decode_message(body: bytes) -> dict[str, str]:
    """Body bytes (MTI first) -> message dict; raises `DecodeError` on any malformation."""
    return decode_message_with_layout(body)[0]


def decode_message_with_layout(body: bytes) -> tuple[dict[str, str], Layout]:
    """`decode_message` and the `Layout` of `body` (for masking it without decoding again)."""
    if not isinstance(body, bytes):
        body = bytes(body)
    _refuse_undefined_bits(body)
    try:
        doc, enc = iso8583.decode(body, CUP_SPEC)
    except iso8583.DecodeError as exc:
        raise _translate_decode_error(exc) from None
    del doc["p"]
    _finish_decoded(doc, enc)
    return doc, data_layout(enc)


def _refuse_undefined_bits(body: bytes) -> None:
    if len(body) < _MTI_AND_BITMAP:
        return  # pyiso8583 reports the truncation with its position
    undefined = int.from_bytes(body[2:_MTI_AND_BITMAP], "big") & _UNDEFINED_BITS
    if not undefined:
        return
    first = 65 - undefined.bit_length()
    if first == 1:
        raise DecodeError("1", 2, "secondary bitmap (bit 1) is not used in the CUP dialect")
    raise DecodeError(str(first), 2, f"bitmap sets field {first}, which the CUP dialect does not define")


def _translate_decode_error(exc: iso8583.DecodeError) -> DecodeError:
    partial = {k: v for k, v in exc.doc_dec.items() if k not in ("p", exc.field)}
    if exc.msg.startswith("Extra data after last field"):
        extra = len(exc.s) - exc.pos
        return DecodeError(exc.field, exc.pos, f"{extra} extra bytes after the last field", partial=partial)
    pad = _PAD_MISMATCH.fullmatch(exc.msg)
    if pad and int(pad[1]) == int(pad[2]) + 1:
        return DecodeError(exc.field, exc.pos, f"odd-length value of {pad[2]} digits has a pad nibble other than 0",
                           partial=partial)
    return DecodeError(exc.field, exc.pos, exc.msg, partial=partial)


def _finish_decoded(doc: dict[str, str], enc: Mapping[str, Mapping[str, bytes]]) -> None:
    for key in NUMERIC_FIELDS:
        value = doc.get(key)
        if value and not value.isdigit():
            raise _bad_nibble(doc, enc, key, value)
    for key in TRACK_FIELDS:
        value = doc.get(key)
        if value:
            if not _is_track(value):
                raise _bad_nibble(doc, enc, key, value, allowed="D")
            doc[key] = value.replace("D", "=")
    for key, _width in _SPACE_PADDED:
        if key in doc:
            doc[key] = doc[key].rstrip(" ")
    if _NAME_FIELD in doc:
        doc[_NAME_FIELD] = doc[_NAME_FIELD].rstrip(" ")


def _bad_nibble(doc: Mapping[str, str], enc: Mapping[str, Mapping[str, bytes]], key: str, value: str,
                allowed: str = "") -> DecodeError:
    index = next((i for i, ch in enumerate(value) if not (ch.isdigit() or ch in allowed)), 0)
    data_start = field_offsets(enc)[key][1]
    partial = {k: v for k, v in doc.items() if k != key}
    return DecodeError(key, data_start + index // 2,
                       f"BCD nibble {value[index]!r} at digit {index} is not a decimal digit", partial=partial)


def field_offsets(enc: Mapping[str, Mapping[str, bytes]]) -> dict[str, tuple[int, int]]:
    """pyiso8583's encoded dict -> {key: (offset of the length prefix, offset of the data)}."""
    offsets: dict[str, tuple[int, int]] = {}
    pos = 0
    numeric = sorted(int(k) for k in enc if k.isdigit())
    for key in ("t", "p", *map(str, numeric)):
        if key not in enc:
            continue
        part = enc[key]
        offsets[key] = (pos, pos + len(part["len"]))
        pos += len(part["len"]) + len(part["data"])
    return offsets


def data_layout(enc: Mapping[str, Mapping[str, bytes]]) -> Layout:
    """pyiso8583's encoded dict (fields in body order, as it builds it) -> `Layout`."""
    layout: Layout = {}
    pos = 0
    for key, part in enc.items():
        prefix, size = len(part["len"]), len(part["data"])
        layout[key] = (pos + prefix, size)
        pos += prefix + size
    return layout


# -- MAC helpers -------------------------------------------------------------------------

def _has_field_64(body: bytes) -> bool:
    if len(body) < _MTI_AND_BITMAP:
        raise DecodeError("p", len(body), f"body is {len(body)} bytes, too short for MTI and bitmap")
    return bool(body[_MTI_AND_BITMAP - 1] & 0x01)


def mac_input(body: bytes) -> bytes:
    """The MAC block input: the body from the MTI up to the byte before field 64."""
    if _has_field_64(body):
        if len(body) < _MTI_AND_BITMAP + _MAC_LEN:
            raise DecodeError("64", len(body), "bitmap sets field 64 but the body cannot hold its 8 bytes")
        return bytes(body[:-_MAC_LEN])
    return bytes(body)


def with_mac(body: bytes, mac: bytes) -> bytes:
    """Replace the 8 bytes of field 64 at the end of `body` (encode with a placeholder first)."""
    if len(mac) != _MAC_LEN:
        raise EncodeError("64", f"MAC is {len(mac)} bytes, expecting {_MAC_LEN}")
    if not _has_field_64(body):
        raise EncodeError("64", "the message has no field 64 to hold the MAC")
    return mac_input(body) + bytes(mac)
