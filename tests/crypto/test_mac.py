"""CUP ECB and X9.19 MACs: hand-computed and pinned known answers, refusals, properties."""

from __future__ import annotations

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from posdoctor.crypto.ciphers import Algorithm, EcbCipher
from posdoctor.crypto.errors import CryptoError, KeyAlgorithmError, KeyLengthError, MacError
from posdoctor.crypto.mac import (
    cup_ecb_mac_with,
    generate_mac,
    generate_mac_cup_ecb,
    generate_mac_x919,
    verify_mac,
    xor_fold,
)

KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
# a sale-like MAC input: MTI, bitmap and some fields (content does not matter to the MAC)
BODY = bytes.fromhex(
    "0200702406C020C09A1116622588012345678900000000000000010000001230210012"
    "0000123456783132333435363738313233343536373839303132333435313536"
)
NOW_IS = b"Now is the time for all "


# --- independent implementations, written step by step from the reference -----------
def _raw_encrypt(alg: Algorithm, key: bytes, block: bytes) -> bytes:
    primitive = TripleDES(key + key[:8]) if alg is Algorithm.TDES else algorithms.SM4(key)
    encryptor = Cipher(primitive, modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _cup_ecb_by_hand(alg: Algorithm, key: bytes, data: bytes) -> bytes:
    size = 8 if alg is Algorithm.TDES else 16
    padded = data + b"\x00" * (-len(data) % size)  # step 1
    r = bytes(size)
    for i in range(0, len(padded), size):  # step 2
        r = _xor(r, padded[i : i + size])
    hex_r = "".join(f"{b:02X}" for b in r).encode()  # step 3
    low, high = hex_r[:size], hex_r[size:]
    e1 = _raw_encrypt(alg, key, low)  # step 4
    e2 = _raw_encrypt(alg, key, _xor(e1, high))
    return "".join(f"{b:02X}" for b in e2)[:8].encode()  # step 5


def _single_des(key8: bytes, block: bytes, decrypt: bool = False) -> bytes:
    cipher = Cipher(TripleDES(key8 * 3), modes.ECB())
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(block) + ctx.finalize()


def _x919_by_hand(key: bytes, data: bytes) -> bytes:
    k1, k2 = key[:8], key[-8:]
    padded = data + b"\x00" * (-len(data) % 8) if data else bytes(8)
    chain = bytes(8)
    for i in range(0, len(padded), 8):
        chain = _single_des(k1, _xor(chain, padded[i : i + 8]))
    return _single_des(k1, _single_des(k2, chain, decrypt=True))


# --- CUP ECB ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (BODY, b"1CA63620"),
        (NOW_IS, b"F5BE6DD0"),
        (b"", b"423EADC4"),
        (bytes(8), b"423EADC4"),  # zero padding: empty and one zero block agree
        (b"12345678", b"DA5FB9ED"),
    ],
)
def test_cup_ecb_tdes_known_answers(data: bytes, expected: bytes) -> None:
    assert _cup_ecb_by_hand(Algorithm.TDES, KEY, data) == expected
    assert generate_mac_cup_ecb(KEY, data) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [(BODY, b"F0220062"), (NOW_IS, b"F85ED0A9"), (b"", b"961360EF")],
)
def test_cup_ecb_sm4_known_answers(data: bytes, expected: bytes) -> None:
    assert _cup_ecb_by_hand(Algorithm.SM4, KEY, data) == expected
    assert generate_mac_cup_ecb(KEY, data, Algorithm.SM4) == expected


def test_cup_ecb_single_length_mak() -> None:
    single = KEY[:8]
    expected = _cup_ecb_by_hand(Algorithm.TDES, single + single, BODY)
    assert generate_mac_cup_ecb(single, BODY) == expected == b"C0B33147"


def test_cup_ecb_is_uppercase_hex_ascii() -> None:
    mac = generate_mac_cup_ecb(KEY, BODY)
    assert len(mac) == 8 and mac.decode("ascii") == mac.decode("ascii").upper()
    bytes.fromhex(mac.decode("ascii"))


def test_xor_fold() -> None:
    assert xor_fold(bytes.fromhex("0102030405060708" "1111111111111111"), 8) == bytes.fromhex("1013121514171619")
    assert xor_fold(bytes.fromhex("FF"), 8) == bytes.fromhex("FF00000000000000")
    assert xor_fold(b"", 16) == bytes(16)


