"""Card secrets at rest, keyed from the local master key (LMK).

- ``pan_hash``: HMAC-SHA256 of the PAN under a key derived from the LMK. It is the
  lookup key of a card, so a stolen database does not give PANs (no clear PAN is stored,
  and unlike a plain hash it cannot be brute-forced without the LMK).
- PIN verification value: the clear PIN sealed with AES-256-GCM under another
  LMK-derived key, bound to the card's PAN hash. The host unseals it only to hand it to
  the HSM (``SoftHSM.verify_pin(..., expected_pin)``), which compares it with the PIN
  block it decrypted.
"""

from __future__ import annotations

import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from posdoctor.store.errors import InvalidValue

_NONCE = 12


def _derive(lmk: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(lmk)


class CardSecrets:
    """PAN hashing and PIN sealing under keys derived from one LMK."""

    def __init__(self, lmk: bytes) -> None:
        if len(lmk) not in (16, 32):
            raise InvalidValue("lmk", "本地主密钥必须是16或32字节", "LMK must be 16 or 32 bytes")
        self._pan_key = _derive(lmk, b"posdoctor/card/pan-hash/v1")
        self._pin_aead = AESGCM(_derive(lmk, b"posdoctor/card/pin-seal/v1"))

    def pan_hash(self, pan: str) -> str:
        """64 lowercase hex characters identifying ``pan``."""
        return hmac.digest(self._pan_key, pan.encode("ascii"), "sha256").hex()

    def seal_pin(self, pin: str, pan_hash: str) -> bytes:
        """nonce(12) + AES-GCM ciphertext of the PIN, authenticated with the PAN hash."""
        nonce = os.urandom(_NONCE)
        return nonce + self._pin_aead.encrypt(nonce, pin.encode("ascii"), pan_hash.encode())

    def unseal_pin(self, sealed: bytes, pan_hash: str) -> str:
        """The clear PIN; raises :class:`InvalidValue` if the blob was not sealed for
        this card under this LMK."""
        try:
            clear = self._pin_aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], pan_hash.encode())
        except InvalidTag:
            raise InvalidValue(
                "pin", "卡密码数据无法解密(LMK不符或数据损坏)",
                "card PIN data cannot be unsealed (wrong LMK or corrupted)",
            ) from None
        return clear.decode("ascii")
