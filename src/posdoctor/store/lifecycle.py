"""``LifecycleMixin``: status changes with history and events, and the host change feed.

Every status change (merchant, terminal, settlement account, operator, device) is one
transaction that writes the new status, a ``status_history`` row, an ``Event``
(source ``tms``, kind ``status_change``) and, when a running host must act on it, a
``host_changes`` row (the change feed the host polls). Illegal transitions raise
:class:`InvalidTransition` and change nothing.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from posdoctor.store.base import StoreBase
from posdoctor.store.errors import InvalidValue, NotFound, StoreError
from posdoctor.store.models import Device, Event, Merchant, Terminal, utcnow
from posdoctor.store.models_registry import HostChange, SettlementAccount, StatusChange
from posdoctor.store.records import TXN_KINDS

MERCHANT_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"active", "closed"}),
    "active": frozenset({"frozen", "closed"}),
    "frozen": frozenset({"active", "closed"}),
    "closed": frozenset(),
}
TERMINAL_TRANSITIONS: dict[str, frozenset[str]] = {
    "active": frozenset({"suspended", "disabled"}),
    "suspended": frozenset({"active", "disabled"}),
    "disabled": frozenset({"active"}),
}
ACCOUNT_TRANSITIONS = {"valid": frozenset({"invalid"}), "invalid": frozenset({"valid"})}
DEVICE_TRANSITIONS = {"active": frozenset({"lost", "retired"}), "lost": frozenset({"active", "retired"}),
                      "retired": frozenset({"active"})}
OPERATOR_TRANSITIONS = {"active": frozenset({"locked"}), "locked": frozenset({"active"})}
STATUS_NAMES_ZH = {"pending": "待审核", "active": "正常", "frozen": "冻结", "closed": "已注销",
                   "suspended": "暂停", "disabled": "停用", "valid": "有效", "invalid": "无效",
                   "locked": "锁定", "lost": "丢失", "retired": "报废"}
ENTITY_ZH = {"merchant": "商户", "terminal": "终端", "account": "结算账户", "operator": "操作员", "device": "设备"}
HOST_CHANGE_KINDS = ("registry", "policy", "params", "require_sign_in", "pending")
_MCC = re.compile(r"[0-9]{4}")
_ACCOUNT = re.compile(r"[0-9]{8,32}")


class InvalidTransition(InvalidValue):
    """A status change the lifecycle does not allow (e.g. unfreeze a closed merchant)."""

    def __init__(self, entity: str, key: str, old: str, new: str) -> None:
        zh_old, zh_new = STATUS_NAMES_ZH.get(old, old), STATUS_NAMES_ZH.get(new, new)
        if old == new:
            zh, en = f"{ENTITY_ZH[entity]} {key} 已是{zh_new}状态", f"{entity} {key} is already {new}"
        else:
            zh = f"{ENTITY_ZH[entity]} {key} 当前为{zh_old}，不能改为{zh_new}"
            en = f"{entity} {key} is {old}: it cannot become {new}"
        super().__init__("status", zh, en)
        self.entity, self.key, self.old, self.new = entity, key, old, new


class NoSettlementAccount(NotFound):
    def __init__(self, mid: str) -> None:
        StoreError.__init__(self, f"商户 {mid} 没有结算账户", f"merchant {mid} has no settlement account")
        self.entity, self.key = "settlement account", mid


def check_transition(table: dict[str, frozenset[str]], entity: str, key: str, old: str, new: str) -> None:
    if new not in table:
        raise InvalidValue("status", f"状态 {new} 无效(应为 {'/'.join(table)})",
                           f"status {new} is invalid (expected {'/'.join(table)})")
    if new not in table.get(old, frozenset()):
        raise InvalidTransition(entity, key, old, new)


def validate_mcc(mcc: str) -> str:
    if not _MCC.fullmatch(mcc):
        raise InvalidValue("mcc", "商户类别码(MCC)必须是4位数字", "MCC must be 4 digits")
    return mcc


def validate_txn_types(types: list[str]) -> list[str]:
    unknown = [t for t in types if t not in TXN_KINDS]
    if unknown or not types:
        raise InvalidValue("types", f"交易类型无效: {','.join(unknown) or '(空)'}(可选 {','.join(TXN_KINDS)})",
                           f"invalid transaction types: {','.join(unknown) or '(none)'} "
                           f"(choose from {','.join(TXN_KINDS)})")
    return sorted(set(types), key=TXN_KINDS.index)


def mask_account(number: str) -> str:
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def record_status_change(
    session: Session, entity: str, key: str, old: str | None, new: str, *, reason: str | None,
    actor: str | None, at: datetime, tid: str | None = None,
) -> None:
    """History row + evidence event for one status change (no commit)."""
    session.add(StatusChange(at=at, entity=entity, key=key, old=old, new=new, reason=reason, actor=actor))
    session.add(Event(at=at, source="tms", kind="status_change", tid=tid, code=new,
                      detail={"entity": entity, "id": key, "old": old, "new": new, "reason": reason, "actor": actor}))


def add_host_change(session: Session, kind: str, *, tid: str | None = None, mid: str | None = None,
                    value: str | None = None, at: datetime | None = None) -> None:
    if kind not in HOST_CHANGE_KINDS:
        raise InvalidValue("kind", f"主机变更类型 {kind} 无效", f"host change kind {kind} is invalid")
    session.add(HostChange(at=at or utcnow(), kind=kind, tid=tid, mid=mid, value=value))


class LifecycleMixin(StoreBase):
    # --- change feed -------------------------------------------------------------------
    def notify_host(self, kind: str, tid: str | None = None, mid: str | None = None,
                    value: str | None = None) -> None:
        """Tell running hosts (any process) to apply a change: ``registry`` (reload tid, the
        terminals of mid, or everything), ``policy``, ``params``, ``require_sign_in`` (tid),
        ``pending`` (tid, value = processing requirement digit)."""
        with self._write() as session:
            add_host_change(session, kind, tid=tid, mid=mid, value=value)

    def host_changes_after(self, last_id: int, limit: int = 1000) -> list[HostChange]:
        query = select(HostChange).where(HostChange.id > last_id).order_by(HostChange.id).limit(limit)
        with self._read() as session:
            return list(session.scalars(query))

    def prune_host_changes(self, before: datetime) -> int:
        """Delete feed rows written before ``before`` (every live host has read them)."""
        with self._write() as session:
            return int(session.execute(delete(HostChange).where(HostChange.at < before)).rowcount or 0)

    def last_host_change_id(self) -> int:
        with self._read() as session:
            return int(session.scalar(select(func.max(HostChange.id))) or 0)

    # --- history -----------------------------------------------------------------------
    def status_history(self, entity: str, key: str) -> list[StatusChange]:
        query = (select(StatusChange).where(StatusChange.entity == entity, StatusChange.key == key)
                 .order_by(StatusChange.at, StatusChange.id))
        with self._read() as session:
            return list(session.scalars(query))

    # --- merchants ---------------------------------------------------------------------
    def change_merchant_status(self, mid: str, new: str, *, reason: str | None = None,
                               actor: str | None = None, now: datetime | None = None) -> Merchant:
        at = now or utcnow()
        with self._write() as session:
            merchant = session.get(Merchant, mid)
            if merchant is None:
                raise NotFound("merchant", mid)
            old = merchant.status
            check_transition(MERCHANT_TRANSITIONS, "merchant", mid, old, new)
            merchant.status, merchant.status_reason = new, reason
            record_status_change(session, "merchant", mid, old, new, reason=reason, actor=actor, at=at)
            add_host_change(session, "registry", mid=mid, value=new, at=at)
        return merchant

    def set_merchant_mcc(self, mid: str, mcc: str | None, *, actor: str | None = None) -> None:
        if mcc is not None:
            validate_mcc(mcc)
        with self._write() as session:
            merchant = session.get(Merchant, mid)
            if merchant is None:
                raise NotFound("merchant", mid)
            merchant.mcc = mcc
            add_host_change(session, "registry", mid=mid, value=f"mcc={mcc}")

    # --- terminals ---------------------------------------------------------------------
    def change_terminal_status(self, tid: str, new: str, *, reason: str | None = None,
                               actor: str | None = None, now: datetime | None = None) -> Terminal:
        at = now or utcnow()
        with self._write() as session:
            terminal = session.get(Terminal, tid)
            if terminal is None:
                raise NotFound("terminal", tid)
            old = terminal.status
            check_transition(TERMINAL_TRANSITIONS, "terminal", tid, old, new)
            terminal.status, terminal.status_reason = new, reason
            record_status_change(session, "terminal", tid, old, new, reason=reason, actor=actor, at=at, tid=tid)
            add_host_change(session, "registry", tid=tid, mid=terminal.mid, value=new, at=at)
        return terminal

    def set_terminal_allowed_types(self, tid: str, types: list[str] | None, *,
                                   actor: str | None = None) -> str | None:
        """Restrict the kinds a terminal may send (None = all); returns the stored list."""
        stored = ",".join(validate_txn_types(types)) if types is not None else None
        at = utcnow()
        with self._write() as session:
            terminal = session.get(Terminal, tid)
            if terminal is None:
                raise NotFound("terminal", tid)
            old, terminal.allowed_types = terminal.allowed_types, stored
            session.add(Event(at=at, source="tms", kind="policy_change", tid=tid, code="allowed_types",
                              detail={"entity": "terminal", "id": tid, "old": old, "new": stored,
                                      "actor": actor, "reason": None}))
            add_host_change(session, "registry", tid=tid, mid=terminal.mid, value="allowed_types", at=at)
        return stored

    def record_terminal_report(self, tid: str, *, app_version: str | None = None,
                               params_version: int | None = None) -> None:
        """What a terminal reported about itself (no change feed: the reporter knows)."""
        with self._write() as session:
            terminal = session.get(Terminal, tid)
            if terminal is None:
                raise NotFound("terminal", tid)
            if app_version is not None:
                terminal.app_version = app_version
            if params_version is not None:
                terminal.params_version = params_version

    # --- devices -----------------------------------------------------------------------
    def change_device_status(self, serial: str, new: str, *, reason: str | None = None,
                             actor: str | None = None, now: datetime | None = None) -> Device:
        at = now or utcnow()
        with self._write() as session:
            device = session.get(Device, serial)
            if device is None:
                raise NotFound("device", serial)
            old = device.status
            check_transition(DEVICE_TRANSITIONS, "device", serial, old, new)
            device.status = new
            record_status_change(session, "device", serial, old, new, reason=reason, actor=actor, at=at)
            for tid in session.scalars(select(Terminal.tid).where(Terminal.serial == serial)):
                add_host_change(session, "registry", tid=tid, value=f"device {new}", at=at)
        return device

    def list_devices(self) -> list[Device]:
        with self._read() as session:
            return list(session.scalars(select(Device).order_by(Device.serial)))

    # --- settlement accounts -----------------------------------------------------------
    def set_settlement_account(self, mid: str, number: str, bank: str, *, actor: str | None = None,
                               now: datetime | None = None) -> SettlementAccount:
        """Register (or replace) the merchant's account; a new account starts valid."""
        if not _ACCOUNT.fullmatch(number):
            raise InvalidValue("number", "结算账号必须是8到32位数字", "account number must be 8 to 32 digits")
        if not bank.strip() or len(bank) > 100:
            raise InvalidValue("bank", "开户行必须是1到100个字符", "bank name must be 1 to 100 characters")
        at = now or utcnow()
        with self._write() as session:
            if session.get(Merchant, mid) is None:
                raise NotFound("merchant", mid)
            account = session.get(SettlementAccount, mid)
            old = account.status if account is not None else None
            if account is None:
                account = SettlementAccount(mid=mid)
                session.add(account)
            account.number_masked, account.bank = mask_account(number), bank
            account.number_hash = self.secrets.pan_hash("account:" + number)
            account.status, account.status_reason, account.updated_at = "valid", None, at
            record_status_change(session, "account", mid, old, "valid", reason=f"account {mask_account(number)} "
                                 f"at {bank}", actor=actor, at=at)
        return account

    def find_settlement_account(self, mid: str) -> SettlementAccount | None:
        with self._read() as session:
            return session.get(SettlementAccount, mid)

    def change_account_status(self, mid: str, new: str, *, reason: str | None = None,
                              actor: str | None = None, now: datetime | None = None) -> SettlementAccount:
        at = now or utcnow()
        with self._write() as session:
            account = session.get(SettlementAccount, mid)
            if account is None:
                raise NoSettlementAccount(mid)
            old = account.status
            check_transition(ACCOUNT_TRANSITIONS, "account", mid, old, new)
            account.status, account.status_reason, account.updated_at = new, reason, at
            record_status_change(session, "account", mid, old, new, reason=reason, actor=actor, at=at)
        return account

    def registry_profile_rows(self, tid: str | None = None) -> dict[str, Any]:
        """What the host's profile cache needs (all terminals, or one with its merchant
        and device), in one read (see ``host.profiles``)."""
        terminals = select(Terminal.tid, Terminal.mid, Terminal.serial, Terminal.status_reason,
                           Terminal.allowed_types, Terminal.app_version, Terminal.params_version)
        merchants = select(Merchant.mid, Merchant.status_reason, Merchant.mcc)
        devices = select(Device.serial, Device.status)
        with self._read() as session:
            if tid is not None:
                terminals = terminals.where(Terminal.tid == tid)
                row = session.execute(terminals).first()
                if row is None:
                    return {"terminals": [], "merchants": [], "devices": []}
                merchants = merchants.where(Merchant.mid == row.mid)
                devices = devices.where(Device.serial == row.serial)
            return {"terminals": session.execute(terminals).all(), "merchants": session.execute(merchants).all(),
                    "devices": session.execute(devices).all()}
