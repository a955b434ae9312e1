"""The TMS package signing key (Ed25519) and package signatures.

The private key lives in ``$POSDOCTOR_HOME/tms_signing.key`` (the 32-byte seed as 64 hex
digits, mode 0600), created on first use; a file the group or others can read is refused
like the LMK. Terminals hold the public key (``public_key_hex(home)``) and verify the
signature over the whole package file before installing it.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from posdoctor.store import ConfigError

KEY_NAME = "tms_signing.key"


def _key_path(home: str | Path) -> Path:
    return Path(home).expanduser() / KEY_NAME


def _create_key_file(path: Path) -> None:
    """Write a new seed to a private temp file and link it in (first writer wins)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_bytes(32).hex() + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"签名密钥文件 {path} 权限过宽({oct(mode & 0o777)}),请执行 chmod 600",
            f"signing key file {path} is accessible by group or others "
            f"({oct(mode & 0o777)}); run chmod 600",
            setting="tms_signing_key",
        )


def load_signing_key(home: str | Path) -> Ed25519PrivateKey:
    """The TMS signing key of ``home``, created (0600) on first use."""
    path = _key_path(home)
    if not path.exists():
        _create_key_file(path)
    _check_private(path)
    try:
        seed = bytes.fromhex(path.read_text(encoding="ascii", errors="replace").strip())
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise ConfigError(f"签名密钥文件 {path} 内容无效(应为64位十六进制)",
                          f"signing key file {path} is invalid (expected 64 hex digits)",
                          setting="tms_signing_key")
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
