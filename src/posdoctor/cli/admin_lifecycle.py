"""Lifecycle commands on ``merchant`` and ``terminal``: approve, freeze, unfreeze, close,
show, settlement account; disable, suspend, enable, allow, show.

Each change is written with its history, an evidence event and a change-feed row in one
transaction: a running host (any process) applies it within its poll interval. Bad input
and illegal transitions exit 2 and change nothing.
"""

from __future__ import annotations

import getpass
from typing import Annotated, Any

import typer

from posdoctor.cli.admin import (
    DbOption,
    JsonOption,
    _emit,
    _opened,
    _reporting,
    merchant_app,
    terminal_app,
)
from posdoctor.store.validate import validate_choice
from posdoctor.tms import registry as reg

STATUS_ZH = {"pending": "待审核", "active": "正常", "frozen": "冻结", "closed": "已注销", "suspended": "暂停",
             "disabled": "停用", "valid": "有效", "invalid": "无效", "lost": "丢失", "retired": "报废"}
ReasonOption = Annotated[str | None, typer.Option("--reason", help="原因 / reason (kept in the history)")]


def register(app: typer.Typer) -> None:
    """Commands attach to the ``merchant``/``terminal`` apps at import; nothing else to add."""


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name (containers): still say it came from the CLI
        return "cli"


def _status_line(kind_zh: str, kind: str, key: str, status: str, reason: str | None) -> str:
    why = f" ({reason})" if reason else ""
    return f"{kind_zh} {key} 现为{STATUS_ZH.get(status, status)} / {kind} {key} is now {status}{why}"


def _merchant_change(mid: str, db: str | None, as_json: bool, change: Any) -> None:
    with _reporting(as_json), _opened(db) as (store, _lmk):
        merchant = change(store)
    data = {"ok": True, "mid": mid, "status": merchant.status, "reason": merchant.status_reason}
    _emit(as_json, data, [_status_line("商户", "merchant", mid, merchant.status, merchant.status_reason)])


def _terminal_change(tid: str, db: str | None, as_json: bool, change: Any) -> None:
    with _reporting(as_json), _opened(db) as (store, _lmk):
        terminal = change(store)
    data = {"ok": True, "tid": tid, "status": terminal.status, "reason": terminal.status_reason}
    _emit(as_json, data, [_status_line("终端", "terminal", tid, terminal.status, terminal.status_reason)])


# --- merchants -----------------------------------------------------------------------


@merchant_app.command("approve", help="审核通过(待审核->正常) / approve a pending merchant")
def merchant_approve(mid: str, reason: ReasonOption = None, db: DbOption = None, as_json: JsonOption = False) -> None:
    _merchant_change(mid, db, as_json, lambda s: reg.approve_merchant(s, mid, actor=actor(), reason=reason))


@merchant_app.command("freeze", help="冻结商户(风控) / freeze a merchant (risk control)")
def merchant_freeze(mid: str, reason: Annotated[str, typer.Option("--reason", help="原因 / reason")],
                    db: DbOption = None, as_json: JsonOption = False) -> None:
    _merchant_change(mid, db, as_json, lambda s: reg.freeze_merchant(s, mid, reason, actor=actor()))


@merchant_app.command("unfreeze", help="解冻商户 / unfreeze a merchant")
def merchant_unfreeze(mid: str, reason: ReasonOption = None, db: DbOption = None, as_json: JsonOption = False) -> None:
    _merchant_change(mid, db, as_json, lambda s: reg.unfreeze_merchant(s, mid, actor=actor(), reason=reason))


@merchant_app.command("close", help="注销商户(不可恢复) / close a merchant (final)")
def merchant_close(mid: str, reason: ReasonOption = None, db: DbOption = None, as_json: JsonOption = False) -> None:
    _merchant_change(mid, db, as_json, lambda s: reg.close_merchant(s, mid, actor=actor(), reason=reason))


