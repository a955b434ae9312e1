"""Key blocks, parameter tag lists, device info and BER-TLV: known answers and exact errors."""

from __future__ import annotations

import pytest

from posdoctor.iso8583.errors import DecodeError, EncodeError
from posdoctor.iso8583.fields import (
    STATUS_TAGS,
    WorkingKeyBlock,
    decode_device_info,
    decode_emv_list,
    decode_key_block,
    decode_param_tags,
    decode_tlv,
    encode_device_info,
    encode_emv_list,
    encode_key_block,
    encode_param_tags,
    encode_tlv,
)

PIK16, MAK16, TDK16 = bytes(range(16)), bytes(range(16, 32)), bytes(range(32, 48))
CV1, CV2, CV3 = b"\xA1\xA2\xA3\xA4", b"\xB1\xB2\xB3\xB4", b"\xC1\xC2\xC3\xC4"


def test_key_block_004() -> None:
    block = encode_key_block([(PIK16, CV1), (MAK16, CV2), (TDK16, CV3)])
    assert block == PIK16 + CV1 + MAK16 + CV2 + TDK16 + CV3
    assert len(block) == 60
    assert decode_key_block("004", block) == WorkingKeyBlock(PIK16, CV1, MAK16, CV2, TDK16, CV3)


def test_key_block_003_with_single_length_mak() -> None:
    mak8 = bytes.fromhex("0102030405060708")
    block = encode_key_block([(PIK16, CV1), (mak8, CV2)])
    assert block == PIK16 + CV1 + mak8 + bytes(8) + CV2
    assert decode_key_block("003", block) == WorkingKeyBlock(PIK16, CV1, mak8, CV2)


def test_key_block_001_with_and_without_tdk() -> None:
    pik, mak, tdk = PIK16[:8], MAK16[:8], TDK16[:8]
    two = encode_key_block([(pik, CV1), (mak, CV2)])
    assert two == pik + CV1 + mak + CV2
    assert decode_key_block("001", two) == WorkingKeyBlock(pik, CV1, mak, CV2)
    three = encode_key_block([(pik, CV1), (mak, CV2), (tdk, CV3)])
    assert decode_key_block("001", three).tdk == tdk


def test_key_block_006_sm4_keeps_16_byte_keys_even_with_zero_half() -> None:
    sm4_mak = bytes(range(8)) + bytes(8)
    block = encode_key_block([(PIK16, CV1), (sm4_mak, CV2)])
    assert decode_key_block("006", block) == WorkingKeyBlock(PIK16, CV1, sm4_mak, CV2)


PARAMS = {"12": "60", "13": "3", "18": "1", "19": "10", "20": "0", "21": "1", "22": "测试商户ABC",
          "23": "3", "25": "01", "26": "11110000"}


def test_param_tags_known_answer() -> None:
    name = "测试商户ABC".encode("gbk")
    expected = (b"1260" b"133" b"181" b"1910" b"200" b"211" b"22" + name + b" " * (40 - len(name))
                + b"233" b"2501" b"2611110000")
    assert encode_param_tags(PARAMS) == expected
    assert decode_param_tags(expected) == PARAMS


def test_param_numeric_values_are_zero_filled_and_status_table_works() -> None:
    assert encode_param_tags({"12": "5", "91": "8583"}) == b"1205" b"9108583"
    status = encode_param_tags({"01": "SN123", "05": "00000100"}, STATUS_TAGS)
    assert status == b"01SN123" + b" " * 15 + b"0500000100"
    assert decode_param_tags(status, STATUS_TAGS) == {"01": "SN123", "05": "00000100"}


def test_device_info_known_answer() -> None:
    info = {"SN": "N5A0012345", "MD": "N5", "AV": "1.2.3", "FV": "FW9"}
    wire = b"SN10N5A0012345" b"MD02N5" b"AV051.2.3" b"FV03FW9"
    assert encode_device_info(info) == wire
    assert decode_device_info(wire) == info
    assert decode_device_info(b"") == {}


