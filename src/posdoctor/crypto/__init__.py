"""posdoctor.crypto: the pure payment-crypto core (no I/O, no clock, no logging).

- ``ciphers``: 3DES / SM4 ECB primitives, ``Algorithm``, reusable ``EcbCipher``
- ``kcv``: key check values
- ``mac``: CUP ECB MAC (3DES and SM4) and ANSI X9.19 retail MAC for field 64
- ``pin``: ISO 9564 format 0 PIN blocks for field 52
- ``hsm``: ``SoftHSM`` and ``WrappedKey`` (keys at rest only wrapped under the LMK)
- ``errors``: ``CryptoError`` and its typed subclasses
"""

from posdoctor.crypto.ciphers import Algorithm
from posdoctor.crypto.errors import (
    CryptoError,
    DataLengthError,
    KeyAlgorithmError,
    KeyCheckError,
    KeyFormatError,
    KeyLengthError,
    KeyUnwrapError,
    MacError,
    PinBlockError,
)
from posdoctor.crypto.hsm import SoftHSM, WrappedKey

__all__ = [
    "Algorithm",
    "CryptoError",
    "DataLengthError",
    "KeyAlgorithmError",
    "KeyCheckError",
    "KeyFormatError",
    "KeyLengthError",
    "KeyUnwrapError",
    "MacError",
    "PinBlockError",
    "SoftHSM",
    "WrappedKey",
]
