"""Registry part of the ``Store``: merchants, devices, terminals and their keys.

Every write here also adds a change-feed row (``host_changes``, kind ``registry``) so
running hosts reload what changed (see ``lifecycle`` and ``host.changefeed``). The raw
status setters (``set_merchant_status``, ``update_terminal(status=...)``) skip the
lifecycle's transition rules but still leave history and a ``status_change`` event."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from posdoctor.store.base import StoreBase, insert_new, key_rows, wrapped_key_from_row
from posdoctor.store.errors import AlreadyExists, InvalidValue, NotFound
from posdoctor.store.lifecycle import add_host_change, record_status_change
from posdoctor.store.models import Device, Merchant, Terminal, TerminalKey, utcnow
from posdoctor.store.records import WrappedKeyLike
from posdoctor.store.validate import (
    REGISTRY_STATUSES,
    validate_choice,
    validate_mid,
    validate_serial,
    validate_tid,
)


def retire_keys(session: Session, tid: str, kinds: list[str]) -> None:
    session.execute(
        update(TerminalKey)
        .where(TerminalKey.tid == tid, TerminalKey.kind.in_(kinds), TerminalKey.active)
        .values(active=False)
    )


def store_keys(
    session: Session, tid: str, keys: Mapping[str, WrappedKeyLike], at: datetime | None
) -> None:
    """Retire the active keys of the given kinds and store the new ones (no commit)."""
    rows = key_rows(tid, keys, at)
    retire_keys(session, tid, [row.kind for row in rows])
    session.add_all(rows)


class RegistryMixin(StoreBase):
    # --- merchants -----------------------------------------------------------------
    def add_merchant(self, mid: str, name: str, status: str = "active", *, mcc: str | None = None) -> Merchant:
        validate_mid(mid)
        validate_choice("status", status, REGISTRY_STATUSES)
        if mcc is not None and not (len(mcc) == 4 and mcc.isdigit()):
            raise InvalidValue("mcc", "商户类别码(MCC)必须是4位数字", "MCC must be 4 digits")
        with self._write() as session:
            if session.get(Merchant, mid) is not None:
                raise AlreadyExists("merchant", mid)
            merchant = Merchant(mid=mid, name=name, status=status, mcc=mcc)
            insert_new(session, merchant, "merchant", mid)
        return merchant

    def get_merchant(self, mid: str) -> Merchant:
        with self._read() as session:
            merchant = session.get(Merchant, mid)
        if merchant is None:
            raise NotFound("merchant", mid)
        return merchant

    def list_merchants(self) -> list[Merchant]:
        with self._read() as session:
            return list(session.scalars(select(Merchant).order_by(Merchant.mid)))

    def set_merchant_status(self, mid: str, status: str, reason: str | None = None) -> None:
        validate_choice("status", status, REGISTRY_STATUSES)
        with self._write() as session:
            merchant = session.get(Merchant, mid)
            if merchant is None:
                raise NotFound("merchant", mid)
            if merchant.status != status:
                record_status_change(session, "merchant", mid, merchant.status, status, reason=reason,
                                     actor=None, at=utcnow())
            merchant.status, merchant.status_reason = status, reason
            add_host_change(session, "registry", mid=mid, value=status)

    # --- devices -------------------------------------------------------------------
    def add_device(self, serial: str, model: str | None = None) -> Device:
        validate_serial(serial)
        with self._write() as session:
            if session.get(Device, serial) is not None:
                raise AlreadyExists("device", serial)
            device = Device(serial=serial, model=model)
            insert_new(session, device, "device", serial)
        return device

    def get_device(self, serial: str) -> Device:
        with self._read() as session:
            device = session.get(Device, serial)
        if device is None:
            raise NotFound("device", serial)
        return device

    # --- terminals -----------------------------------------------------------------
    def add_terminal(
        self,
        tid: str,
        mid: str,
        serial: str,
        model: str | None = None,
        keys: Mapping[str, WrappedKeyLike] | None = None,
        *,
        register_device: bool = True,
        now: datetime | None = None,
    ) -> Terminal:
        """Register a terminal (and its device, unless ``register_device`` is false),
        with keys the caller's HSM generated (e.g. ``{"TK": tk, "TMK": tmk}``), in one
        transaction."""
        validate_tid(tid)
        validate_mid(mid)
        validate_serial(serial)
        with self._write() as session:
            if session.get(Terminal, tid) is not None:
                raise AlreadyExists("terminal", tid)
            if session.get(Merchant, mid) is None:
                raise NotFound("merchant", mid)
            if session.get(Device, serial) is None:
                if not register_device:
                    raise NotFound("device", serial)
                session.add(Device(serial=serial, model=model))
                session.flush()  # the terminal's foreign key needs the device first
            terminal = Terminal(tid=tid, mid=mid, serial=serial, model=model)
            insert_new(session, terminal, "terminal", tid)
            if keys:
                store_keys(session, tid, keys, now)
            add_host_change(session, "registry", tid=tid, mid=mid, value="added")
        return terminal

    def get_terminal(self, tid: str) -> Terminal:
        with self._read() as session:
            terminal = session.get(Terminal, tid)
        if terminal is None:
            raise NotFound("terminal", tid)
        return terminal

    def list_terminals(self, mid: str | None = None, status: str | None = None) -> list[Terminal]:
        query = select(Terminal).order_by(Terminal.tid)
        if mid is not None:
            query = query.where(Terminal.mid == mid)
        if status is not None:
            query = query.where(Terminal.status == status)
        with self._read() as session:
            return list(session.scalars(query))

    def terminals_by_serial(self, serial: str) -> list[Terminal]:
        with self._read() as session:
            query = select(Terminal).where(Terminal.serial == serial).order_by(Terminal.tid)
            return list(session.scalars(query))

    def update_terminal(self, tid: str, **changes: Any) -> Terminal:
        """Change registry columns (status, status_reason, serial, model, batch_no...)."""
        allowed = {"status", "status_reason", "serial", "model", "batch_no", "mid", "last_signin_at"}
        unknown = set(changes) - allowed
        if unknown:
            raise TypeError(f"update_terminal: unknown columns {sorted(unknown)}")
        if "status" in changes:
            validate_choice("status", changes["status"], REGISTRY_STATUSES)
        with self._write() as session:
            terminal = session.get(Terminal, tid)
            if terminal is None:
                raise NotFound("terminal", tid)
            if "mid" in changes and session.get(Merchant, changes["mid"]) is None:
                raise NotFound("merchant", changes["mid"])
            if "serial" in changes and session.get(Device, changes["serial"]) is None:
                raise NotFound("device", changes["serial"])
            if "status" in changes and changes["status"] != terminal.status:
                record_status_change(session, "terminal", tid, terminal.status, changes["status"],
                                     reason=changes.get("status_reason"), actor=None, at=utcnow(), tid=tid)
            for column, value in changes.items():
                setattr(terminal, column, value)
            add_host_change(session, "registry", tid=tid, value=",".join(sorted(changes))[:200])
        return terminal

    # --- keys ----------------------------------------------------------------------
    def set_terminal_keys(
        self, tid: str, keys: Mapping[str, WrappedKeyLike], *, now: datetime | None = None
    ) -> None:
        """Store wrapped keys by kind (TK, TMK, PIK, MAK, TDK); earlier keys of those
        kinds stay as inactive history."""
        with self._write() as session:
            if session.get(Terminal, tid) is None:
                raise NotFound("terminal", tid)
            store_keys(session, tid, keys, now)
            add_host_change(session, "registry", tid=tid, value="keys")

    def get_terminal_keys(self, tid: str) -> dict[str, Any]:
        """Active keys by kind, as the HSM's ``WrappedKey``s (never clear)."""
        return {row.kind: wrapped_key_from_row(row) for row in self.terminal_key_rows(tid)}

    def terminal_key_rows(self, tid: str, *, include_retired: bool = False) -> list[TerminalKey]:
        """Key rows (blob, KCV, issue time) oldest first; the doctor compares issue times."""
        query = select(TerminalKey).where(TerminalKey.tid == tid)
        if not include_retired:
            query = query.where(TerminalKey.active)
        with self._read() as session:
            return list(session.scalars(query.order_by(TerminalKey.issued_at, TerminalKey.id)))
