"""Known-answer vectors and exact errors for posdoctor.iso8583.codec."""

from __future__ import annotations

import pytest

from posdoctor.iso8583.codec import decode_message, encode_message, mac_input, with_mac
from posdoctor.iso8583.errors import DecodeError, EncodeError

SIGN_IN = {
    "t": "0800",
    "11": "000001",
    "41": "10000001",
    "42": "123456789012345",
    "60": "00000001004",
    "63": "001",
}
SIGN_IN_BODY = bytes.fromhex(
    "0800"
    "0020000000C00012"  # bitmap: 11 | 41 42 | 60 63
    "000001"  # 11
    "3130303030303031"  # 41
    "313233343536373839303132333435"  # 42
    "0011" "000000010040"  # 60: LLL BCD 11 digits, trailing 0 nibble
    "0003" "303031"  # 63: LLL, ASCII
)

SALE = {
    "t": "0200",
    "2": "6225881234567890123",
    "3": "000000",
    "4": "000000012345",
    "11": "000042",
    "22": "021",
    "25": "00",
    "35": "6225881234567890123=25121010000",
    "41": "1234567",
    "42": "898310012345",
    "49": "156",
    "52": "1A2B3C4D5E6F7081",
    "53": "2600000000000000",
    "60": "22000001000",
    "64": "0102030405060708",
}
SALE_BODY = bytes.fromhex(
    "0200"
    "7020048020C09811"  # 2 3 4 | 11 | 22 | 25 | 35 | 41 42 | 49 52 53 | 60 64
    "19" "62258812345678901230"  # 2: LL BCD 19 digits, trailing 0 nibble
    "000000"  # 3
    "000000012345"  # 4
    "000042"  # 11
    "0210"  # 22: 021 left-justified
    "00"  # 25
    "31" "6225881234567890123D25121010000" "0"  # 35: '=' is nibble D, pad 0
    "3132333435363720"  # 41 space padded
    "383938333130303132333435202020"  # 42 space padded
    "313536"  # 49
    "1A2B3C4D5E6F7081"  # 52
    "2600000000000000"  # 53
    "0011" "220000010000"  # 60
    "0102030405060708"  # 64
)

SIGN_IN_ANSWER = {
    "t": "0810",
    "11": "000001",
    "12": "103015",
    "13": "0612",
    "32": "4802000",
    "37": "000000000001",
    "39": "00",
    "41": "10000001",
    "42": "123456789012345",
    "60": "00000002004",
    "62": "11" * 24,
}
SIGN_IN_ANSWER_BODY = bytes.fromhex(
    "0810"
    "003800010AC00014"  # 11 12 13 | 32 | 37 39 | 41 42 | 60 62
    "000001" "103015" "0612"
    "07" "04802000"  # 32: LL 7 digits, right-justified with a leading 0
    "303030303030303030303031" "3030"
    "3130303030303031" "313233343536373839303132333435"
    "0011" "000000020040"
    "0024" + "11" * 24  # 62: LLL counts bytes
)


@pytest.mark.parametrize(
    ("msg", "body"),
    [(SIGN_IN, SIGN_IN_BODY), (SALE, SALE_BODY), (SIGN_IN_ANSWER, SIGN_IN_ANSWER_BODY)],
    ids=["0800-sign-in", "0200-sale", "0810-answer"],
)
def test_known_answer(msg: dict[str, str], body: bytes) -> None:
    assert encode_message(msg) == body
    assert decode_message(body) == msg


def test_field_23_is_right_justified() -> None:
    body = bytes.fromhex("0200" "0000020000000000" "0001")
    assert encode_message({"t": "0200", "23": "001"}) == body
    assert decode_message(body) == {"t": "0200", "23": "001"}


def test_merchant_name_in_gbk_round_trips_and_is_padded_to_40_bytes() -> None:
    msg = {"t": "0810", "43": "上海浦东便利店 No.1"}
    body = encode_message(msg)
    name = "上海浦东便利店 No.1".encode("gbk")
    assert body == bytes.fromhex("0810" "0000000000200000") + name + b" " * (40 - len(name))
    assert decode_message(body) == msg


def test_encode_does_not_modify_the_input() -> None:
    msg = dict(SALE)
    encode_message(msg)
    assert msg == SALE


def test_encode_ignores_a_stale_bitmap_key() -> None:
    assert encode_message({**SIGN_IN, "p": "FFFFFFFFFFFFFFFF"}) == SIGN_IN_BODY


def test_decode_accepts_bytearray_and_memoryview() -> None:
    assert decode_message(bytearray(SIGN_IN_BODY)) == SIGN_IN
    assert decode_message(memoryview(SIGN_IN_BODY)) == SIGN_IN


def test_track_accepts_d_as_separator_and_decodes_to_equals() -> None:
    body = encode_message({"t": "0200", "35": "6225881234567890123D25121010000"})
    assert decode_message(body)["35"] == "6225881234567890123=25121010000"