def test_cup_ecb_with_a_reused_cipher() -> None:
    cipher = EcbCipher(Algorithm.TDES, KEY)
    assert [cup_ecb_mac_with(cipher, BODY) for _ in range(3)] == [b"1CA63620"] * 3


# --- X9.19 ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "data", "expected"),
    [
        # ANSI X9.9 DES CBC-MAC example (single-length key)
        ("0123456789ABCDEF", NOW_IS, "70A30640CC76DD8B"),
        # ANSI X9.19 retail MAC with K1 = 0123456789ABCDEF, K2 = FEDCBA9876543210
        ("0123456789ABCDEFFEDCBA9876543210", NOW_IS, "A1C72E74EA3FA9B6"),
        ("0123456789ABCDEFFEDCBA9876543210", BODY, "E7B1B8A50C193E4B"),
        ("0123456789ABCDEFFEDCBA9876543210", b"\x01", "F59AA94707944F71"),
    ],
)
def test_x919_known_answers(key: str, data: bytes, expected: str) -> None:
    k = bytes.fromhex(key)
    assert _x919_by_hand(k, data).hex().upper() == expected
    assert generate_mac_x919(k, data).hex().upper() == expected
    assert generate_mac(k, data, "x919") == bytes.fromhex(expected)


def test_x919_emits_no_deprecation_warning(recwarn: pytest.WarningsRecorder) -> None:
    generate_mac_x919(KEY, NOW_IS)
    assert not [w for w in recwarn if "TripleDES" in str(w.message)]


# --- verify -----------------------------------------------------------------------
def test_verify_mac() -> None:
    assert verify_mac(KEY, BODY, b"1CA63620")
    assert not verify_mac(KEY, BODY, b"1CA63621")
    assert not verify_mac(KEY, BODY, b"1ca63620")  # the MAC is uppercase ASCII
    assert not verify_mac(KEY, BODY, b"1CA63620\x00")
    assert not verify_mac(KEY, BODY, b"")
    assert verify_mac(KEY, BODY, b"F0220062", alg=Algorithm.SM4)
    assert verify_mac(KEY, NOW_IS, bytes.fromhex("A1C72E74EA3FA9B6"), scheme="x919")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: generate_mac(KEY, BODY, "cbc"), MacError,
         "未知的MAC算法 'cbc' (支持: cup_ecb, x919) / unknown MAC scheme 'cbc' (known: cup_ecb, x919)"),
        (lambda: verify_mac(KEY, BODY, b"00000000", "ecb"), MacError,
         "未知的MAC算法 'ecb' (支持: cup_ecb, x919) / unknown MAC scheme 'ecb' (known: cup_ecb, x919)"),
        (lambda: generate_mac(KEY, BODY, "x919", Algorithm.SM4), KeyAlgorithmError,
         "X9.19 MAC需要TDES密钥, 实际为SM4 / X9.19 MAC needs a TDES key, got SM4"),
        (lambda: generate_mac_x919(bytes(24), BODY), KeyLengthError,
         "密钥长度24字节不合法(允许: 8, 16) / key length 24 bytes is not allowed (allowed: 8, 16)"),
        (lambda: generate_mac_cup_ecb(bytes(8), BODY, Algorithm.SM4), KeyLengthError,
         "密钥长度8字节不合法(允许: 16) / key length 8 bytes is not allowed (allowed: 16)"),
        (lambda: generate_mac_cup_ecb(bytes(12), BODY), KeyLengthError,
         "密钥长度12字节不合法(允许: 8, 16, 24) / key length 12 bytes is not allowed (allowed: 8, 16, 24)"),
    ],
)
def test_refusals(call, error: type[CryptoError], message: str) -> None:
    with pytest.raises(error) as info:
        call()
    assert type(info.value) is error
    assert str(info.value) == message


# --- properties -----------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=200), alg=st.sampled_from(Algorithm))
def test_cup_ecb_matches_the_hand_version(data: bytes, alg: Algorithm) -> None:
    mac = generate_mac_cup_ecb(KEY, data, alg)
    assert mac == _cup_ecb_by_hand(alg, KEY, data)
    assert verify_mac(KEY, data, mac, alg=alg)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=1, max_size=120), flip=st.integers(0, 10_000))
def test_any_changed_byte_breaks_the_x919_mac(data: bytes, flip: int) -> None:
    mac = generate_mac_x919(KEY, data)
    assert mac == _x919_by_hand(KEY, data)
    index = flip % len(data)
    altered = data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]
    assert not verify_mac(KEY, altered, mac, "x919")
