"""Request builders: the fields a CUP host expects, and reversal copies."""

from __future__ import annotations

from posdoctor.iso8583.codec import decode_message, encode_message
from posdoctor.iso8583.fields import Field60, SecurityControl, decode_device_info
from posdoctor.iso8583.routing import route_key
from posdoctor.terminal import builders
from posdoctor.terminal.builders import CardData, Ident
from posdoctor.terminal.card import Card

IDENT = Ident("20000001", "898100000000002", "000007")
CARD = Card("6222021234567890123", expiry="2812")
PINNED = CardData(CARD, "00112233445566FF", SecurityControl())


def round_trip(msg: dict[str, str]) -> dict[str, str]:
    decoded = decode_message(encode_message(msg))
    assert decoded == msg
    return decoded


def test_sale_carries_card_pin_and_field_60() -> None:
    msg = round_trip(builders.sale("000042", IDENT, PINNED, 1234))
    assert route_key(msg) == "0200.000000.00.22"
    assert msg["4"] == "000000001234" and msg["22"] == "021" and msg["26"] == "12"
    assert msg["35"] == "6222021234567890123=28122010000000"
    assert msg["53"] == "2600000000000000"
    f60 = Field60.decode(msg["60"])
    assert (f60.txn_type, f60.batch, f60.nmi, f60.read_cap) == ("22", "000007", "000", "5")


def test_chip_card_without_pin() -> None:
    chip = CardData(Card("6222021234567890123", chip=True), icc=b"\x9f\x26\x01\x00")
    msg = round_trip(builders.balance("000001", IDENT, chip))
    assert msg["22"] == "052" and msg["23"] == "001" and msg["55"] == "9F260100"
    assert "52" not in msg and "26" not in msg and route_key(msg) == "0200.310000.00.01"


def test_void_points_at_the_original() -> None:
    msg = round_trip(builders.void("000050", IDENT, pan=CARD.pan, amount=1234, orig_batch=7, orig_stan="000042",
                                   orig_rrn="123456789012", orig_auth="654321"))
    assert route_key(msg) == "0200.200000.00.23"
    assert (msg["61"], msg["37"], msg["38"], msg["4"]) == ("000007000042", "123456789012", "654321", "000000001234")


def test_refund_is_0220_with_rrn_and_original_reference() -> None:
    msg = round_trip(builders.refund("000051", IDENT, PINNED, 500, orig_rrn="123456789012", orig_batch=7,
                                     orig_stan="000042", orig_date="0501"))
    assert route_key(msg) == "0220.200000.00.25"
    assert msg["61"] == "0000070000420501"


def test_reversal_drops_tracks_pin_and_mac_and_keeps_identity() -> None:
    sale = {**builders.sale("000042", IDENT, PINNED, 1234), "64": "0" * 16}
    rev = builders.reversal(sale, "98")
    assert rev["t"] == "0400" and rev["39"] == "98"
    for gone in ("35", "36", "52", "26", "53", "64"):
        assert gone not in rev
    for kept in ("2", "3", "4", "11", "41", "42", "60"):
        assert rev[kept] == sale[kept]
    assert rev["22"] == "022"
    assert route_key(round_trip(rev)) == "0400.000000.00.22"


def test_sign_in_has_operator_and_optional_device_info() -> None:
    msg = round_trip(builders.sign_in("000001", IDENT, "004", "01", {"SN": "EMU1", "MD": "X"}))
    assert route_key(msg) == "0800.004" and msg["63"] == "001"
    assert decode_device_info(bytes.fromhex(msg["62"])) == {"SN": "EMU1", "MD": "X"}
    assert "62" not in builders.sign_in("000001", IDENT, "001", "01", None)


def test_tmk_download_uses_batch_zero() -> None:
    msg = round_trip(builders.tmk_download("000001", IDENT, {"SN": "EMU1"}))
    assert msg["60"] == "00000000401" and route_key(msg) == "0800.401"
