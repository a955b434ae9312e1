"""The terminal's reader of TMS upgrade packages (format of docs/tms.md).

A package is a stored zip file with ``manifest.json`` and the application image
(``manifest["app"]["name"]``, normally ``app.bin``) whose sha256 the manifest carries. The
TMS signs the whole file with Ed25519; the signature travels in the upgrade offer. The
terminal has its own small reader (it does not import the TMS).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["ManifestError", "read_manifest", "check_signature", "FORMAT"]

FORMAT = 1


class ManifestError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_signature(public_key_hex: str, data: bytes, signature_hex: str) -> bool:
    """True when `signature_hex` is the TMS key's Ed25519 signature of `data`."""
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        key.verify(bytes.fromhex(signature_hex), data)
    except (InvalidSignature, ValueError):
        return False
    return True


def read_manifest(data: bytes) -> dict[str, Any]:
    """The manifest of package bytes, after checking the image's sha256 against it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            image = archive.read(manifest["app"]["name"])
    except (zipfile.BadZipFile, KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"not a package: {type(exc).__name__}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ManifestError("unsupported format")
    if hashlib.sha256(image).hexdigest() != manifest["app"].get("sha256"):
        raise ManifestError("image checksum mismatch")
    if not isinstance(manifest.get("models"), list) or not manifest.get("version"):
        raise ManifestError("manifest lacks version or models")
    return manifest
