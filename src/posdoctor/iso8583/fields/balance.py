"""Field 54 (additional amounts / balance): 20-character entries.

Entry: account type (n2) + amount type (n2) + currency (n3) + sign (``C`` credit /
positive, ``D`` debit / negative) + amount (n12, cents).
"""

from __future__ import annotations

from dataclasses import dataclass

from posdoctor.iso8583.errors import DecodeError, EncodeError
from posdoctor.iso8583.fields._util import number_to_digits, require_digits

__all__ = ["Balance", "encode_balance", "decode_balance", "decode_balances", "ENTRY_LEN"]

ENTRY_LEN = 20
_FIELD = "54"
ACCOUNT_DEFAULT = "10"  # savings / default account
AMOUNT_AVAILABLE = "02"  # available balance


@dataclass(frozen=True)
class Balance:
    amount: int
    """Signed cents: negative for sign ``D``."""
    currency: str = "156"
    account_type: str = ACCOUNT_DEFAULT
    amount_type: str = AMOUNT_AVAILABLE


def encode_balance(amount_cents: int, currency: str = "156", *, account_type: str = ACCOUNT_DEFAULT,
                   amount_type: str = AMOUNT_AVAILABLE) -> str:
    """A signed balance in cents -> one 20-character field 54 entry."""
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool):
        raise EncodeError(_FIELD, f"amount must be int cents, got {amount_cents!r}")
    sign = "D" if amount_cents < 0 else "C"
    return (require_digits(_FIELD, "account type", account_type, 2)
            + require_digits(_FIELD, "amount type", amount_type, 2)
            + require_digits(_FIELD, "currency", currency, 3)
            + sign + number_to_digits(_FIELD, "amount", abs(amount_cents), 12))


def decode_balances(value: str) -> list[Balance]:
    """Every 20-character entry of field 54."""
    if not isinstance(value, str):
        raise DecodeError(_FIELD, 0, f"value must be str, not {type(value).__name__}")
    if not value or len(value) % ENTRY_LEN:
        raise DecodeError(_FIELD, len(value) - len(value) % ENTRY_LEN,
                          f"field 54 is {len(value)} characters, expecting a non-zero multiple of {ENTRY_LEN}")
    return [_decode_entry(value, start) for start in range(0, len(value), ENTRY_LEN)]


def decode_balance(value: str) -> int:
    """Field 54 -> the signed balance in cents (the available-balance entry, else the first)."""
    entries = decode_balances(value)
    chosen = next((e for e in entries if e.amount_type == AMOUNT_AVAILABLE), entries[0])
    return chosen.amount


def _decode_entry(value: str, start: int) -> Balance:
    entry = value[start:start + ENTRY_LEN]
    for offset, ch in enumerate(entry):
        if offset == 7:
            if ch not in "CD":
                raise DecodeError(_FIELD, start + offset, f"balance sign {ch!r} is neither 'C' nor 'D'")
        elif not "0" <= ch <= "9":
            raise DecodeError(_FIELD, start + offset, f"character {ch!r} at {start + offset} is not a decimal digit")
    amount = int(entry[8:])
    return Balance(-amount if entry[7] == "D" else amount, entry[4:7], entry[0:2], entry[2:4])
