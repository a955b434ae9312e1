"""Internal result codes set by the steps, and the one place that maps them to field 39.

Steps never write field 39. They refuse with a `Result`; `response_code()` turns the
final result into the code the terminal sees. Several results can share one code
(the journal keeps the precise result and reason for the diagnosis engine).
"""

from __future__ import annotations

from enum import StrEnum


class Result(StrEnum):
    OK = "ok"
    # format and routing
    FORMAT_ERROR = "format_error"
    UNSUPPORTED = "unsupported"
    # registry
    UNKNOWN_TERMINAL = "unknown_terminal"
    TERMINAL_DISABLED = "terminal_disabled"
    DEVICE_MISMATCH = "device_mismatch"
    MERCHANT_MISMATCH = "merchant_mismatch"
    MERCHANT_UNUSABLE = "merchant_unusable"
    TXN_NOT_ALLOWED = "txn_not_allowed"
    """Terminal allowed types or the merchant category policy forbid the kind (58)."""
    APP_UPDATE_REQUIRED = "app_update_required"
    """Sign-in from an app older than the policy's minimum (07)."""
    # security
    NOT_SIGNED_IN = "not_signed_in"
    MAC_INVALID = "mac_invalid"
    KEY_UNAVAILABLE = "key_unavailable"
    PIN_FORMAT = "pin_format"
    # transaction checks
    DUPLICATE = "duplicate"
    ORIGINAL_NOT_FOUND = "original_not_found"
    ORIGINAL_NOT_USABLE = "original_not_usable"
    ORIGINAL_AMOUNT = "original_amount"
    INVALID_AMOUNT = "invalid_amount"
    RECORD_NOT_FOUND = "record_not_found"
    # issuer
    UNKNOWN_CARD = "unknown_card"
    CARD_EXPIRED = "card_expired"
    WRONG_PIN = "wrong_pin"
    PIN_TRIES_EXCEEDED = "pin_tries_exceeded"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    OVER_LIMIT = "over_limit"
    ISSUER_TIMEOUT = "issuer_timeout"
    ISSUER_DECLINED = "issuer_declined"
    """A decline rule forced a specific code: it is in `Context.forced_code`."""
    # host
    SYSTEM_ERROR = "system_error"


_RESPONSE_CODES: dict[Result, str] = {
    Result.OK: "00",
    Result.FORMAT_ERROR: "30",
    Result.UNSUPPORTED: "40",
    Result.UNKNOWN_TERMINAL: "97",
    Result.TERMINAL_DISABLED: "97",
    Result.DEVICE_MISMATCH: "08",
    Result.MERCHANT_MISMATCH: "03",
    Result.MERCHANT_UNUSABLE: "03",
    Result.TXN_NOT_ALLOWED: "58",
    Result.APP_UPDATE_REQUIRED: "07",
    Result.NOT_SIGNED_IN: "77",
    Result.MAC_INVALID: "A0",
    Result.KEY_UNAVAILABLE: "A7",
    Result.PIN_FORMAT: "99",
    Result.DUPLICATE: "94",
    Result.ORIGINAL_NOT_FOUND: "25",
    Result.ORIGINAL_NOT_USABLE: "12",
    Result.ORIGINAL_AMOUNT: "64",
    Result.INVALID_AMOUNT: "13",
    Result.RECORD_NOT_FOUND: "25",
    Result.UNKNOWN_CARD: "14",
    Result.CARD_EXPIRED: "54",
    Result.WRONG_PIN: "55",
    Result.PIN_TRIES_EXCEEDED: "75",
    Result.INSUFFICIENT_FUNDS: "51",
    Result.OVER_LIMIT: "61",
    Result.ISSUER_TIMEOUT: "98",
    Result.ISSUER_DECLINED: "05",
    Result.SYSTEM_ERROR: "96",
}


def response_code(result: Result, *, forced_code: str | None = None, issuer_timeout_code: str = "98") -> str:
    """Field 39 for a final result (the only mapping in the host)."""
    if result is Result.ISSUER_DECLINED and forced_code:
        return forced_code
    if result is Result.ISSUER_TIMEOUT:
        return issuer_timeout_code
    return _RESPONSE_CODES[result]