def test_tlv_known_answers() -> None:
    assert encode_tlv([("9F06", bytes.fromhex("A000000333")), ("9F22", b"\x01")]) == bytes.fromhex(
        "9F0605A000000333" "9F220101")
    long_value = bytes(200)
    assert encode_tlv([("DF02", long_value)]) == bytes.fromhex("DF0281C8") + long_value
    very_long = bytes(300)
    assert encode_tlv([("DF02", very_long)]) == bytes.fromhex("DF0282012C") + very_long
    assert decode_tlv(bytes.fromhex("DF02820012") + bytes(18)) == [("DF02", bytes(18))]
    assert decode_tlv(bytes.fromhex("9F0605A000000333" "5A00")) == [("9F06", bytes.fromhex("A000000333")),
                                                                    ("5A", b"")]
    assert decode_tlv(bytes.fromhex("DF810102ABCD")) == [("DF8101", bytes.fromhex("ABCD"))]
    assert decode_tlv(bytes.fromhex("9f0601ff")) == [("9F06", b"\xff")]


def test_emv_list_known_answer() -> None:
    items = [("9F06", bytes.fromhex("A000000333")), ("9F22", b"\x02")]
    wire = encode_emv_list("2", items)
    assert wire == b"2" + bytes.fromhex("9F0605A000000333" "9F220102")
    assert decode_emv_list(wire) == ("2", items)
    assert decode_emv_list(b"0") == ("0", [])


