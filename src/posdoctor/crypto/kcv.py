"""Key check values: the first bytes of the key encrypting an all-zero block.

CUP sign-in answers carry a 4-byte check value after each working key (reference
section 4); the terminal recomputes it after decrypting the key and refuses a mismatch.
For 3DES the zero block is 8 bytes, for SM4 16 bytes.
"""

from __future__ import annotations

from posdoctor.crypto.ciphers import Algorithm, EcbCipher

KCV_LENGTH = 4


def check_value_with(cipher: EcbCipher, length: int = KCV_LENGTH) -> bytes:
    """The check value of the key inside ``cipher`` (first ``length`` bytes)."""
    _check_kcv_length(cipher.alg, length)
    return cipher.encrypt(bytes(cipher.alg.block_size))[:length]


def key_check_value(key: bytes, alg: Algorithm = Algorithm.TDES, length: int = KCV_LENGTH) -> bytes:
    """The first ``length`` bytes of ``key`` encrypting a zero block with ``alg``.

    Raises ``KeyLengthError`` for a key ``alg`` does not accept and ``ValueError`` for a
    ``length`` outside 1..block size (a programming error, not bad input data).
    """
    _check_kcv_length(alg, length)
    return check_value_with(EcbCipher(alg, key), length)


def _check_kcv_length(alg: Algorithm, length: int) -> None:
    if not 1 <= length <= alg.block_size:
        raise ValueError(f"check value length must be 1..{alg.block_size}, got {length}")
