"""ISO 9564 format 0 PIN blocks: known answers, exact refusals, round trips."""

from __future__ import annotations

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from posdoctor.crypto.ciphers import Algorithm
from posdoctor.crypto.errors import CryptoError, KeyLengthError, PinBlockError
from posdoctor.crypto.pin import (
    decode_pinblock_iso_0,
    decrypt_pinblock,
    encode_pinblock_iso_0,
    encrypt_pinblock,
)

KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PAN = "4000001234562000"


def _pan_field(pan: str) -> bytes:
    """0000 + the 12 rightmost PAN digits without the check digit, by hand."""
    return bytes.fromhex("0000" + pan[:-1][-12:])


def _masked(field_hex: str, pan: str = PAN) -> bytes:
    """A clear block made from a hand-written PIN field (to craft bad blocks)."""
    field = bytes.fromhex(field_hex)
    return bytes(a ^ b for a, b in zip(field, _pan_field(pan), strict=True))


def _raw_encrypt(alg: Algorithm, block: bytes) -> bytes:
    primitive = TripleDES(KEY + KEY[:8]) if alg is Algorithm.TDES else algorithms.SM4(KEY)
    encryptor = Cipher(primitive, modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


# --- known answers ------------------------------------------------------------------
def test_known_answer_pin_1234() -> None:
    # PIN field 041234FFFFFFFFFF XOR PAN field 0000000123456200 (worked by hand):
    # 04^00 12^00 34^00 FF^01 FF^23 FF^45 FF^62 FF^00 = 04 12 34 FE DC BA 9D FF
    assert _pan_field(PAN) == bytes.fromhex("0000000123456200")
    block = encode_pinblock_iso_0("1234", PAN)
    assert block == bytes.fromhex("041234FEDCBA9DFF")
    assert decode_pinblock_iso_0(block, PAN) == "1234"


@pytest.mark.parametrize(
    ("pin", "pan", "block"),
    [
        ("1234", "5544332211009966", "041277CDDEEFF669"),  # psec's documented example
        ("123456789012", "4000001234562000", "0C1234575BD570FF"),
        ("0000", "6222021234567890123", "040012CBA9876FED"),  # 19-digit PAN
        ("98765", "1234567890123", "0598646BA9876FED"),  # 13-digit PAN
    ],
)
def test_known_answers(pin: str, pan: str, block: str) -> None:
    field = f"{len(pin):02X}{pin}".ljust(16, "F")
    assert _masked(field, pan).hex().upper() == block
    assert encode_pinblock_iso_0(pin, pan).hex().upper() == block
    assert decode_pinblock_iso_0(bytes.fromhex(block), pan) == pin


def test_encrypted_known_answers() -> None:
    clear = bytes.fromhex("041234FEDCBA9DFF")
    tdes = encrypt_pinblock(KEY, "1234", PAN)
    assert tdes == _raw_encrypt(Algorithm.TDES, clear)
    assert tdes.hex().upper() == "778C455FFCBD80FD"
    assert decrypt_pinblock(KEY, tdes, PAN) == "1234"
    sm4 = encrypt_pinblock(KEY, "1234", PAN, Algorithm.SM4)
    assert sm4 == _raw_encrypt(Algorithm.SM4, clear + b"\xff" * 8)
    assert sm4.hex().upper() == "3B80293D424C2BFDF6259ED206341A12"
    assert decrypt_pinblock(KEY, sm4, PAN, Algorithm.SM4) == "1234"


# --- refusals -----------------------------------------------------------------------
PIN_LEN = "PIN必须为4到12位数字 / PIN must be 4 to 12 digits"
PIN_DIGITS = "PIN只能包含数字0-9 / PIN must contain only the digits 0-9"
PAN_LEN = "卡号必须为13到19位数字 / PAN must be 13 to 19 digits"
PAN_DIGITS = "卡号只能包含数字0-9 / PAN must contain only the digits 0-9"


@pytest.mark.parametrize(
    ("pin", "pan", "message", "kind"),
    [
        ("123", PAN, PIN_LEN, "pin"),
        ("", PAN, PIN_LEN, "pin"),
        ("1234567890123", PAN, PIN_LEN, "pin"),
        ("12a4", PAN, PIN_DIGITS, "pin"),
        ("12 34", PAN, PIN_DIGITS, "pin"),
        ("\u0661\u0662\u0663\u0664", PAN, PIN_DIGITS, "pin"),  # Arabic-Indic digits
        ("1234", "400000123456", PAN_LEN, "pan"),
        ("1234", "40000012345620001234", PAN_LEN, "pan"),
        ("1234", "400000123456200X", PAN_DIGITS, "pan"),
        ("1234", "", PAN_LEN, "pan"),
    ],
)
def test_encode_refusals(pin: str, pan: str, message: str, kind: str) -> None:
    with pytest.raises(PinBlockError) as info:
        encode_pinblock_iso_0(pin, pan)
    assert str(info.value) == message
    assert info.value.kind == kind
    assert info.value.reason == message.split(" / ")[1]


@pytest.mark.parametrize(
    ("block", "pan", "message", "kind"),
    [
        (bytes(7), PAN, "PIN块必须为8字节 / PIN block must be 8 bytes", "length"),
        (bytes(16), PAN, "PIN块必须为8字节 / PIN block must be 8 bytes", "length"),
        (bytes(8), "123", PAN_LEN, "pan"),
        (_masked("041234FFFFFFFFFE"),
         PAN, "PIN块填充位不全是F / PIN block padding is not all F nibbles", "format"),
        (_masked("0412340FFFFFFFFF"),
         PAN, "PIN块填充位不全是F / PIN block padding is not all F nibbles", "format"),
        (_masked("141234FFFFFFFFFF"), PAN,
         "不是ISO 9564格式0的PIN块: 控制位不是0 / "
         "not an ISO 9564 format 0 PIN block: control nibble is not 0", "format"),
        (_masked("03123FFFFFFFFFFF"), PAN,
         "PIN块中的PIN长度不在4到12之间 / PIN length nibble is outside 4..12", "format"),
        (_masked("0D1234567890123F"), PAN,
         "PIN块中的PIN长度不在4到12之间 / PIN length nibble is outside 4..12", "format"),
        (_masked("04123AFFFFFFFFFF"), PAN,
         "PIN块中的PIN不是十进制数字 / PIN digits in the block are not decimal", "format"),
    ],
)
def test_decode_refusals(block: bytes, pan: str, message: str, kind: str) -> None:
    with pytest.raises(PinBlockError) as info:
        decode_pinblock_iso_0(block, pan)
    assert str(info.value) == message
    assert info.value.kind == kind
    # psec's ValueError (which quotes block nibbles) is never chained into the traceback
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_refusals_never_echo_secrets() -> None:
    pan = "6222021234567890"
    for bad_block in (_masked("04987AFFFFFFFFFF", pan), _masked("049876FFFFFFFF12", pan)):
        with pytest.raises(PinBlockError) as info:
            decode_pinblock_iso_0(bad_block, pan)
        text = str(info.value)
        assert "987" not in text and pan[-8:] not in text and bad_block.hex() not in text.lower()
    with pytest.raises(PinBlockError) as pin_info:
        encode_pinblock_iso_0("55555555555555", pan)
    assert "5555" not in str(pin_info.value)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: decrypt_pinblock(KEY, bytes(16), PAN), PinBlockError,
         "PIN块必须为8字节 / PIN block must be 8 bytes"),
        (lambda: decrypt_pinblock(KEY, bytes(8), PAN, Algorithm.SM4), PinBlockError,
         "PIN块必须为16字节 / PIN block must be 16 bytes"),
        (lambda: decrypt_pinblock(KEY, _raw_encrypt(Algorithm.SM4, bytes(16)), PAN, Algorithm.SM4),
         PinBlockError, "SM4 PIN块的填充不是8个FF字节 / SM4 PIN block filler is not eight FF bytes"),
        (lambda: decrypt_pinblock(KEY, bytes(8), "12"), PinBlockError, PAN_LEN),
        (lambda: encrypt_pinblock(bytes(5), "1234", PAN), KeyLengthError,
         "密钥长度5字节不合法(允许: 8, 16, 24) / key length 5 bytes is not allowed (allowed: 8, 16, 24)"),
        (lambda: encrypt_pinblock(KEY, "12", PAN), PinBlockError, PIN_LEN),
    ],
)
def test_encrypted_refusals(call, error: type[CryptoError], message: str) -> None:
    with pytest.raises(error) as info:
        call()
    assert type(info.value) is error
    assert str(info.value) == message