DECODE_ERRORS = [
    ("key block unknown nmi", lambda: decode_key_block("002", bytes(40)), "62", 0,
     "60.3 '002' has no working key layout (known: 001, 003, 004, 006)"),
    ("key block 004 short", lambda: decode_key_block("004", bytes(40)), "62", 40,
     "key block for 60.3 004 is 40 bytes, expecting 60"),
    ("key block 001 size", lambda: decode_key_block("001", bytes(30)), "62", 30,
     "key block for 60.3 001 is 30 bytes, expecting 24 or 36"),
    ("param unknown tag", lambda: decode_param_tags(b"1260" b"77x"), "62", 4,
     "unknown parameter tag '77': its length is not known"),
    ("param truncated tag", lambda: decode_param_tags(b"12601"), "62", 4, "truncated parameter tag"),
    ("param truncated value", lambda: decode_param_tags(b"1260" b"2611"), "62", 6,
     "tag 26 needs 8 bytes, only 2 left"),
    ("param not digits", lambda: decode_param_tags(b"12A0"), "62", 2, "tag 12 value 'A0' is not digits"),
    ("param duplicate", lambda: decode_param_tags(b"1260" b"1230"), "62", 4, "tag 12 appears twice"),
    ("param bad gbk", lambda: decode_param_tags(b"22" + b"\x81" + b" " * 39), "62", 2,
     "tag 22 value is not valid gbk text"),
    ("param bad ascii", lambda: decode_param_tags(b"90" + b"\xff" * 40), "62", 2,
     "tag 90 value is not valid ans text"),
    ("device truncated head", lambda: decode_device_info(b"SN0"), "62", 0, "truncated device info tag and length"),
    ("device bad tag", lambda: decode_device_info(b"s100"), "62", 0, "device info tag 's1' is not 2 uppercase letters"),
    ("device bad length", lambda: decode_device_info(b"SNx1A"), "62", 2, "device info SN length 'x1' is not 2 digits"),
    ("device truncated value", lambda: decode_device_info(b"SN05ABC"), "62", 4,
     "device info SN announces 5 bytes, only 3 left"),
    ("device not printable", lambda: decode_device_info(b"SN02A\n"), "62", 4, "device info SN is not printable ASCII"),
    ("device duplicate", lambda: decode_device_info(b"SN01A" b"SN01B"), "62", 5, "device info tag SN appears twice"),
    ("tlv tag truncated", lambda: decode_tlv(bytes.fromhex("9F")), "55", 0, "TLV tag runs past the end of the data"),
    ("tlv tag continuation truncated", lambda: decode_tlv(bytes.fromhex("DF81")), "55", 0,
     "TLV tag runs past the end of the data"),
    ("tlv no length", lambda: decode_tlv(bytes.fromhex("9F06")), "55", 2, "TLV 9F06 has no length byte"),
    ("tlv value truncated", lambda: decode_tlv(bytes.fromhex("9F0605A0000003")), "55", 3,
     "TLV 9F06 announces 5 bytes, only 4 left"),
    ("tlv indefinite", lambda: decode_tlv(bytes.fromhex("708000")), "55", 1, "TLV 70 uses the indefinite length form"),
    ("tlv 0x83 form", lambda: decode_tlv(bytes.fromhex("7083000001")), "55", 1,
     "TLV 70 length form 0x83 is not supported (0x81, 0x82 only)"),
    ("tlv long length truncated", lambda: decode_tlv(bytes.fromhex("708201")), "55", 1,
     "TLV 70 length needs 2 more bytes"),
    ("tlv second item truncated", lambda: decode_tlv(bytes.fromhex("5A01FF" "9F2702")), "55", 6,
     "TLV 9F27 announces 2 bytes, only 0 left"),
    ("tlv field name", lambda: decode_tlv(bytes.fromhex("9F"), field="62"), "62", 0,
     "TLV tag runs past the end of the data"),
    ("emv list empty", lambda: decode_emv_list(b""), "62", 0, "empty list: the status character is missing"),
    ("emv list status", lambda: decode_emv_list(b"9"), "62", 0, "list status '9' is not one of 0, 1, 2, 3"),
    ("emv list bad tlv", lambda: decode_emv_list(b"1" + bytes.fromhex("9F0605A0")), "62", 4,
     "TLV 9F06 announces 5 bytes, only 1 left"),
    ("not bytes", lambda: decode_tlv("9F0600"), "55", 0, "value must be bytes, not str"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("call", "field", "pos", "reason"), [c[1:] for c in DECODE_ERRORS],
                         ids=[c[0] for c in DECODE_ERRORS])
def test_decode_errors(call, field: str, pos: int, reason: str) -> None:  # noqa: ANN001
    with pytest.raises(DecodeError) as info:
        call()
    assert (info.value.field, info.value.pos, info.value.reason) == (field, pos, reason)


ENCODE_ERRORS = [
    ("key block one key", lambda: encode_key_block([(PIK16, CV1)]), "62", "a key block holds 2 or 3 keys, got 1"),
    ("key block key length", lambda: encode_key_block([(PIK16, CV1), (bytes(24), CV2)]), "62",
     "key 2 is 24 bytes, expecting 8 or 16"),
    ("key block cv length", lambda: encode_key_block([(PIK16, CV1), (MAK16, b"\x00" * 8)]), "62",
     "check value 2 is 8 bytes, expecting 4"),
    ("param unknown", lambda: encode_param_tags({"99": "1"}), "62", "parameter tag '99' is not in the tag table"),
    ("param too long", lambda: encode_param_tags({"13": "12"}), "62", "tag 13 value is 2 bytes, larger than 1"),
    ("param not digits", lambda: encode_param_tags({"12": "6O"}), "62", "tag 12 must hold digits, got '6O'"),
    ("param gbk too long", lambda: encode_param_tags({"22": "商" * 21}), "62", "tag 22 value is 42 bytes, larger than 40"),
    ("param not ascii", lambda: encode_param_tags({"90": "主机"}), "62", "tag 90 holds characters outside ans"),
    ("device bad tag", lambda: encode_device_info({"sn": "1"}), "62", "device info tag 'sn' must be 2 uppercase letters"),
    ("device long", lambda: encode_device_info({"SN": "1" * 100}), "62", "device info SN is 100 characters, larger than 99"),
    ("device not ascii", lambda: encode_device_info({"MD": "新大陆"}), "62", "device info MD must be printable ASCII"),
    ("tlv bad tag hex", lambda: encode_tlv([("9G06", b"")]), "55", "TLV tag '9G06' is not hex bytes"),
    ("tlv empty tag", lambda: encode_tlv([("", b"")]), "55", "TLV tag '' is not hex bytes"),
    ("tlv unfinished tag", lambda: encode_tlv([("9F", b"")]), "55", "TLV tag 9F is not a well-formed BER tag"),
    ("tlv overlong tag", lambda: encode_tlv([("5A01", b"")]), "55", "TLV tag 5A01 is not a well-formed BER tag"),
    ("tlv value type", lambda: encode_tlv([("5A", "123")]), "55", "TLV 5A value must be bytes, not str"),
    ("tlv too long", lambda: encode_tlv([("70", bytes(70000))], field="62"), "62",
     "TLV 70 value is 70000 bytes, larger than 65535"),
    ("emv list status", lambda: encode_emv_list("4", []), "62", "list status '4' is not one of 0, 1, 2, 3"),
]


@pytest.mark.parametrize(("call", "field", "reason"), [c[1:] for c in ENCODE_ERRORS],
                         ids=[c[0] for c in ENCODE_ERRORS])
def test_encode_errors(call, field: str, reason: str) -> None:  # noqa: ANN001
    with pytest.raises(EncodeError) as info:
        call()
    assert (info.value.field, info.value.reason) == (field, reason)
