"""``operator``, ``policy``, ``params`` and ``payout`` commands.

Policies and parameters are versioned evidence: each change is an event with the old
and new value and who made it, and a change-feed row so running hosts apply it at once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from posdoctor.cli.admin import DbOption, JsonOption, _emit, _opened, _reporting
from posdoctor.cli.admin_lifecycle import actor
from posdoctor.store import InvalidValue
from posdoctor.store.validate import validate_mid, validate_tid
from posdoctor.tms import operators, params, payouts, policies

operator_app = typer.Typer(help="终端操作员 / terminal operators", no_args_is_help=True)
policy_app = typer.Typer(help="策略 / policies", no_args_is_help=True)
params_app = typer.Typer(help="终端参数 / terminal parameters", no_args_is_help=True)
payout_app = typer.Typer(help="商户结算款 / merchant payouts", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(operator_app, name="operator")
    app.add_typer(policy_app, name="policy")
    app.add_typer(params_app, name="params")
    app.add_typer(payout_app, name="payout")


# --- operators -----------------------------------------------------------------------


@operator_app.command("add", help="添加操作员 / add an operator to a terminal")
def operator_add(
    tid: str,
    opno: Annotated[str, typer.Argument(help="操作员号 / operator number (2-4 digits)")],
    password: Annotated[str, typer.Option("--password", prompt="密码 / password", hide_input=True,
                                          help="密码 / password (4-12 letters or digits)")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    with _reporting(as_json):
        operators.validate_operator(tid, opno)
        with _opened(db) as (store, _lmk):
            operators.add_operator(store, tid, opno, password)
    _emit(as_json, {"ok": True, "tid": tid, "opno": opno, "status": "active"},
          [f"终端 {tid} 操作员 {opno} 已添加 / operator {opno} added to terminal {tid}"])


@operator_app.command("unlock", help="解锁操作员 / unlock an operator")
def operator_unlock(tid: str, opno: str, db: DbOption = None, as_json: JsonOption = False) -> None:
    with _reporting(as_json):
        operators.validate_operator(tid, opno)
        with _opened(db) as (store, _lmk):
            operators.unlock_operator(store, tid, opno, actor=actor())
    _emit(as_json, {"ok": True, "tid": tid, "opno": opno, "status": "active"},
          [f"终端 {tid} 操作员 {opno} 已解锁 / operator {opno} of terminal {tid} unlocked"])


@operator_app.command("list", help="列出操作员 / list a terminal's operators")
def operator_list(tid: str, db: DbOption = None, as_json: JsonOption = False) -> None:
    with _reporting(as_json):
        validate_tid(tid)
        with _opened(db) as (store, _lmk):
            store.get_terminal(tid)
            rows = [{"opno": o.opno, "status": o.status, "failures": o.failures,
                     "locked_at": o.locked_at.isoformat() if o.locked_at else None, "lock_source": o.lock_source}
                    for o in store.list_operators(tid)]
    _emit(as_json, rows, [f"{r['opno']}  {r['status']:<7} failures {r['failures']}" for r in rows]
          or ["没有操作员 / no operators"])


# --- policies ------------------------------------------------------------------------


@policy_app.command("set", help="设置策略 / set a policy: min_app_version, allowed_apps, signin_requires_serial, "
                               "operator_max_failures, mcc.NNNN")
def policy_set(
    name: str,
    value: Annotated[str, typer.Argument(help="值(none 恢复默认) / value (none = default)")],
    reason: Annotated[str | None, typer.Option("--reason", help="原因 / reason")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    with _reporting(as_json):
        policies.parse_policy(name, value)  # refuse bad input before touching the database
        with _opened(db) as (store, _lmk):
            stored = policies.set_policy(store, name, value, actor=actor(), reason=reason)
    shown = json.dumps(stored, ensure_ascii=False)
    _emit(as_json, {"ok": True, "name": name, "value": stored},
          [f"策略 {name} = {shown} / policy {name} set to {shown}"])


@policy_app.command("show", help="查看策略 / show the policies")
def policy_show(db: DbOption = None, as_json: JsonOption = False) -> None:
    with _reporting(as_json), _opened(db) as (store, _lmk):
        table = policies.policy_table(store)
    lines = [f"{row['name']:<24} {json.dumps(row['value'], ensure_ascii=False):<24} "
             + ("(默认 / default)" if row["default"] else f"[{row['actor'] or '-'}] {row['reason'] or ''}")
             for row in table]
    _emit(as_json, table, lines)


# --- parameters ----------------------------------------------------------------------


@params_app.command("set", help="设置参数(模板/商户/终端) / set a parameter (template, --mid or --tid)")
def params_set(
    key: Annotated[str, typer.Argument(help="参数标签或名称 / tag (12) or name (receive_timeout)")],
    value: Annotated[str, typer.Argument(help="值 / value")],
    mid: Annotated[str | None, typer.Option("--mid", help="只对此商户 / for this merchant")] = None,
    tid: Annotated[str | None, typer.Option("--tid", help="只对此终端 / for this terminal")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    with _reporting(as_json):
        if mid is not None and tid is not None:
            raise InvalidValue("scope", "--mid 和 --tid 只能给一个", "give --mid or --tid, not both")
        tag = params.param_tag(key)
        params.validate_param(tag, value)
        if mid is not None:
            validate_mid(mid)
        if tid is not None:
            validate_tid(tid)
        with _opened(db) as (store, _lmk):
            version = params.set_param(store, tag, value, mid=mid, tid=tid, actor=actor())
    scope = f"terminal {tid}" if tid else f"merchant {mid}" if mid else "template"
    _emit(as_json, {"ok": True, "tag": tag, "value": value, "scope": scope, "version": version},
          [f"参数 {tag} = {value}({scope})，版本 {version} / parameter {tag} set to {value} for {scope}, "
           f"version {version}"])


@params_app.command("show", help="终端的生效参数 / a terminal's effective parameters")
def params_show(tid: str, db: DbOption = None, as_json: JsonOption = False) -> None:
    with _reporting(as_json):
        validate_tid(tid)
        with _opened(db) as (store, _lmk):
            report = params.params_report(store, tid)
    stale = "需要下载 / download pending" if report["stale"] else "已是最新 / up to date"
    lines = [f"终端 / terminal {tid}: 版本 / version {report['version']}, "
             f"已下载 / downloaded {report['downloaded_version'] or 0} ({stale})"]
    lines += [f"  {p['tag']} {p['name'] or '':<16} {p['value']}  ({p['from']})" for p in report["params"]]  # type: ignore[attr-defined]
    _emit(as_json, report, lines)


# --- payouts -------------------------------------------------------------------------


@payout_app.command("list", help="列出结算款 / list payouts")
def payout_list(
    mid: Annotated[str | None, typer.Option("--mid", help="只列此商户 / only this merchant")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    with _reporting(as_json):
        if mid is not None:
            validate_mid(mid)
        with _opened(db) as (store, _lmk):
            rows = [payouts.payout_json(p) for p in store.payouts(mid)]
    _emit(as_json, rows, [f"#{r['id']} {r['mid']} {r['day']} {r['amount'] / 100:.2f} {r['status']}"
                          + (f" ({r['hold_reason']})" if r["hold_reason"] else "") for r in rows]
          or ["没有结算款 / no payouts"])


@payout_app.command("why", help="为什么钱还没到账 / why has my money not arrived")
def payout_why(mid: str, db: DbOption = None, as_json: JsonOption = False) -> None:
    with _reporting(as_json):
        validate_mid(mid)
        with _opened(db) as (store, _lmk):
            answer: dict[str, Any] = payouts.payout_status(store, mid, datetime.now(UTC))
    lines = [f"商户 / merchant {mid}:"]
    lines += [f"  {zh}\n  {en}" for zh, en in zip(answer["zh"], answer["en"], strict=True)]
    _emit(as_json, answer, lines)
