"""The CUP (银联 POS) dialect of ISO 8583 as one pyiso8583 spec dict.

Encodings follow the reference (`cup8583.md` section 2, HSWC `union_pay.xml`):

- MTI: 2 bytes BCD; primary bitmap: 8 bytes binary. The dialect has 64 fields only: a
  message with bit 1 (secondary bitmap) set is refused by `codec.decode_message`.
- Numeric fields are BCD (``data_enc "b"``, ``len_count "nibbles"``: lengths count
  digits). Odd-length values of 2, 22, 35, 36, 48, 60, 61 are left-justified with a
  trailing 0 nibble (22 ``021`` -> ``02 10``); 23 and 32 are right-justified with a
  leading 0 nibble.
- LLVAR lengths are 1 BCD byte, LLLVAR lengths 2 BCD bytes.
- Track data 35/36 are BCD with the separator ``=`` as nibble ``D``; the codec maps
  ``=`` <-> ``D`` so callers see ``=``.
- 37, 38, 39, 41, 42, 49 are fixed ASCII; the codec pads 41/42 with spaces and strips
  them on decode.
- 43 merchant name: fixed 40 bytes of GBK text (ans40 with Chinese allowed), space padded
  by the codec so Chinese names round-trip.
- 52 and 64 are 8 bytes binary; 55 and 62 LLLVAR binary (length in bytes); 44 LLVAR
  ASCII; 54 and 63 LLLVAR ASCII; 48, 60, 61 LLLVAR BCD (length in digits).

`CUP_SPEC` has no header entry in use (``h`` max_len 0): TPDU and the 6-byte header
are the framing module's business. Fields absent from the spec are refused on decode.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CUP_SPEC", "NUMERIC_FIELDS", "TRACK_FIELDS", "BINARY_FIELDS", "DEFINED_FIELDS"]

FieldSpec = dict[str, Any]


def _numeric(max_len: int, desc: str, *, var: int = 0, pad: str = "right") -> FieldSpec:
    """A BCD field of `max_len` digits (fixed when `var` is 0, else LL/LLL with BCD length)."""
    spec: FieldSpec = {
        "data_enc": "b",
        "len_enc": "bcd",
        "len_type": var,
        "max_len": max_len,
        "len_count": "nibbles",
        "desc": desc,
    }
    spec["right_pad" if pad == "right" else "left_pad"] = "0"
    return spec


def _binary(max_len: int, desc: str, *, var: int = 0) -> FieldSpec:
    """Binary bytes, held in memory as uppercase hex."""
    return {"data_enc": "b", "len_enc": "bcd", "len_type": var, "max_len": max_len, "desc": desc}


def _text(max_len: int, desc: str, *, var: int = 0, encoding: str = "ascii") -> FieldSpec:
    return {"data_enc": encoding, "len_enc": "bcd", "len_type": var, "max_len": max_len, "desc": desc}


LLVAR, LLLVAR = 1, 2

CUP_SPEC: dict[str, FieldSpec] = {
    "h": {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 0, "desc": "Message Header (in the frame)"},
    "t": {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": 2, "desc": "Message Type Indicator"},
    "p": {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": 8, "desc": "Bitmap, Primary"},
    "2": _numeric(19, "Primary Account Number", var=LLVAR),
    "3": _numeric(6, "Processing Code"),
    "4": _numeric(12, "Amount, Transaction"),
    "11": _numeric(6, "System Trace Audit Number"),
    "12": _numeric(6, "Time, Local Transaction (hhmmss)"),
    "13": _numeric(4, "Date, Local Transaction (MMDD)"),
    "14": _numeric(4, "Date, Expiration (YYMM)"),
    "15": _numeric(4, "Date, Settlement (MMDD)"),
    "22": _numeric(3, "POS Entry Mode"),
    "23": _numeric(3, "Card Sequence Number", pad="left"),
    "25": _numeric(2, "POS Condition Code"),
    "26": _numeric(2, "POS PIN Capture Code"),
    "32": _numeric(11, "Acquiring Institution Identification Code", var=LLVAR, pad="left"),
    "35": _numeric(37, "Track 2 Data", var=LLVAR),
    "36": _numeric(104, "Track 3 Data", var=LLLVAR),
    "37": _text(12, "Retrieval Reference Number"),
    "38": _text(6, "Authorization Identification Response"),
    "39": _text(2, "Response Code"),
    "41": _text(8, "Card Acceptor Terminal Identification"),
    "42": _text(15, "Card Acceptor Identification Code"),
    "43": _text(40, "Card Acceptor Name (GBK)", encoding="gbk"),
    "44": _text(25, "Additional Response Data", var=LLVAR),
    "48": _numeric(999, "Additional Data - Private (settlement totals, batch upload)", var=LLLVAR),
    "49": _text(3, "Currency Code, Transaction"),
    "52": _binary(8, "PIN Data"),
    "53": _numeric(16, "Security Related Control Information"),
    "54": _text(40, "Balance Amount", var=LLLVAR),
    "55": _binary(255, "ICC Data (BER-TLV)", var=LLLVAR),
    "60": _numeric(17, "Reserved Private (60.1 type, 60.2 batch, 60.3 NMI, ...)", var=LLLVAR),
    "61": _numeric(29, "Original Message (batch, STAN, date)", var=LLLVAR),
    "62": _binary(512, "Reserved Private (keys, device info, parameters)", var=LLLVAR),
    "63": _text(163, "Reserved Private (operator, card organisation)", var=LLLVAR),
    "64": _binary(8, "Message Authentication Code"),
}

DEFINED_FIELDS: frozenset[int] = frozenset(int(k) for k in CUP_SPEC if k.isdigit())
"""Field numbers the dialect knows; a bitmap bit outside this set is a decode error."""

NUMERIC_FIELDS: tuple[str, ...] = ("t", "2", "3", "4", "11", "12", "13", "14", "15", "22", "23", "25", "26",
                                   "32", "48", "53", "60", "61")
"""Keys whose values must be decimal digits (BCD on the wire; pyiso8583 alone accepts hex)."""

TRACK_FIELDS: tuple[str, ...] = ("35", "36")
"""Digits plus ``=`` (nibble ``D``)."""

BINARY_FIELDS: tuple[str, ...] = ("52", "55", "62", "64")
"""Held in memory as uppercase hex strings."""
