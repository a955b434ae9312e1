"""Merchant, terminal and account lifecycle as operators use it (the CLI calls these).

Merchants: pending -> active (approve) or closed; active <-> frozen (freeze/unfreeze);
active/frozen -> closed (final). Terminals: active, suspended, disabled (enable brings
either back). Each change is one transaction with history, an evidence event and a
change-feed row, so a running host answers the next message accordingly (03 / 97).
"""

from __future__ import annotations

from typing import Any

from posdoctor.store import InvalidValue, Store
from posdoctor.store.lifecycle import InvalidTransition
from posdoctor.store.validate import validate_mid, validate_tid

DEFAULT_ACTOR = "cli"


def _require_reason(reason: str | None) -> str:
    if reason is None or not reason.strip():
        raise InvalidValue("reason", "必须填写原因(--reason)", "a reason is required (--reason)")
    if len(reason) > 200:
        raise InvalidValue("reason", "原因最多200个字符", "reason is at most 200 characters")
    return reason.strip()


def _expect(entity: str, key: str, current: str, expected: str, new: str) -> None:
    if current != expected:
        raise InvalidTransition(entity, key, current, new)


def approve_merchant(store: Store, mid: str, *, actor: str = DEFAULT_ACTOR, reason: str | None = None) -> Any:
    validate_mid(mid)
    _expect("merchant", mid, store.get_merchant(mid).status, "pending", "active")
    return store.change_merchant_status(mid, "active", reason=reason or "approved", actor=actor)


def freeze_merchant(store: Store, mid: str, reason: str, *, actor: str = DEFAULT_ACTOR) -> Any:
    validate_mid(mid)
    return store.change_merchant_status(mid, "frozen", reason=_require_reason(reason), actor=actor)


def unfreeze_merchant(store: Store, mid: str, *, actor: str = DEFAULT_ACTOR, reason: str | None = None) -> Any:
    validate_mid(mid)
    _expect("merchant", mid, store.get_merchant(mid).status, "frozen", "active")
    return store.change_merchant_status(mid, "active", reason=reason or "unfrozen", actor=actor)


def close_merchant(store: Store, mid: str, *, actor: str = DEFAULT_ACTOR, reason: str | None = None) -> Any:
    validate_mid(mid)
    return store.change_merchant_status(mid, "closed", reason=reason or "closed", actor=actor)


def disable_terminal(store: Store, tid: str, reason: str, *, actor: str = DEFAULT_ACTOR) -> Any:
    validate_tid(tid)
    return store.change_terminal_status(tid, "disabled", reason=_require_reason(reason), actor=actor)


def suspend_terminal(store: Store, tid: str, reason: str, *, actor: str = DEFAULT_ACTOR) -> Any:
    validate_tid(tid)
    return store.change_terminal_status(tid, "suspended", reason=_require_reason(reason), actor=actor)


def enable_terminal(store: Store, tid: str, *, actor: str = DEFAULT_ACTOR, reason: str | None = None) -> Any:
    validate_tid(tid)
    return store.change_terminal_status(tid, "active", reason=reason or "enabled", actor=actor)


def allow_types(store: Store, tid: str, types: str | None, *, actor: str = DEFAULT_ACTOR) -> str | None:
    """``types`` "sale,void" (or "all"/None: no restriction)."""
    validate_tid(tid)
    kinds = None if types is None or types.strip().lower() in ("all", "") else \
        [t.strip() for t in types.split(",") if t.strip()]
    return store.set_terminal_allowed_types(tid, kinds, actor=actor)


def set_account_status(store: Store, mid: str, status: str, reason: str | None, *,
                       actor: str = DEFAULT_ACTOR) -> Any:
    validate_mid(mid)
    if status == "invalid":
        reason = _require_reason(reason)
    return store.change_account_status(mid, status, reason=reason, actor=actor)


def history_rows(store: Store, entity: str, key: str) -> list[dict[str, Any]]:
    return [{"at": h.at.isoformat(), "old": h.old, "new": h.new, "reason": h.reason, "actor": h.actor}
            for h in store.status_history(entity, key)]


def account_json(store: Store, mid: str) -> dict[str, Any] | None:
    account = store.find_settlement_account(mid)
    if account is None:
        return None
    return {"number": account.number_masked, "bank": account.bank, "status": account.status,
            "reason": account.status_reason, "updated_at": account.updated_at.isoformat()}


def merchant_overview(store: Store, mid: str) -> dict[str, Any]:
    """Status, history, settlement account, terminals and payouts of one merchant."""
    from posdoctor.tms.payouts import payout_json

    validate_mid(mid)
    merchant = store.get_merchant(mid)
    return {
        "mid": mid, "name": merchant.name, "status": merchant.status, "reason": merchant.status_reason,
        "mcc": merchant.mcc, "history": history_rows(store, "merchant", mid),
        "account": account_json(store, mid),
        "terminals": [{"tid": t.tid, "status": t.status, "reason": t.status_reason, "serial": t.serial,
                       "model": t.model} for t in store.list_terminals(mid=mid)],
        "payouts": [payout_json(p) for p in store.payouts(mid)],
    }


def terminal_overview(store: Store, tid: str) -> dict[str, Any]:
    validate_tid(tid)
    terminal = store.get_terminal(tid)
    device = store.get_device(terminal.serial)
    version, _values = store.effective_params(tid)
    return {
        "tid": tid, "mid": terminal.mid, "status": terminal.status, "reason": terminal.status_reason,
        "serial": terminal.serial, "device_status": device.status, "model": terminal.model,
        "allowed_types": terminal.allowed_types.split(",") if terminal.allowed_types else None,
        "app_version": terminal.app_version, "params_version": version,
        "params_downloaded": terminal.params_version, "batch_no": terminal.batch_no,
        "last_signin_at": terminal.last_signin_at.isoformat() if terminal.last_signin_at else None,
        "history": history_rows(store, "terminal", tid),
        "operators": [{"opno": o.opno, "status": o.status, "failures": o.failures}
                      for o in store.list_operators(tid)],
    }
