"""Message authentication codes for field 64.

``cup_ecb`` is the CUP "ECB" MAC of reference section 6 (Newland ``CalMAC``, POSP
``CombineMac``):

1. pad the MAC input with 0x00 to a whole number of blocks (no padding if it already is;
   empty input is one zero block);
2. XOR all blocks into R;
3. expand R to uppercase hex ASCII (16 characters for 3DES); L = first half, H = second;
4. E1 = encrypt(L); E2 = encrypt(E1 XOR H);
5. the MAC is the first 8 characters of E2 in uppercase hex ASCII (8 bytes).

SM4 variant (posdoctor's reading of "SM4 variants XOR in 16-byte blocks"): the blocks
are 16 bytes, R expands to 32 hex characters, L and H are 16 bytes each, the cipher is
SM4, and the MAC is still the first 8 uppercase hex ASCII characters of E2 (field 64
stays 8 bytes).

``x919`` is the ANSI X9.19 / ISO 9797-1 algorithm 3 retail MAC, 3DES only, ISO 9797-1
padding method 1, computed by psec.
"""

from __future__ import annotations

import hmac
import struct
import warnings
from functools import reduce
from operator import xor

from cryptography.utils import CryptographyDeprecationWarning
from psec.mac import generate_retail_mac

from posdoctor.crypto.ciphers import Algorithm, EcbCipher
from posdoctor.crypto.errors import KeyAlgorithmError, KeyLengthError, MacError

MAC_LENGTH = 8
SCHEMES = ("cup_ecb", "x919")
X919_KEY_LENGTHS = (8, 16)


def xor_fold(data: bytes, block_size: int) -> bytes:
    """XOR of all ``block_size`` (8 or 16) blocks of ``data`` zero-padded to whole blocks.

    Done on 64-bit words unpacked in C (two per 16-byte block): a MAC is computed twice
    per sale, so this matters at thousands of sales a second.
    """
    padding = -len(data) % block_size
    if padding:
        data = bytes(data) + bytes(padding)
    words = struct.unpack(f">{len(data) // 8}Q", data)
    if block_size == 8:
        return reduce(xor, words, 0).to_bytes(8, "big")
    high, low = reduce(xor, words[0::2], 0), reduce(xor, words[1::2], 0)
    return (high << 64 | low).to_bytes(16, "big")


def _xor(left: bytes, right: bytes) -> bytes:
    value = int.from_bytes(left, "big") ^ int.from_bytes(right, "big")
    return value.to_bytes(len(left), "big")


def cup_ecb_mac_with(cipher: EcbCipher, data: bytes) -> bytes:
    """The CUP ECB MAC of ``data`` under the MAK held by ``cipher`` (3DES or SM4)."""
    size = cipher.block_size
    expanded = xor_fold(data, size).hex().upper().encode("ascii")
    first = cipher.encrypt(expanded[:size])
    second = cipher.encrypt(_xor(first, expanded[size:]))
    return second[: MAC_LENGTH // 2].hex().upper().encode("ascii")


def generate_mac_cup_ecb(mak: bytes, data: bytes, alg: Algorithm = Algorithm.TDES) -> bytes:
    """CUP ECB MAC (8 ASCII hex bytes) of ``data`` under ``mak`` with ``alg``."""
    return cup_ecb_mac_with(EcbCipher(alg, mak), data)


def generate_mac_x919(mak: bytes, data: bytes) -> bytes:
    """ANSI X9.19 retail MAC (8 binary bytes) under a single- or double-length 3DES MAK.

    A single-length MAK degenerates to a plain DES CBC-MAC. The halves are handed to
    psec as 24-byte K1K1K1 / K2K2K2 keys (single DES), the form ``cryptography`` keeps
    supporting.
    """
    if len(mak) not in X919_KEY_LENGTHS:
        raise KeyLengthError(len(mak), X919_KEY_LENGTHS)
    left, right = mak[:8], mak[-8:]
    with warnings.catch_warnings():
        # psec imports TripleDES from its pre-"decrepit" location
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return generate_retail_mac(left * 3, right * 3, data, padding=1)


def generate_mac(mak: bytes, data: bytes, scheme: str = "cup_ecb", alg: Algorithm = Algorithm.TDES) -> bytes:
    """The field-64 MAC of ``data`` in ``scheme`` (``"cup_ecb"`` or ``"x919"``)."""
    if scheme == "cup_ecb":
        return generate_mac_cup_ecb(mak, data, alg)
    if scheme == "x919":
        require_x919_algorithm(alg)
        return generate_mac_x919(mak, data)
    raise unknown_scheme(scheme)


def verify_mac(
    mak: bytes, data: bytes, mac: bytes, scheme: str = "cup_ecb", alg: Algorithm = Algorithm.TDES
) -> bool:
    """True if ``mac`` is the MAC of ``data``; the comparison is constant-time."""
    return macs_equal(generate_mac(mak, data, scheme, alg), mac)


def macs_equal(expected: bytes, received: bytes) -> bool:
    """Constant-time comparison (a received MAC of the wrong length is simply unequal)."""
    return hmac.compare_digest(expected, bytes(received))


def require_x919_algorithm(alg: Algorithm) -> None:
    """X9.19 is defined for DES/3DES only."""
    if alg is not Algorithm.TDES:
        raise KeyAlgorithmError("X9.19 MAC", Algorithm.TDES.name, alg.name)


def unknown_scheme(scheme: str) -> MacError:
    return MacError(
        f"unknown MAC scheme {scheme!r} (known: {', '.join(SCHEMES)})",
        f"未知的MAC算法 {scheme!r} (支持: {', '.join(SCHEMES)})",
    )
