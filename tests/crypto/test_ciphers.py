"""3DES / SM4 ECB primitives: known answers, key expansion, negative table, round trips."""

from __future__ import annotations

import pickle

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from posdoctor.crypto.ciphers import (
    Algorithm,
    EcbCipher,
    decrypt_ecb,
    encrypt_ecb,
    expand_tdes_key,
    sm4_decrypt_ecb,
    sm4_encrypt_ecb,
    tdes_decrypt_ecb,
    tdes_encrypt_ecb,
)
from posdoctor.crypto.errors import CryptoError, DataLengthError, KeyLengthError

KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
K1, K2 = KEY[:8], KEY[8:]


def _single_des(key8: bytes, block: bytes, *, decrypt: bool = False) -> bytes:
    """Independent single DES (3DES with K1K1K1 collapses to DES)."""
    cipher = Cipher(TripleDES(key8 * 3), modes.ECB())
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(block) + ctx.finalize()


# --- known answers ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "plain", "cipher"),
    [
        # FIPS 81 / classic DES examples (single-length key -> K1K1K1)
        ("0123456789ABCDEF", "4E6F772069732074", "3FA40E8A984D4815"),
        ("133457799BBCDFF1", "0123456789ABCDEF", "85E813540F0AB405"),
        # double-length key: the check-value block of the test key
        ("0123456789ABCDEFFEDCBA9876543210", "0000000000000000", "08D7B4FB629D0885"),
    ],
)
def test_tdes_known_answers(key: str, plain: str, cipher: str) -> None:
    k, p, c = bytes.fromhex(key), bytes.fromhex(plain), bytes.fromhex(cipher)
    assert tdes_encrypt_ecb(k, p) == c
    assert tdes_decrypt_ecb(k, c) == p


def test_double_length_is_ede_with_k1_k2_k1() -> None:
    block = bytes.fromhex("1122334455667788")
    by_hand = _single_des(K1, _single_des(K2, _single_des(K1, block), decrypt=True))
    assert tdes_encrypt_ecb(KEY, block) == by_hand


def test_triple_length_key_used_as_is() -> None:
    k3 = bytes.fromhex("89ABCDEF01234567")
    key24 = K1 + K2 + k3
    block = bytes.fromhex("A1B2C3D4E5F60718")
    by_hand = _single_des(k3, _single_des(K2, _single_des(K1, block), decrypt=True))
    assert tdes_encrypt_ecb(key24, block) == by_hand


def test_sm4_standard_vector() -> None:
    # GB/T 32907-2016 appendix A example 1
    plain = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    expected = bytes.fromhex("681EDF34D206965E86B3E94F536E4246")
    assert sm4_encrypt_ecb(KEY, plain) == expected
    assert sm4_decrypt_ecb(KEY, expected) == plain
    assert encrypt_ecb(Algorithm.SM4, KEY, plain + plain) == expected * 2


def test_expand_tdes_key() -> None:
    assert expand_tdes_key(K1) == K1 + K1 + K1
    assert expand_tdes_key(KEY) == K1 + K2 + K1
    key24 = bytes(range(24))
    assert expand_tdes_key(key24) == key24


def test_ecb_is_blockwise_and_empty_is_empty() -> None:
    blocks = bytes.fromhex("00000000000000001122334455667788")
    assert tdes_encrypt_ecb(KEY, blocks) == tdes_encrypt_ecb(KEY, blocks[:8]) + tdes_encrypt_ecb(KEY, blocks[8:])
    assert tdes_encrypt_ecb(KEY, b"") == b""


def test_algorithm_properties() -> None:
    assert (Algorithm.TDES.block_size, Algorithm.SM4.block_size) == (8, 16)
    assert Algorithm.TDES.key_lengths == (8, 16, 24)
    assert Algorithm.SM4.key_lengths == (16,)
    assert Algorithm["SM4"] is Algorithm.SM4


# --- EcbCipher reuse --------------------------------------------------------------
def test_ecb_cipher_reuse_gives_same_answers() -> None:
    cipher = EcbCipher(Algorithm.TDES, KEY)
    zero = bytes(8)
    assert [cipher.encrypt(zero) for _ in range(3)] == [bytes.fromhex("08D7B4FB629D0885")] * 3
    assert cipher.decrypt(bytes.fromhex("08D7B4FB629D0885")) == zero
    with pytest.raises(DataLengthError):
        cipher.encrypt(b"1234567")
    # a refused call leaves nothing buffered
    assert cipher.encrypt(zero) == bytes.fromhex("08D7B4FB629D0885")


