"""Provisioning: register a terminal with its transport key and TMK; issue test cards.

The clear TK and TMK come back once, in a `KeyRoomSheet`, for the key room (the stand-in
for injecting them into the device) and for tests; the store keeps them only wrapped
under the LMK. A sheet's repr shows check values only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from posdoctor.crypto.ciphers import Algorithm
from posdoctor.crypto.hsm import SoftHSM, WrappedKey
from posdoctor.store import Store

TRANSPORT_KEY_LENGTH = 16


@dataclass(frozen=True)
class KeyRoomSheet:
    tk: bytes = field(repr=False)
    tmk: bytes = field(repr=False)
    tk_kcv: bytes
    tmk_kcv: bytes


@dataclass(frozen=True)
class CardSheet:
    card_id: int
    account_id: int
    pan_masked: str


def _sheet(hsm: SoftHSM, tk: WrappedKey, tmk: WrappedKey) -> KeyRoomSheet:
    return KeyRoomSheet(
        tk=hsm.reveal_for_key_room(tk), tmk=hsm.reveal_for_key_room(tmk),
        tk_kcv=hsm.key_check_value(tk), tmk_kcv=hsm.key_check_value(tmk),
    )


def provision_terminal(
    store: Store,
    hsm: SoftHSM,
    tid: str,
    mid: str,
    serial: str,
    model: str | None = None,
    *,
    alg: Algorithm = Algorithm.TDES,
    now: datetime | None = None,
) -> KeyRoomSheet:
    """Register TID under MID on device `serial` with a new TK and TMK (one transaction).

    Raises the store's `AlreadyExists` / `NotFound` / `InvalidValue` for a taken TID, an
    unknown merchant or bad identifiers. `alg=SM4` gives SM4 keys (sign-in 006).
    """
    tk = hsm.generate_key(TRANSPORT_KEY_LENGTH, alg)
    tmk = hsm.generate_key(TRANSPORT_KEY_LENGTH, alg)
    store.add_terminal(tid, mid, serial, model, keys={"TK": tk, "TMK": tmk}, now=now)
    return _sheet(hsm, tk, tmk)


def rekey_terminal(
    store: Store, hsm: SoftHSM, tid: str, *, alg: Algorithm = Algorithm.TDES, now: datetime | None = None
) -> KeyRoomSheet:
    """New TK and TMK for a registered terminal (the old ones stay as history)."""
    tk = hsm.generate_key(TRANSPORT_KEY_LENGTH, alg)
    tmk = hsm.generate_key(TRANSPORT_KEY_LENGTH, alg)
    store.set_terminal_keys(tid, {"TK": tk, "TMK": tmk}, now=now)
    return _sheet(hsm, tk, tmk)


def provision_card(
    store: Store,
    hsm: SoftHSM | None,
    pan: str,
    pin: str,
    balance: int,
    *,
    expiry: str | None = None,
    status: str = "active",
    single_limit: int | None = None,
    daily_limit: int | None = None,
) -> CardSheet:
    """Issue a test card with its own account. The store seals the PIN under the LMK;
    `hsm` is not needed for that and may be None (kept for a uniform call shape)."""
    card = store.add_card(pan, pin, balance=balance, expiry=expiry, status=status,
                          single_limit=single_limit, daily_limit=daily_limit)
    return CardSheet(card.id, card.account_id, card.pan_masked)