def test_wrong_pik_is_a_format_refusal() -> None:
    block = encrypt_pinblock(KEY, "1234", PAN)
    other = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    with pytest.raises(PinBlockError) as info:
        decrypt_pinblock(other, block, PAN)
    assert info.value.kind == "format"


# --- round trips --------------------------------------------------------------------
pins = st.text(alphabet="0123456789", min_size=4, max_size=12)
pans = st.text(alphabet="0123456789", min_size=13, max_size=19)


@settings(max_examples=150, deadline=None)
@given(pin=pins, pan=pans)
def test_encode_decode_round_trip(pin: str, pan: str) -> None:
    block = encode_pinblock_iso_0(pin, pan)
    assert len(block) == 8
    assert block == _masked(f"{len(pin):02X}{pin}".ljust(16, "F"), pan)
    assert decode_pinblock_iso_0(block, pan) == pin


@settings(max_examples=60, deadline=None)
@given(pin=pins, pan=pans, alg=st.sampled_from(Algorithm), key=st.binary(min_size=16, max_size=16))
def test_encrypt_decrypt_round_trip(pin: str, pan: str, alg: Algorithm, key: bytes) -> None:
    block = encrypt_pinblock(key, pin, pan, alg)
    assert len(block) == alg.block_size
    assert decrypt_pinblock(key, block, pan, alg) == pin


@settings(max_examples=100, deadline=None)
@given(block=st.binary(min_size=8, max_size=8), pan=pans)
def test_decode_untrusted_blocks_raises_only_pin_block_error(block: bytes, pan: str) -> None:
    try:
        pin = decode_pinblock_iso_0(block, pan)
    except PinBlockError as exc:
        assert exc.kind == "format"
    else:
        assert encode_pinblock_iso_0(pin, pan) == block
