"""Device credentials for the terminal-facing TMS API.

A credential is a random bearer token issued at registration. Only its SHA-256 is stored,
with the terminal and the device serial it is bound to. Issuing a new one revokes the
old; a revoked or unknown token, or one presented from another device serial, is refused
with :class:`CredentialError` (``code``, ``zh``, ``en``, ``status`` = the HTTP status).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from posdoctor.store import Store

TOKEN_PREFIX = "pdt_"


class CredentialError(Exception):
    """Refused credential; ``code`` is ``unknown_credential``, ``revoked_credential``
    or ``serial_mismatch``."""

    def __init__(self, code: str, zh: str, en: str, status: int) -> None:
        super().__init__(f"{zh} / {en}")
        self.code, self.zh, self.en, self.status = code, zh, en, status

    def to_json(self) -> dict[str, str]:
        return {"error": self.code, "zh": self.zh, "en": self.en}


def unknown_credential() -> CredentialError:
    return CredentialError("unknown_credential", "设备凭证无效或未登记", "unknown device credential", 401)


def revoked_credential(tid: str) -> CredentialError:
    return CredentialError("revoked_credential", f"终端 {tid} 的设备凭证已被吊销",
                           f"the device credential of terminal {tid} has been revoked", 401)


def serial_mismatch(tid: str, serial: str) -> CredentialError:
    return CredentialError(
        "serial_mismatch",
        f"设备序列号 {serial} 与终端 {tid} 绑定的设备不符",
        f"device serial {serial} is not the device bound to terminal {tid}", 403)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_credential(store: Store, tid: str, now: datetime | None = None) -> str:
    """A new credential for ``tid`` bound to its registered device serial; the previous
    credential of ``tid`` stops working. The clear token is returned once, never stored."""
    terminal = store.get_terminal(tid)  # NotFound for an unknown terminal
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.store_credential(tid, terminal.serial, hash_token(token), now)
    return token


def revoke_credential(store: Store, tid: str, now: datetime | None = None) -> int:
    """Revoke the credentials of ``tid``; returns how many were active."""
    return store.revoke_credentials(tid, now)


def authenticate(store: Store, token: str, serial: str | None = None) -> tuple[str, str]:
    """``(tid, serial)`` of a valid credential, else :class:`CredentialError`. When the
    device presents a ``serial``, it must be the one the credential is bound to; and the
    terminal must still be registered on that device (a credential does not follow the
    terminal to another device: re-issue it)."""
    if not token or not token.startswith(TOKEN_PREFIX):
        raise unknown_credential()
    found = store.find_credential(hash_token(token))
    if found is None:
        raise unknown_credential()
    row, terminal_serial = found
    if not row.active or terminal_serial is None:  # revoked, or its terminal is gone
        raise revoked_credential(row.tid)
    if serial is not None and not hmac.compare_digest(serial.encode(), row.serial.encode()):
        raise serial_mismatch(row.tid, serial)
    if terminal_serial != row.serial:  # the terminal was moved to another device since
        raise serial_mismatch(row.tid, row.serial)
    return row.tid, row.serial