def _patch(body: bytes, pos: int, new: str) -> bytes:
    raw = bytes.fromhex(new)
    return body[:pos] + raw + body[pos + len(raw):]


DECODE_ERRORS = [
    ("mti truncated", SIGN_IN_BODY[:1], "t", 0, "Field data is 1 bytes, expecting 2"),
    ("empty body", b"", "t", 0, "Field data is 0 bytes, expecting 2"),
    ("bitmap truncated", SIGN_IN_BODY[:6], "p", 2, "Field data is 4 bytes, expecting 8"),
    ("field 11 truncated", SIGN_IN_BODY[:12], "11", 10, "Field data is 4 nibbles, expecting 6"),
    ("field 42 truncated", SIGN_IN_BODY[:30], "42", 21, "Field data is 9 bytes, expecting 15"),
    ("field 60 length truncated", SIGN_IN_BODY[:37], "60", 36, "Field length is 1 bytes wide, expecting 2"),
    ("field 60 data truncated", SIGN_IN_BODY[:40], "60", 38, "Field data is 4 nibbles, expecting 11"),
    ("field 63 missing", SIGN_IN_BODY[:44], "63", 44, "Field length is 0 bytes wide, expecting 2"),
    ("bad BCD in MTI", _patch(SIGN_IN_BODY, 0, "08A0"), "t", 1,
     "BCD nibble 'A' at digit 2 is not a decimal digit"),
    ("bad BCD in 11", _patch(SIGN_IN_BODY, 10, "0A"), "11", 10,
     "BCD nibble 'A' at digit 1 is not a decimal digit"),
    ("bad BCD in 60", _patch(SIGN_IN_BODY, 41, "F1"), "60", 41,
     "BCD nibble 'F' at digit 6 is not a decimal digit"),
    ("bad BCD length of 60", _patch(SIGN_IN_BODY, 36, "001A"), "60", 36,
     "Failed to decode field length, invalid BCD data"),
    ("overlong 60", _patch(SIGN_IN_BODY, 36, "0018"), "60", 36,
     "Field data is 18 nibbles, larger than maximum 17"),
    ("overlong 2", _patch(SALE_BODY, 10, "20"), "2", 10, "Field data is 20 nibbles, larger than maximum 19"),
    ("pad nibble of 60 not 0", _patch(SIGN_IN_BODY, 43, "41"), "60", 38,
     "odd-length value of 11 digits has a pad nibble other than 0"),
    ("pad nibble of 22 not 0", _patch(SALE_BODY, 33, "0211"), "22", 33,
     "odd-length value of 3 digits has a pad nibble other than 0"),
    ("bad nibble in track 2", _patch(SALE_BODY, 37, "E2"), "35", 37,
     "BCD nibble 'E' at digit 0 is not a decimal digit"),
    ("non-ASCII in 41", _patch(SIGN_IN_BODY, 13, "FF"), "41", 13, "Failed to decode field, invalid data"),
    ("trailing bytes", SIGN_IN_BODY + b"\x00\x00", "63", 49, "2 extra bytes after the last field"),
    ("secondary bitmap", _patch(SIGN_IN_BODY, 2, "80"), "1", 2,
     "secondary bitmap (bit 1) is not used in the CUP dialect"),
    ("undefined field 5", _patch(SIGN_IN_BODY, 2, "08"), "5", 2,
     "bitmap sets field 5, which the CUP dialect does not define"),
    ("undefined field 45", _patch(SIGN_IN_BODY, 7, "C8"), "45", 2,
     "bitmap sets field 45, which the CUP dialect does not define"),
]


@pytest.mark.parametrize(("body", "field", "pos", "reason"), [c[1:] for c in DECODE_ERRORS],
                         ids=[c[0] for c in DECODE_ERRORS])
