"""Provisioning: register a terminal with its transport key and TMK; issue test cards.

The clear TK and TMK come back once, in a `KeyRoomSheet`, for the key room (the stand-in
for injecting them into the device) and for tests; the store keeps them only wrapped
under the LMK. A sheet's repr shows check values only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from typing import Any

from sqlalchemy import Connection, insert, select

from posdoctor.crypto.ciphers import Algorithm
from posdoctor.crypto.hsm import SoftHSM, WrappedKey
from posdoctor.store import Store
from posdoctor.store.base import key_rows
from posdoctor.store.errors import AlreadyExists, NotFound
from posdoctor.store.models import Device, Merchant, Terminal, TerminalKey
from posdoctor.store.validate import validate_mid, validate_serial, validate_tid

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


@dataclass(frozen=True)
class TerminalSpec:
    """One terminal for `provision_terminals`."""

    tid: str
    mid: str
    serial: str
    model: str | None = None


def provision_terminals(
    store: Store,
    hsm: SoftHSM,
    specs: Sequence[TerminalSpec],
    *,
    alg: Algorithm = Algorithm.TDES,
    now: datetime | None = None,
) -> list[KeyRoomSheet]:
    """`provision_terminal` for many terminals at once (fleets, benchmarks): the same
    checks, keys from the same HSM, all rows in ONE transaction with a few bulk inserts.

    Nothing is written if any TID or serial is taken (`AlreadyExists`), a merchant is
    unknown (`NotFound`) or an identifier is invalid (`InvalidValue`).
    """
    for spec in specs:
        validate_tid(spec.tid)
        validate_mid(spec.mid)
        validate_serial(spec.serial)
    _refuse_repeats("terminal", [s.tid for s in specs])
    _refuse_repeats("device", [s.serial for s in specs])
    keys = [(hsm.generate_key(TRANSPORT_KEY_LENGTH, alg), hsm.generate_key(TRANSPORT_KEY_LENGTH, alg))
            for _ in specs]
    with store._write() as session:  # noqa: SLF001 - one store transaction, bulk statements
        conn = session.connection()
        _refuse_existing(conn, Terminal.tid, [s.tid for s in specs], "terminal")
        _refuse_existing(conn, Device.serial, [s.serial for s in specs], "device")
        mids = {s.mid for s in specs}
        known = set(conn.scalars(select(Merchant.mid).where(Merchant.mid.in_(mids))))
        for mid in sorted(mids - known):
            raise NotFound("merchant", mid)
        if specs:
            stamp = {} if now is None else {"created_at": now}
            conn.execute(insert(Device), [{"serial": s.serial, "model": s.model, **stamp} for s in specs])
            conn.execute(insert(Terminal), [{"tid": s.tid, "mid": s.mid, "serial": s.serial, "model": s.model,
                                             **stamp} for s in specs])
            rows = [row for spec, (tk, tmk) in zip(specs, keys, strict=True)
                    for row in key_rows(spec.tid, {"TK": tk, "TMK": tmk}, now)]
            conn.execute(insert(TerminalKey), [
                {"tid": r.tid, "kind": r.kind, "blob": r.blob, "kcv": r.kcv, "alg": r.alg,
                 "length": r.length, "issued_at": r.issued_at, "active": True} for r in rows])
    return [_sheet(hsm, tk, tmk) for tk, tmk in keys]


def _refuse_repeats(entity: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise AlreadyExists(entity, value)
        seen.add(value)


def _refuse_existing(conn: Connection, column: Any, values: list[str], entity: str, chunk: int = 500) -> None:
    for start in range(0, len(values), chunk):
        taken = conn.scalars(select(column).where(column.in_(values[start:start + chunk]))).first()
        if taken is not None:
            raise AlreadyExists(entity, taken)


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
