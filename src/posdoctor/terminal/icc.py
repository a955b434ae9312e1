"""Field 55 (ICC data) of an emulated chip transaction.

The emulator has no card issuer keys, so the application cryptogram (9F26) is random:
hosts that do not verify ARQCs (like posdoctor's) accept it; the tag set and formats are
those a CUP terminal sends with an online authorisation request.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from posdoctor.iso8583.fields import encode_tlv

__all__ = ["build_icc_data", "CUP_DEBIT_AID"]

CUP_DEBIT_AID = bytes.fromhex("A000000333010101")
_CNY = bytes.fromhex("0156")
_CHINA = bytes.fromhex("0156")
_TXN_TYPES = {"sale": b"\x00", "balance": b"\x31", "refund": b"\x20", "void": b"\x20"}


def _bcd(number: int, digits: int) -> bytes:
    return bytes.fromhex(f"{number:0{digits}d}")


def build_icc_data(kind: str, amount: int, now: datetime, *, atc: int, aid: bytes = CUP_DEBIT_AID,
                   serial: str = "") -> bytes:
    items = [
        ("9F26", secrets.token_bytes(8)),            # application cryptogram (ARQC)
        ("9F27", b"\x80"),                           # cryptogram information: ARQC
        ("9F10", bytes.fromhex("07010103A00000010A010000000000")),  # issuer application data
        ("9F37", secrets.token_bytes(4)),            # unpredictable number
        ("9F36", atc.to_bytes(2, "big")),            # application transaction counter
        ("95", bytes(5)),                            # terminal verification results
        ("9A", bytes.fromhex(now.strftime("%y%m%d"))),
        ("9C", _TXN_TYPES.get(kind, b"\x00")),
        ("9F02", _bcd(amount, 12)),
        ("5F2A", _CNY),
        ("82", bytes.fromhex("7C00")),               # application interchange profile
        ("9F1A", _CHINA),
        ("9F03", bytes(6)),
        ("9F33", bytes.fromhex("E0F1C8")),           # terminal capabilities
        ("9F34", bytes.fromhex("420300")),           # CVM results: online PIN
        ("9F35", b"\x22"),                           # terminal type: attended, online
        ("84", aid),
        ("9F09", bytes.fromhex("0020")),
    ]
    if serial:
        items.append(("9F1E", serial.encode("ascii", "replace")[-8:].rjust(8, b"0")))
    return encode_tlv(items)
