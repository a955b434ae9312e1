"""Key check values: 3DES and SM4 known answers, lengths, refusals."""

from __future__ import annotations

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from posdoctor.crypto.ciphers import Algorithm, EcbCipher
from posdoctor.crypto.errors import KeyLengthError
from posdoctor.crypto.kcv import check_value_with, key_check_value

KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def _zero_block_by_hand(primitive, size: int) -> bytes:
    encryptor = Cipher(primitive, modes.ECB()).encryptor()
    return encryptor.update(bytes(size)) + encryptor.finalize()


def test_tdes_kcv_of_the_test_key() -> None:
    kcv = key_check_value(KEY)
    assert kcv[:3] == bytes.fromhex("08D7B4")  # the published 3-byte value
    assert kcv == bytes.fromhex("08D7B4FB")
    assert kcv == _zero_block_by_hand(TripleDES(KEY + KEY[:8]), 8)[:4]


def test_tdes_kcv_lengths_and_single_length_key() -> None:
    assert key_check_value(KEY, length=8) == bytes.fromhex("08D7B4FB629D0885")
    assert key_check_value(KEY, length=3) == bytes.fromhex("08D7B4")
    single = bytes.fromhex("0123456789ABCDEF")
    assert key_check_value(single) == _zero_block_by_hand(TripleDES(single * 3), 8)[:4]
    assert key_check_value(single) == bytes.fromhex("D5D44FF7")


def test_sm4_kcv() -> None:
    expected = _zero_block_by_hand(algorithms.SM4(KEY), 16)
    assert key_check_value(KEY, Algorithm.SM4) == expected[:4]
    assert key_check_value(KEY, Algorithm.SM4) == bytes.fromhex("2677F46B")
    assert key_check_value(KEY, Algorithm.SM4, length=16) == expected


def test_check_value_with_cached_cipher() -> None:
    cipher = EcbCipher(Algorithm.TDES, KEY)
    assert check_value_with(cipher) == bytes.fromhex("08D7B4FB")
    assert check_value_with(cipher, 2) == bytes.fromhex("08D7")


@pytest.mark.parametrize(
    ("key", "alg", "length", "error", "message"),
    [
        (bytes(10), Algorithm.TDES, 4, KeyLengthError,
         "密钥长度10字节不合法(允许: 8, 16, 24) / key length 10 bytes is not allowed (allowed: 8, 16, 24)"),
        (bytes(8), Algorithm.SM4, 4, KeyLengthError,
         "密钥长度8字节不合法(允许: 16) / key length 8 bytes is not allowed (allowed: 16)"),
        (KEY, Algorithm.TDES, 0, ValueError, "check value length must be 1..8, got 0"),
        (KEY, Algorithm.TDES, 9, ValueError, "check value length must be 1..8, got 9"),
        (KEY, Algorithm.SM4, 17, ValueError, "check value length must be 1..16, got 17"),
    ],
)
def test_refusals(key: bytes, alg: Algorithm, length: int, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        key_check_value(key, alg, length)
    assert type(info.value) is error
    assert str(info.value) == message