@merchant_app.command("account", help="登记结算账户 / set the settlement account")
def merchant_account(
    mid: str,
    number: Annotated[str, typer.Option("--number", help="结算账号 / account number (8-32 digits)")],
    bank: Annotated[str, typer.Option("--bank", help="开户行 / bank name")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    with _reporting(as_json):
        reg.validate_mid(mid)
        with _opened(db) as (store, _lmk):
            account = store.set_settlement_account(mid, number, bank, actor=actor())
    data = {"ok": True, "mid": mid, "number": account.number_masked, "bank": bank, "status": account.status}
    _emit(as_json, data, [f"商户 {mid} 结算账户 {account.number_masked}({bank})已登记 / "
                          f"merchant {mid} settlement account {account.number_masked} at {bank} registered"])


@merchant_app.command("account-status", help="结算账户状态 valid|invalid / mark the settlement account valid or invalid")
def merchant_account_status(
    mid: str,
    status: Annotated[str, typer.Argument(help="valid | invalid")],
    reason: ReasonOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    with _reporting(as_json):
        validate_choice("status", status, ("valid", "invalid"))
        with _opened(db) as (store, _lmk):
            account = reg.set_account_status(store, mid, status, reason, actor=actor())
    data = {"ok": True, "mid": mid, "status": account.status, "reason": account.status_reason}
    _emit(as_json, data, [_status_line("商户结算账户", "settlement account of merchant", mid, account.status,
                                       account.status_reason)])


def _history_lines(history: list[dict[str, Any]]) -> list[str]:
    return [f"    {h['at'][:19]}  {h['old'] or '-'} -> {h['new']}  {h['reason'] or ''}  [{h['actor'] or '-'}]"
            for h in history]


@merchant_app.command("show", help="商户详情 / merchant status, history, account, terminals, payouts")
def merchant_show(mid: str, db: DbOption = None, as_json: JsonOption = False) -> None:
    with _reporting(as_json), _opened(db) as (store, _lmk):
        data = reg.merchant_overview(store, mid)
    account = data["account"]
    lines = [f"商户 / merchant {mid}  {data['name']}",
             f"  状态 / status: {data['status']} ({STATUS_ZH.get(data['status'], '')})"
             + (f"  原因 / reason: {data['reason']}" if data["reason"] else ""),
             f"  MCC: {data['mcc'] or '-'}",
             "  结算账户 / account: " + (f"{account['number']} {account['bank']} {account['status']}"
                                        + (f" ({account['reason']})" if account["reason"] else "")
                                        if account else "无 / none"),
             "  历史 / history:", *_history_lines(data["history"]),
             "  终端 / terminals:",
             *[f"    {t['tid']}  {t['status']}  SN {t['serial']}" + (f"  ({t['reason']})" if t["reason"] else "")
               for t in data["terminals"]],
             "  付款 / payouts:",
             *[f"    #{p['id']} {p['day']} {p['amount'] / 100:.2f} {p['status']}"
               + (f" ({p['hold_reason']})" if p["hold_reason"] else "") for p in data["payouts"]]]
    _emit(as_json, data, lines)


# --- terminals -----------------------------------------------------------------------


@terminal_app.command("disable", help="停用终端 / disable a terminal (host answers 97)")
def terminal_disable(tid: str, reason: Annotated[str, typer.Option("--reason", help="原因 / reason")],
                     db: DbOption = None, as_json: JsonOption = False) -> None:
    _terminal_change(tid, db, as_json, lambda s: reg.disable_terminal(s, tid, reason, actor=actor()))


@terminal_app.command("suspend", help="暂停终端 / suspend a terminal (host answers 97)")
def terminal_suspend(tid: str, reason: Annotated[str, typer.Option("--reason", help="原因 / reason")],
                     db: DbOption = None, as_json: JsonOption = False) -> None:
    _terminal_change(tid, db, as_json, lambda s: reg.suspend_terminal(s, tid, reason, actor=actor()))


@terminal_app.command("enable", help="启用终端 / enable a disabled or suspended terminal")
def terminal_enable(tid: str, reason: ReasonOption = None, db: DbOption = None, as_json: JsonOption = False) -> None:
    _terminal_change(tid, db, as_json, lambda s: reg.enable_terminal(s, tid, actor=actor(), reason=reason))


@terminal_app.command("allow", help="允许的交易类型 / transaction types the terminal may send")
def terminal_allow(
    tid: str,
    types: Annotated[str, typer.Option("--types", help="sale,void,refund,balance 或 all / or all")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    with _reporting(as_json), _opened(db) as (store, _lmk):
        stored = reg.allow_types(store, tid, types, actor=actor())
    shown = stored or "all"
    _emit(as_json, {"ok": True, "tid": tid, "allowed_types": stored.split(",") if stored else None},
          [f"终端 {tid} 允许的交易类型: {shown} / terminal {tid} allowed types: {shown}"])


@terminal_app.command("show", help="终端详情 / terminal status, history, device, versions, operators")
def terminal_show(tid: str, db: DbOption = None, as_json: JsonOption = False) -> None:
    with _reporting(as_json), _opened(db) as (store, _lmk):
        data = reg.terminal_overview(store, tid)
    allowed = ",".join(data["allowed_types"]) if data["allowed_types"] else "all"
    lines = [f"终端 / terminal {tid}  商户 / merchant {data['mid']}",
             f"  状态 / status: {data['status']} ({STATUS_ZH.get(data['status'], '')})"
             + (f"  原因 / reason: {data['reason']}" if data["reason"] else ""),
             f"  设备 / device: {data['serial']} {data['model'] or '-'} ({data['device_status']})",
             f"  应用版本 / app version: {data['app_version'] or '-'}",
             f"  参数版本 / params: {data['params_version']} (已下载 / downloaded {data['params_downloaded'] or 0})",
             f"  允许交易 / allowed types: {allowed}",
             "  历史 / history:", *_history_lines(data["history"]),
             "  操作员 / operators: " + (", ".join(f"{o['opno']}({o['status']})" for o in data["operators"]) or "-")]
    _emit(as_json, data, lines)
