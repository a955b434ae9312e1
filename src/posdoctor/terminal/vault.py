"""Secrets at rest on the emulated terminal, sealed under its local device key.

A real terminal keeps keys in its secure element; the emulator keeps them in the JSON
state file sealed with AES-256-GCM under a per-device key (the "secure element"), which
lives outside the state file. The purpose string (``"TMK"``, ``"PAN"``...) is bound as
associated data, so a sealed TMK cannot be passed off as a MAK.
"""

from __future__ import annotations

import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["DeviceVault", "VaultError", "DEVICE_KEY_BYTES", "new_device_key"]

DEVICE_KEY_BYTES = 32
_NONCE = 12


class VaultError(Exception):
    """A sealed value that cannot be opened (wrong device key, corrupted blob)."""

    def __init__(self, purpose: str, reason: str) -> None:
        super().__init__(f"{purpose}: {reason}")
        self.purpose = purpose
        self.reason = reason


def new_device_key() -> bytes:
    return secrets.token_bytes(DEVICE_KEY_BYTES)


class DeviceVault:
    """Seals and opens small secrets under one device key.

    The cipher is made for each call (~5 µs) rather than kept: a kept AES-GCM context
    costs ~2.5 KB of OpenSSL memory, as much as a fifth of an idle emulated terminal,
    and a terminal seals or opens a handful of values per transaction. The key bytes
    are the device's own (`Device.device_key`), so keeping them adds no copy to guard.
    """

    __slots__ = ("_key",)

    def __init__(self, device_key: bytes) -> None:
        if len(device_key) != DEVICE_KEY_BYTES:
            raise ValueError(f"device key is {len(device_key)} bytes, expecting {DEVICE_KEY_BYTES}")
        self._key = bytes(device_key)

    def seal(self, clear: bytes, purpose: str) -> str:
        nonce = os.urandom(_NONCE)
        return (nonce + AESGCM(self._key).encrypt(nonce, bytes(clear), purpose.encode())).hex()

    def open(self, sealed: str, purpose: str) -> bytes:
        try:
            raw = bytes.fromhex(sealed)
        except ValueError:
            raise VaultError(purpose, "sealed value is not hex") from None
        if len(raw) < _NONCE + 16:
            raise VaultError(purpose, "sealed value is too short")
        try:
            return AESGCM(self._key).decrypt(raw[:_NONCE], raw[_NONCE:], purpose.encode())
        except InvalidTag:
            raise VaultError(purpose, "sealed value does not open under this device key") from None
