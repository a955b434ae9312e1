"""The terminal's operator table: numbers, salted password hashes, failures, lock.

Pure functions over `TerminalState`; the app records the events. A CUP terminal ships
with operator 01 (password 0000) and supervisor 00 (password 123456) until changed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

from posdoctor.terminal.errors import LocalRefusal
from posdoctor.terminal.messages import M
from posdoctor.terminal.state import Operator, TerminalState

__all__ = ["hash_password", "add_operator", "add_default_operators", "check_login", "unlock_operator",
           "DEFAULT_OPERATORS"]

_ITERATIONS = 20_000
DEFAULT_OPERATORS = (("00", "123456", True), ("01", "0000", False))


def hash_password(password: str, salt: bytes) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _ITERATIONS).hex()


def add_operator(state: TerminalState, number: str, password: str, *, supervisor: bool = False) -> Operator:
    if not (number.isdigit() and 2 <= len(number) <= 3):
        raise ValueError("operator number must be 2 or 3 digits")
    if not (password.isdigit() and 4 <= len(password) <= 12):
        raise ValueError("operator password must be 4 to 12 digits")
    salt = secrets.token_bytes(16)
    operator = Operator(number=number, password_hash=hash_password(password, salt), salt=salt.hex(),
                        supervisor=supervisor)
    state.operators[number] = operator
    return operator


@lru_cache(maxsize=1)
def _factory_operators() -> tuple[Operator, ...]:
    """The factory defaults, hashed once per process: every device ships with the same
    well-known default passwords, so a per-device salt would protect nothing here and
    hashing them anew would cost a fleet simulator seconds per thousand terminals."""
    salt = secrets.token_bytes(16)
    return tuple(Operator(number=number, password_hash=hash_password(password, salt), salt=salt.hex(),
                          supervisor=supervisor) for number, password, supervisor in DEFAULT_OPERATORS)


def add_default_operators(state: TerminalState) -> None:
    for operator in _factory_operators():
        state.operators[operator.number] = operator.model_copy()


def check_login(state: TerminalState, number: str, password: str) -> Operator:
    """Log `number` in, or count the failure and lock after the configured number of them."""
    operator = state.operators.get(number)
    if operator is None:
        raise LocalRefusal(M.UNKNOWN_OPERATOR, operator=number)
    if operator.locked:
        raise LocalRefusal(M.OPERATOR_LOCKED, operator=number, failures=operator.failures,
                           cause_hint="status.operator_locked")
    expected = operator.password_hash
    if not hmac.compare_digest(hash_password(password, bytes.fromhex(operator.salt)), expected):
        operator.failures += 1
        limit = state.settings.operator_max_failures
        if operator.failures >= limit:
            operator.locked = True
            raise LocalRefusal(M.OPERATOR_LOCKED, operator=number, failures=operator.failures,
                               cause_hint="status.operator_locked")
        raise LocalRefusal(M.WRONG_PASSWORD, operator=number, failures=operator.failures,
                           remaining=limit - operator.failures, cause_hint="op.wrong_password")
    operator.failures = 0
    state.operator = number
    return operator


def unlock_operator(state: TerminalState, number: str) -> None:
    operator = state.operators.get(number)
    if operator is None:
        raise LocalRefusal(M.UNKNOWN_OPERATOR, operator=number)
    operator.locked = False
    operator.failures = 0