def test_decode_errors(body: bytes, field: str, pos: int, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_message(body)
    assert (info.value.field, info.value.pos, info.value.reason) == (field, pos, reason)
    assert str(info.value) == f"field {field} at byte {pos}: {reason}"


def test_decode_error_keeps_the_fields_decoded_before_the_failure() -> None:
    with pytest.raises(DecodeError) as info:
        decode_message(SIGN_IN_BODY[:40])
    assert info.value.partial == {"t": "0800", "11": "000001", "41": "10000001", "42": "123456789012345"}


ENCODE_ERRORS = [
    ("no MTI", {"11": "000001"}, "t", "Field data is required"),
    ("MTI not digits", {"t": "08X0"}, "t", "numeric field holds non-digit characters"),
    ("MTI too long", {"t": "08000"}, "t", "MTI must be 4 digits, got 5"),
    ("MTI too short", {"t": "80"}, "t", "MTI must be 4 digits, got 2"),
    ("11 too short", {"t": "0800", "11": "12345"}, "11", "Field data is 5 nibbles, expecting 6"),
    ("11 hex digit", {"t": "0800", "11": "00000A"}, "11", "numeric field holds non-digit characters"),
    ("11 not str", {"t": "0800", "11": 1}, "11", "value must be str, not int"),
    ("2 overlong", {"t": "0200", "2": "1" * 20}, "2", "Field data is 20 nibbles, larger than maximum 19"),
    ("60 overlong", {"t": "0200", "60": "1" * 18}, "60", "Field data is 18 nibbles, larger than maximum 17"),
    ("41 overlong", {"t": "0800", "41": "123456789"}, "41", "Field data is 9 bytes, expecting 8"),
    ("42 overlong", {"t": "0800", "42": "1" * 16}, "42", "Field data is 16 bytes, expecting 15"),
    ("41 not str", {"t": "0800", "41": 12345678}, "41", "value must be str, not int"),
    ("41 not ASCII", {"t": "0800", "41": "终端"}, "41", "Failed to encode field, invalid data"),
    ("52 not hex", {"t": "0200", "52": "XYZW"}, "52", "Failed to encode field, non-hex data"),
    ("52 short", {"t": "0200", "52": "01020304050607"}, "52", "Field data is 7 bytes, expecting 8"),
    ("35 bad character", {"t": "0200", "35": "1234=56X"}, "35",
     "track data holds characters other than digits and '='"),
    ("43 too long", {"t": "0810", "43": "中" * 21}, "43", "merchant name is 42 bytes in GBK, larger than 40"),
    ("43 outside GBK", {"t": "0810", "43": "shop \U0001F600"}, "43", "merchant name has characters outside GBK"),
    ("undefined field 5", {"t": "0200", "5": "1"}, "5",
     "field not defined in the CUP dialect (fields 2..64 of a primary bitmap)"),
    ("secondary field 70", {"t": "0800", "70": "001"}, "70",
     "field not defined in the CUP dialect (fields 2..64 of a primary bitmap)"),
    ("bitmap extension 65", {"t": "0800", "65": "1"}, "65",
     "bitmap extension fields are not used in the CUP dialect"),
    ("field 200", {"t": "0800", "200": "1"}, "p", "Dictionary contains fields outside of 1-192 range [200]"),
]


@pytest.mark.parametrize(("msg", "field", "reason"), [c[1:] for c in ENCODE_ERRORS],
                         ids=[c[0] for c in ENCODE_ERRORS])
def test_encode_errors(msg: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(EncodeError) as info:
        encode_message(msg)  # type: ignore[arg-type]
    assert (info.value.field, info.value.reason) == (field, reason)
    assert str(info.value) == f"field {field}: {reason}"


def test_mac_input_stops_before_field_64() -> None:
    assert mac_input(SALE_BODY) == SALE_BODY[:-8]
    assert mac_input(SIGN_IN_BODY) == SIGN_IN_BODY


def test_with_mac_replaces_the_last_8_bytes() -> None:
    placeholder = encode_message({**SALE, "64": "0000000000000000"})
    assert with_mac(placeholder, bytes.fromhex("0102030405060708")) == SALE_BODY


MAC_ERRORS = [
    ("short body", lambda: mac_input(b"\x02\x00\x00"), DecodeError, "field p at byte 3: body is 3 bytes, too short "
     "for MTI and bitmap"),
    ("64 set without room", lambda: mac_input(bytes.fromhex("0200" "0000000000000001" "0102")), DecodeError,
     "field 64 at byte 12: bitmap sets field 64 but the body cannot hold its 8 bytes"),
    ("no field 64", lambda: with_mac(SIGN_IN_BODY, bytes(8)), EncodeError,
     "field 64: the message has no field 64 to hold the MAC"),
    ("MAC length", lambda: with_mac(SALE_BODY, bytes(4)), EncodeError, "field 64: MAC is 4 bytes, expecting 8"),
]


@pytest.mark.parametrize(("call", "error", "text"), [c[1:] for c in MAC_ERRORS], ids=[c[0] for c in MAC_ERRORS])
def test_mac_helper_errors(call, error: type[Exception], text: str) -> None:  # noqa: ANN001
    with pytest.raises(error) as info:
        call()
    assert str(info.value) == text


@pytest.mark.parametrize(("msg", "body_hex"), [
    ({"t": "0200", "35": "="}, "0200" "0000000020000000" "01" "D0"),
    ({"t": "0200", "35": ""}, "0200" "0000000020000000" "00"),
    ({"t": "0200", "2": ""}, "0200" "4000000000000000" "00"),
    ({"t": "0800", "63": ""}, "0800" "0000000000000002" "0000"),
])
def test_edge_values(msg: dict[str, str], body_hex: str) -> None:
    assert encode_message(msg) == bytes.fromhex(body_hex)
    assert decode_message(bytes.fromhex(body_hex)) == msg
