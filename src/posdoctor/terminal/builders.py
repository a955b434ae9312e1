"""Request builders: pure functions from what the terminal knows to a message dict.

Messages are pyiso8583-style dicts (``"t"`` + field strings, binary fields as uppercase
hex). Field 64 is added by the transport (a placeholder replaced by the MAC). Layouts
follow the reference (``cup8583.md`` sections 3-5) and posdoctor's wire formats.
"""

from __future__ import annotations

from dataclasses import dataclass

from posdoctor.iso8583.fields import (
    BatchItem,
    Field60,
    SecurityControl,
    SettlementTotals,
    encode_batch_end,
    encode_batch_items,
    encode_device_info,
    encode_tlv,
)
from posdoctor.terminal.card import Card

__all__ = [
    "Ident", "Msg", "tmk_download", "sign_in", "sign_off", "echo", "management", "emv_query", "emv_entry",
    "balance", "sale", "void", "refund", "reversal", "settlement", "batch_upload", "batch_upload_end",
    "status_upload", "CardData", "REVERSAL_DROPPED_FIELDS", "TXN_TYPES",
]

Msg = dict[str, str]

CURRENCY_CNY = "156"
PIN_CAPTURE_MAX = "12"
READ_CAPABILITY_IC = "5"
REVERSAL_DROPPED_FIELDS = ("35", "36", "52", "26", "53", "64")
"""The 0400 copies the original minus tracks, PIN data and the MAC (reference section 5)."""
TXN_TYPES = {"balance": "01", "sale": "22", "void": "23", "refund": "25"}
"""60.1 per transaction kind."""


@dataclass(frozen=True, slots=True)
class Ident:
    """Who is sending: terminal, merchant, current batch."""

    tid: str
    mid: str
    batch: str


@dataclass(frozen=True, slots=True)
class CardData:
    """A card as read, with the PIN block when a PIN was entered (hex, encrypted)."""

    card: Card
    pin_block: str | None = None
    security: SecurityControl | None = None
    icc: bytes | None = None


def _f60(txn_type: str, batch: str, nmi: str, *, financial: bool = False) -> str:
    if financial:
        return Field60(txn_type, batch, nmi, read_cap=READ_CAPABILITY_IC, ic_cond="0").encode()
    return Field60(txn_type, batch, nmi).encode()


def management(mti: str, nmi: str, stan: str, ident: Ident, *, batch: str | None = None) -> Msg:
    """0800/0820 skeleton: 11, 41, 42, 60 (00 + batch + network management code)."""
    return {"t": mti, "11": stan, "41": ident.tid, "42": ident.mid,
            "60": _f60("00", batch if batch is not None else ident.batch, nmi)}


# --- lifecycle --------------------------------------------------------------------------

def tmk_download(stan: str, ident: Ident, device_info: dict[str, str]) -> Msg:
    """0800/401: 60.2 = 000000, 62 = device information; 41/42 when the terminal knows them."""
    msg: Msg = {"t": "0800", "11": stan, "60": _f60("00", "000000", "401"),
                "62": encode_device_info(device_info).hex().upper()}
    if ident.tid:
        msg["41"] = ident.tid
    if ident.mid:
        msg["42"] = ident.mid
    return msg


def sign_in(stan: str, ident: Ident, nmi: str, operator: str, device_info: dict[str, str] | None) -> Msg:
    """0800 with 60.3 001/003/004/006 and 63 = 3-character operator number."""
    msg = management("0800", nmi, stan, ident)
    msg["63"] = operator.rjust(3, "0")[:3]
    if device_info:
        msg["62"] = encode_device_info(device_info).hex().upper()
    return msg


def sign_off(stan: str, ident: Ident) -> Msg:
    return management("0820", "002", stan, ident)


def echo(stan: str, ident: Ident) -> Msg:
    return management("0820", "301", stan, ident)


def emv_query(nmi: str, stan: str, ident: Ident, received: int) -> Msg:
    """0820/372 (CAPK) or 382 (AID): 62 = '1' + how many entries the terminal already has."""
    msg = management("0820", nmi, stan, ident)
    msg["62"] = f"1{received:02d}".encode("ascii").hex().upper()
    return msg


