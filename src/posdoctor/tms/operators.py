"""Terminal operators (收银员/主管): salted scrypt password hashes, a failure counter,
locking after ``operator_max_failures`` wrong passwords (policy, default 5) and unlocking.

Every lock and unlock is a status change (history + ``status_change`` event with entity
``operator``). Terminals that lock an operator themselves report it with
:func:`record_operator_lock`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from datetime import datetime
from typing import Literal

from posdoctor.store import InvalidValue, Store
from posdoctor.store.validate import validate_tid
from posdoctor.tms.policies import load_policies

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_OPNO = re.compile(r"[0-9]{2,4}")
_PASSWORD = re.compile(r"[0-9A-Za-z]{4,12}")
Verdict = Literal["ok", "wrong", "locked", "unknown"]


def hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)


def validate_operator(tid: str, opno: str) -> None:
    validate_tid(tid)
    if not _OPNO.fullmatch(opno):
        raise InvalidValue("opno", "操作员号必须是2到4位数字", "operator number must be 2 to 4 digits")


def add_operator(store: Store, tid: str, opno: str, password: str) -> None:
    validate_operator(tid, opno)
    if not _PASSWORD.fullmatch(password):
        raise InvalidValue("password", "操作员密码必须是4到12位字母或数字", "operator password must be 4 to 12 letters or digits")
    salt = os.urandom(16)
    store.add_operator(tid, opno, hash_password(password, salt), salt)


def verify_operator(store: Store, tid: str, opno: str, password: str, *, now: datetime | None = None) -> Verdict:
    """``ok`` (failures reset), ``wrong`` (counted; the Nth locks), ``locked`` or ``unknown``."""
    operator = store.find_operator(tid, opno)
    if operator is None:
        return "unknown"
    if operator.status == "locked":
        return "locked"
    if hmac.compare_digest(hash_password(password, operator.salt), operator.pw_hash):
        if operator.failures:
            store.reset_operator_failures(tid, opno)
        return "ok"
    limit = load_policies(store).operator_max_failures
    counted = store.count_operator_failure(tid, opno, lock_after=limit, now=now)
    return "locked" if counted.status == "locked" else "wrong"


def unlock_operator(store: Store, tid: str, opno: str, *, actor: str | None = None, reason: str | None = None) -> None:
    validate_operator(tid, opno)
    store.change_operator_status(tid, opno, "active", reason=reason or "unlocked", actor=actor)


def record_operator_lock(store: Store, tid: str, opno: str, source: str = "terminal", *,
                         reason: str | None = None, now: datetime | None = None) -> bool:
    """A terminal locked an operator itself; False when it was already locked here."""
    operator = store.find_operator(tid, opno)
    if operator is None or operator.status == "locked":
        return False
    store.change_operator_status(tid, opno, "locked", reason=reason or "locked on the terminal",
                                 actor=source, now=now)
    return True
