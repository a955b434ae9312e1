"""Block-cipher primitives in ECB mode: 3DES (DES/2-key/3-key) and SM4.

No padding anywhere: data must be a whole number of blocks, else
:class:`~posdoctor.crypto.errors.DataLengthError`. Keys of a wrong length raise
:class:`~posdoctor.crypto.errors.KeyLengthError`.

3DES keys are always handed to ``cryptography`` as 24 bytes (single-length K1 becomes
K1K1K1, double-length K1K2 becomes K1K2K1), since its 8- and 16-byte forms are
deprecated. :class:`EcbCipher` keeps the OpenSSL contexts of one key alive so a caller
that reuses a key (the soft HSM) does not rebuild them on every call.
"""

from __future__ import annotations

import enum
from typing import Any

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from posdoctor.crypto.errors import DataLengthError, KeyLengthError

TDES_KEY_LENGTHS = (8, 16, 24)
SM4_KEY_LENGTHS = (16,)


class Algorithm(enum.Enum):
    """The block ciphers of CUP terminals: 3DES (field 53 digit 2 = 6) and SM4 (3)."""

    TDES = "TDES"
    SM4 = "SM4"

    @property
    def block_size(self) -> int:
        """Cipher block size in bytes: 8 for 3DES, 16 for SM4."""
        return 8 if self is Algorithm.TDES else 16

    @property
    def key_lengths(self) -> tuple[int, ...]:
        """Key lengths in bytes this algorithm accepts."""
        return TDES_KEY_LENGTHS if self is Algorithm.TDES else SM4_KEY_LENGTHS


_TDES = Algorithm.TDES
_ECB = modes.ECB()
"""ECB has no parameters: one mode object serves every cipher."""


def check_key_length(alg: Algorithm, key: bytes) -> None:
    """Raise :class:`KeyLengthError` unless ``key`` has a length ``alg`` accepts."""
    lengths = TDES_KEY_LENGTHS if alg is _TDES else SM4_KEY_LENGTHS
    if len(key) not in lengths:
        raise KeyLengthError(len(key), lengths)


def check_block_multiple(data: bytes, block_size: int) -> None:
    """Raise :class:`DataLengthError` unless ``data`` is a whole number of blocks."""
    if len(data) % block_size:
        raise DataLengthError(len(data), block_size)


def expand_tdes_key(key: bytes) -> bytes:
    """The 24-byte 3DES key: 8 -> K1K1K1 (single DES), 16 -> K1K2K1, 24 unchanged."""
    check_key_length(Algorithm.TDES, key)
    return _expand_checked(key)


def _expand_checked(key: bytes) -> bytes:
    if len(key) == 8:
        return key * 3
    if len(key) == 16:
        return key + key[:8]
    return bytes(key)


def _cipher_for(alg: Algorithm, key: bytes) -> Cipher:
    check_key_length(alg, key)
    if alg is _TDES:
        primitive = TripleDES(_expand_checked(key))
    else:
        primitive = algorithms.SM4(bytes(key))
    return Cipher(primitive, _ECB)


class EcbCipher:
    """One key's ECB encryptor and decryptor, reused across calls.

    ECB contexts carry no state between whole blocks, so one context serves every call;
    each call checks the data is whole blocks first, so nothing is ever left buffered.
    The key is held only inside the cryptography objects (the decryptor is made on first
    use, from the kept `Cipher`). Not for concurrent use from several threads (the host
    is one asyncio loop per process).
    """

    __slots__ = ("alg", "_cipher", "_encryptor", "_decryptor")

    def __init__(self, alg: Algorithm, key: bytes) -> None:
        cipher = _cipher_for(alg, key)
        self.alg = alg
        self._cipher: Cipher | None = cipher
        self._encryptor = cipher.encryptor()
        self._decryptor: Any = None
        """Made on first use: many keys (MAKs, new keys' check values) never decrypt."""

    @property
    def block_size(self) -> int:
        return self.alg.block_size

    def encrypt(self, data: bytes) -> bytes:
        """ECB-encrypt whole blocks."""
        check_block_multiple(data, 8 if self.alg is _TDES else 16)
        return self._encryptor.update(data)

    def decrypt(self, data: bytes) -> bytes:
        """ECB-decrypt whole blocks."""
        check_block_multiple(data, 8 if self.alg is _TDES else 16)
        if self._decryptor is None:
            assert self._cipher is not None
            self._decryptor, self._cipher = self._cipher.decryptor(), None
        return self._decryptor.update(data)

    def __repr__(self) -> str:
        return f"EcbCipher({self.alg.name})"

    def __reduce__(self) -> object:
        raise TypeError("EcbCipher holds a clear key and cannot be pickled")


def encrypt_ecb(alg: Algorithm, key: bytes, data: bytes) -> bytes:
    """ECB-encrypt ``data`` (whole blocks) under ``key`` with ``alg``."""
    check_key_length(alg, key)
    check_block_multiple(data, alg.block_size)
    return EcbCipher(alg, key).encrypt(data)


def decrypt_ecb(alg: Algorithm, key: bytes, data: bytes) -> bytes:
    """ECB-decrypt ``data`` (whole blocks) under ``key`` with ``alg``."""
    check_key_length(alg, key)
    check_block_multiple(data, alg.block_size)
    return EcbCipher(alg, key).decrypt(data)


def tdes_encrypt_ecb(key: bytes, data: bytes) -> bytes:
    """3DES-ECB encrypt; ``key`` is 8, 16 or 24 bytes, ``data`` a multiple of 8."""
    return encrypt_ecb(Algorithm.TDES, key, data)


def tdes_decrypt_ecb(key: bytes, data: bytes) -> bytes:
    """3DES-ECB decrypt; ``key`` is 8, 16 or 24 bytes, ``data`` a multiple of 8."""
    return decrypt_ecb(Algorithm.TDES, key, data)


def sm4_encrypt_ecb(key: bytes, data: bytes) -> bytes:
    """SM4-ECB encrypt (GB/T 32907); ``key`` is 16 bytes, ``data`` a multiple of 16."""
    return encrypt_ecb(Algorithm.SM4, key, data)


def sm4_decrypt_ecb(key: bytes, data: bytes) -> bytes:
    """SM4-ECB decrypt; ``key`` is 16 bytes, ``data`` a multiple of 16."""
    return decrypt_ecb(Algorithm.SM4, key, data)