def emv_entry(nmi: str, stan: str, ident: Ident, identity: list[tuple[str, bytes]]) -> Msg:
    """0800/370 (CAPK) or 380 (AID): 62 = the TLV naming the entry wanted."""
    msg = management("0800", nmi, stan, ident)
    msg["62"] = encode_tlv(identity, field="62").hex().upper()
    return msg


def status_upload(stan: str, ident: Ident, tags: bytes) -> Msg:
    msg = management("0820", "362", stan, ident)
    msg["62"] = tags.hex().upper()
    return msg


# --- money ------------------------------------------------------------------------------

def _entry_mode(data: CardData) -> str:
    return ("05" if data.card.chip else "02") + ("1" if data.pin_block else "2")


def _card_fields(data: CardData) -> Msg:
    card = data.card
    fields: Msg = {"2": card.pan, "14": card.expiry, "22": _entry_mode(data), "35": card.track2}
    if card.chip:
        fields["23"] = card.sequence
    if data.pin_block:
        fields.update({"26": PIN_CAPTURE_MAX, "52": data.pin_block})
    if data.security is not None:
        fields["53"] = data.security.encode()
    if data.icc:
        fields["55"] = data.icc.hex().upper()
    return fields


def _financial(mti: str, processing: str, kind: str, stan: str, ident: Ident) -> Msg:
    return {"t": mti, "3": processing, "11": stan, "25": "00", "41": ident.tid, "42": ident.mid,
            "49": CURRENCY_CNY, "60": _f60(TXN_TYPES[kind], ident.batch, "000", financial=True)}


def balance(stan: str, ident: Ident, data: CardData) -> Msg:
    return {**_financial("0200", "310000", "balance", stan, ident), **_card_fields(data)}


def sale(stan: str, ident: Ident, data: CardData, amount: int) -> Msg:
    return {**_financial("0200", "000000", "sale", stan, ident), **_card_fields(data), "4": f"{amount:012d}"}


def void(stan: str, ident: Ident, *, pan: str, amount: int, orig_batch: int, orig_stan: str,
         orig_rrn: str | None, orig_auth: str | None, data: CardData | None = None) -> Msg:
    """0200/200000 (60.1 23): the original by 61 (batch + STAN) and 37/38."""
    msg = _financial("0200", "200000", "void", stan, ident)
    msg.update({"2": pan, "4": f"{amount:012d}", "22": "012", "61": f"{orig_batch:06d}{orig_stan}"})
    if data is not None:
        msg.update(_card_fields(data))
    if orig_rrn:
        msg["37"] = orig_rrn
    if orig_auth:
        msg["38"] = orig_auth
    return msg


def refund(stan: str, ident: Ident, data: CardData, amount: int, *, orig_rrn: str,
           orig_batch: int = 0, orig_stan: str = "000000", orig_date: str = "0000") -> Msg:
    """0220/200000 (60.1 25): 37 = original RRN, 61 = original batch + STAN + date."""
    msg = {**_financial("0220", "200000", "refund", stan, ident), **_card_fields(data)}
    msg.update({"4": f"{amount:012d}", "37": orig_rrn, "61": f"{orig_batch:06d}{orig_stan}{orig_date}"})
    return msg


def reversal(original: Msg, reason: str) -> Msg:
    """0400: the original minus tracks/PIN/MAC (same 3, 4, 11, 60), 39 = reason."""
    msg = {k: v for k, v in original.items() if k not in REVERSAL_DROPPED_FIELDS}
    msg["t"] = "0400"
    if msg.get("22", "")[2:] == "1":
        msg["22"] = msg["22"][:2] + "2"  # the PIN is not resent
    msg["39"] = reason
    return msg


# --- end of day -----------------------------------------------------------------------

def settlement(stan: str, ident: Ident, totals: SettlementTotals, operator: str) -> Msg:
    msg = management("0500", "201", stan, ident)
    msg.update({"48": totals.encode(), "49": CURRENCY_CNY, "63": operator.rjust(3, "0")[:3]})
    return msg


def batch_upload(stan: str, ident: Ident, items: list[BatchItem]) -> Msg:
    msg = management("0320", "201", stan, ident)
    msg["48"] = encode_batch_items(items)
    return msg


def batch_upload_end(stan: str, ident: Ident, count: int) -> Msg:
    msg = management("0320", "202", stan, ident)
    msg["48"] = encode_batch_end(count)
    return msg
