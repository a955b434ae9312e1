"""The terminal's key ring: keys sealed in the state, opened only to compute.

Clear keys exist only inside these methods' frames (and the vault); they are never put
in events, outcomes or logs. A key that cannot be opened (corrupted state, another
device's key file) is reported as ``keys.unreadable``.
"""

from __future__ import annotations

from posdoctor.crypto.ciphers import Algorithm, decrypt_ecb
from posdoctor.crypto.errors import CryptoError
from posdoctor.crypto.kcv import key_check_value
from posdoctor.crypto.mac import generate_mac_cup_ecb, verify_mac
from posdoctor.crypto.pin import encrypt_pinblock
from posdoctor.terminal.errors import KeyCheckError, LocalRefusal
from posdoctor.terminal.messages import M
from posdoctor.terminal.state import SealedKey, TerminalState
from posdoctor.terminal.vault import DeviceVault, VaultError

__all__ = ["KeyRing", "SIGNIN_ALGORITHMS"]

SIGNIN_ALGORITHMS: dict[str, Algorithm] = {"001": Algorithm.TDES, "003": Algorithm.TDES,
                                           "004": Algorithm.TDES, "006": Algorithm.SM4}


class KeyRing:
    __slots__ = ("state", "vault")

    def __init__(self, state: TerminalState, vault: DeviceVault) -> None:
        self.state = state
        self.vault = vault

    # --- storing ---------------------------------------------------------------------
    def store(self, kind: str, clear: bytes, alg: Algorithm) -> SealedKey:
        """Seal `clear` as `kind`, with its check value (4 bytes, hex)."""
        kcv = key_check_value(clear, alg).hex().upper()
        sealed = SealedKey(blob=self.vault.seal(clear, kind), kcv=kcv, alg=alg.value, length=len(clear))
        self.state.keys[kind] = sealed  # type: ignore[index]
        return sealed

    def store_checked(self, kind: str, clear: bytes, alg: Algorithm, expected_cv: bytes) -> None:
        """Store `clear` only if its check value starts with `expected_cv`."""
        try:
            actual = key_check_value(clear, alg)
        except CryptoError as exc:
            raise KeyCheckError(M.KEY_CHECK_FAILED, key=kind, reason=exc.en) from None
        if actual[:len(expected_cv)] != expected_cv:
            raise KeyCheckError(M.KEY_CHECK_FAILED, key=kind, expected_kcv=expected_cv.hex().upper(),
                                computed_kcv=actual[:len(expected_cv)].hex().upper())
        self.store(kind, clear, alg)

    # --- opening ---------------------------------------------------------------------
    def clear(self, kind: str) -> bytes:
        sealed = self.state.keys.get(kind)  # type: ignore[call-overload]
        if sealed is None:
            if kind == "TMK":
                raise LocalRefusal(M.NO_TMK)
            if kind == "TK":
                raise LocalRefusal(M.NO_TRANSPORT_KEY)
            raise LocalRefusal(M.NOT_SIGNED_IN, missing_key=kind)
        try:
            return self.vault.open(sealed.blob, kind)
        except VaultError as exc:
            raise LocalRefusal(M.KEY_STORE_UNREADABLE, key=kind, reason=exc.reason) from None

    def alg(self, kind: str) -> Algorithm:
        sealed = self.state.keys.get(kind)  # type: ignore[call-overload]
        return Algorithm(sealed.alg) if sealed is not None else Algorithm.TDES

    def kcv(self, kind: str) -> str | None:
        sealed = self.state.keys.get(kind)  # type: ignore[call-overload]
        return sealed.kcv if sealed is not None else None

    # --- using -------------------------------------------------------------------------
    def decrypt_under(self, kek_kind: str, encrypted: bytes) -> bytes:
        """A key that arrived encrypted (ECB) under the TK or TMK."""
        kek = self.clear(kek_kind)
        try:
            return decrypt_ecb(self.alg(kek_kind), kek, encrypted)
        except CryptoError as exc:
            raise KeyCheckError(M.KEY_CHECK_FAILED, key=kek_kind, reason=exc.en) from None

    def mac(self, data: bytes) -> bytes:
        return generate_mac_cup_ecb(self.clear("MAK"), data, self.alg("MAK"))

    def mac_matches(self, data: bytes, mac: bytes) -> bool:
        try:
            return verify_mac(self.clear("MAK"), data, mac, "cup_ecb", self.alg("MAK"))
        except CryptoError:
            return False

    def pin_block(self, pin: str, pan: str) -> bytes:
        return encrypt_pinblock(self.clear("PIK"), pin, pan, self.alg("PIK"))