def test_ecb_cipher_repr_and_pickle_are_safe() -> None:
    cipher = EcbCipher(Algorithm.SM4, KEY)
    assert repr(cipher) == "EcbCipher(SM4)"
    with pytest.raises(TypeError):
        pickle.dumps(cipher)


# --- negative table -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: tdes_encrypt_ecb(bytes(15), bytes(8)), KeyLengthError,
         "密钥长度15字节不合法(允许: 8, 16, 24) / key length 15 bytes is not allowed (allowed: 8, 16, 24)"),
        (lambda: tdes_decrypt_ecb(b"", bytes(8)), KeyLengthError,
         "密钥长度0字节不合法(允许: 8, 16, 24) / key length 0 bytes is not allowed (allowed: 8, 16, 24)"),
        (lambda: expand_tdes_key(bytes(32)), KeyLengthError,
         "密钥长度32字节不合法(允许: 8, 16, 24) / key length 32 bytes is not allowed (allowed: 8, 16, 24)"),
        (lambda: sm4_encrypt_ecb(bytes(8), bytes(16)), KeyLengthError,
         "密钥长度8字节不合法(允许: 16) / key length 8 bytes is not allowed (allowed: 16)"),
        (lambda: sm4_decrypt_ecb(bytes(24), bytes(16)), KeyLengthError,
         "密钥长度24字节不合法(允许: 16) / key length 24 bytes is not allowed (allowed: 16)"),
        (lambda: tdes_encrypt_ecb(KEY, bytes(7)), DataLengthError,
         "数据长度7字节不是8字节分组的整数倍 / data length 7 bytes is not a multiple of the 8-byte block"),
        (lambda: tdes_decrypt_ecb(KEY, bytes(12)), DataLengthError,
         "数据长度12字节不是8字节分组的整数倍 / data length 12 bytes is not a multiple of the 8-byte block"),
        (lambda: sm4_encrypt_ecb(KEY, bytes(8)), DataLengthError,
         "数据长度8字节不是16字节分组的整数倍 / data length 8 bytes is not a multiple of the 16-byte block"),
        (lambda: decrypt_ecb(Algorithm.SM4, KEY, bytes(17)), DataLengthError,
         "数据长度17字节不是16字节分组的整数倍 / data length 17 bytes is not a multiple of the 16-byte block"),
    ],
)
def test_refusals(call, error: type[CryptoError], message: str) -> None:
    with pytest.raises(error) as info:
        call()
    assert type(info.value) is error
    assert str(info.value) == message
    assert isinstance(info.value, CryptoError)


def test_key_length_error_structure() -> None:
    with pytest.raises(KeyLengthError) as info:
        tdes_encrypt_ecb(bytes(9), bytes(8))
    assert (info.value.length, info.value.allowed, info.value.what) == (9, (8, 16, 24), "key")
    assert info.value.en.startswith("key length 9")
    assert info.value.zh.startswith("密钥长度9")


def test_data_length_error_structure() -> None:
    with pytest.raises(DataLengthError) as info:
        sm4_encrypt_ecb(KEY, bytes(20))
    assert (info.value.length, info.value.block_size) == (20, 16)


# --- round trips --------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    key=st.sampled_from((8, 16, 24)).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    blocks=st.integers(0, 8).flatmap(lambda n: st.binary(min_size=8 * n, max_size=8 * n)),
)
def test_tdes_round_trip(key: bytes, blocks: bytes) -> None:
    encrypted = tdes_encrypt_ecb(key, blocks)
    assert len(encrypted) == len(blocks)
    assert tdes_decrypt_ecb(key, encrypted) == blocks


@settings(max_examples=60, deadline=None)
@given(
    key=st.binary(min_size=16, max_size=16),
    blocks=st.integers(0, 6).flatmap(lambda n: st.binary(min_size=16 * n, max_size=16 * n)),
)
def test_sm4_round_trip(key: bytes, blocks: bytes) -> None:
    encrypted = sm4_encrypt_ecb(key, blocks)
    assert len(encrypted) == len(blocks)
    assert sm4_decrypt_ecb(key, encrypted) == blocks


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=64).filter(lambda d: len(d) % 8))
def test_partial_blocks_always_refused(data: bytes) -> None:
    with pytest.raises(DataLengthError):
        tdes_encrypt_ecb(KEY, data)
