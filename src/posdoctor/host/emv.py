"""What the host hands out in downloads: terminal parameters, CAPKs, AIDs.

The CAPKs are posdoctor's own test keys for the CUP RID: their moduli are derived from
a label with SHA-256 so they are stable across restarts (a terminal's checksums stay
valid); they are not keys of any real scheme and carry no security. The AIDs are the
public UnionPay debit/credit/quasi-credit application identifiers with test settings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from posdoctor.host.records import MerchantRecord, TerminalRecord

CUP_RID = bytes.fromhex("A000000333")
MERCHANT_NAME_BYTES = 40
"""Field 43 and parameter tag 22 hold 40 bytes of GBK."""
EmvEntry = list[tuple[str, bytes]]

DEFAULT_PARAMETERS: dict[str, str] = {
    "12": "60",  # receive timeout (s)
    "13": "3",  # dial retries
    "18": "0",  # tip
    "19": "00",
    "20": "0",  # manual entry
    "21": "0",  # automatic sign-off after settlement
    "23": "3",  # transaction retries
    "25": "01",  # master key index
    "26": "11111111",  # every transaction type enabled
}


def truncate_gbk(text: str, size: int) -> str:
    """The longest prefix of `text` that fits `size` bytes of GBK."""
    out = ""
    for ch in text:
        candidate = out + ch
        try:
            if len(candidate.encode("gbk")) > size:
                break
        except UnicodeEncodeError:
            continue
        out = candidate
    return out


def terminal_parameters(
    terminal: TerminalRecord,
    merchant: MerchantRecord | None,
    overrides: Mapping[str, str],
    listen: tuple[str, int] | None,
) -> dict[str, str]:
    """The parameter tag list for one terminal: defaults, its merchant name, where the host
    listens (90/91), then the operator's overrides."""
    params = dict(DEFAULT_PARAMETERS)
    if merchant is not None:
        params["22"] = truncate_gbk(merchant.name, MERCHANT_NAME_BYTES)
    if listen is not None:
        params["90"], params["91"] = listen[0], str(listen[1])
    params.update(overrides)
    return params


def _test_modulus(index: int, size: int) -> bytes:
    stream = b""
    counter = 0
    while len(stream) < size:
        stream += hashlib.sha256(b"posdoctor test CAPK %d/%d" % (index, counter)).digest()
        counter += 1
    modulus = bytearray(stream[:size])
    modulus[0] |= 0x80  # full length
    modulus[-1] |= 0x01  # odd
    return bytes(modulus)


def _capk(index: int, size: int) -> EmvEntry:
    modulus, exponent = _test_modulus(index, size), b"\x03"
    checksum = hashlib.sha1(CUP_RID + bytes([index]) + modulus + exponent).digest()
    return [
        ("9F06", CUP_RID), ("9F22", bytes([index])), ("DF05", b"20301231"),
        ("DF06", b"\x01"), ("DF07", b"\x01"), ("DF02", modulus), ("DF04", exponent), ("DF03", checksum),
    ]


def _aid(aid_hex: str) -> EmvEntry:
    return [
        ("9F06", bytes.fromhex(aid_hex)), ("DF01", b"\x00"), ("9F09", bytes.fromhex("0020")),
        ("DF11", bytes.fromhex("D84000A800")), ("DF12", bytes.fromhex("D84004F800")),
        ("DF13", bytes.fromhex("0010000000")), ("9F1B", bytes.fromhex("00000000")),
        ("DF15", bytes.fromhex("00000000")), ("DF16", b"\x99"), ("DF17", b"\x99"),
        ("DF14", bytes.fromhex("9F3704")), ("DF18", b"\x01"),
    ]


DEFAULT_CAPKS: tuple[EmvEntry, ...] = (_capk(0x08, 144), _capk(0x09, 176), _capk(0x0B, 248))
DEFAULT_AIDS: tuple[EmvEntry, ...] = (_aid("A000000333010101"), _aid("A000000333010102"),
                                     _aid("A000000333010103"))

IDENTIFYING_TAGS = {"capk": ("9F06", "9F22"), "aid": ("9F06",)}


def identity(kind: str, entry: EmvEntry) -> EmvEntry:
    """The tags that name an entry in a query answer / download request."""
    wanted = IDENTIFYING_TAGS[kind]
    return [(tag, value) for tag, value in entry if tag in wanted]


def find_entry(kind: str, entries: tuple[EmvEntry, ...], request: EmvEntry) -> EmvEntry | None:
    asked = {tag: value for tag, value in request if tag in IDENTIFYING_TAGS[kind]}
    for entry in entries:
        if dict(identity(kind, entry)) == asked:
            return entry
    return None
