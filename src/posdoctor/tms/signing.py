"""The TMS package signing key (Ed25519) and package signatures.

The private key lives in ``$POSDOCTOR_HOME/tms_signing.key`` (the 32-byte seed as 64 hex
digits, mode 0600), created on first use; a file the group or others can read is refused
like the LMK. Terminals hold the public key (``public_key_hex(home)``) and verify the
signature over the whole package file before installing it.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from posdoctor.store.config import load_private_key_file

KEY_NAME = "tms_signing.key"


def _key_path(home: str | Path) -> Path:
    return Path(home).expanduser() / KEY_NAME


def load_signing_key(home: str | Path) -> Ed25519PrivateKey:
    """The TMS signing key of ``home``, created (0600) on first use."""
    seed = load_private_key_file(_key_path(home), 32, (32,), setting="tms_signing_key",
                                 zh="签名密钥文件", en="signing key file")
    return private_key_from_seed(seed)


def private_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_hex(home: str | Path) -> str:
    """The hex public key terminals verify packages with."""
    return public_key_bytes(load_signing_key(home)).hex()


def sign_package(data: bytes, home: str | Path | None = None,
                 key: Ed25519PrivateKey | None = None) -> bytes:
    """The 64-byte Ed25519 signature of ``data`` under ``key`` or ``home``'s signing key."""
    if key is None:
        if home is None:
            raise TypeError("sign_package needs home or key")
        key = load_signing_key(home)
    return key.sign(data)


def verify_package(public_key: bytes | str, data: bytes, signature: bytes | str) -> bool:
    """True when ``signature`` (bytes or hex) is a valid signature of ``data``."""
    try:
        raw_key = bytes.fromhex(public_key) if isinstance(public_key, str) else public_key
        raw_sig = bytes.fromhex(signature) if isinstance(signature, str) else signature
        Ed25519PublicKey.from_public_bytes(raw_key).verify(raw_sig, data)
    except (InvalidSignature, ValueError):
        return False
    return True
