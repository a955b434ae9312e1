"""`posdoctor term TID ...`: drive one emulated CUP terminal from the shell.

The terminal's state lives in ``$POSDOCTOR_HOME/terminals/TID.json`` (keys sealed under
its device key in ``TID.devkey``). ``--host/--port/--tpdu/--no-header`` change where and
how it talks (saved, like a field engineer's settings), so any CUP-style host can be
targeted. Every command prints the outcome in Chinese and English and the response code
text; ``--json`` prints the outcome with its events. Only masked PANs are ever shown.
Exit codes: 0 success, 1 the operation failed (declined, refused, network), 2 bad input.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from posdoctor.crypto.errors import CryptoError
from posdoctor.store import StoreError, load_settings
from posdoctor.terminal import Card, CardError, Outcome, PaymentApp, StateFileError, TerminalFiles, open_app
from posdoctor.terminal.state import SIGNIN_MODES

from posdoctor.cli.errors import EXIT_FAILED, EXIT_INVALID
from posdoctor.cli.errors import fail as _fail

term_app = typer.Typer(help="终端模拟器 / the terminal emulator: posdoctor term TID COMMAND",
                       no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="输出JSON / print JSON for scripts")]
HostOption = Annotated[str | None, typer.Option("--host", help="主机地址 / host address (saved)")]
PortOption = Annotated[int | None, typer.Option("--port", help="主机端口 / host port (saved)")]
TpduOption = Annotated[str | None, typer.Option("--tpdu", help="TPDU, 10 hex digits (saved)")]
HeaderOption = Annotated[bool | None, typer.Option("--header/--no-header",
                                                    help="报文头 / 6-byte message header on or off (saved)")]
TimeoutOption = Annotated[float | None, typer.Option("--timeout", help="接收超时(秒) / receive timeout in s (saved)")]
CardOption = Annotated[str, typer.Option("--card", help="卡号 / card number (PAN)")]
PinOption = Annotated[str | None, typer.Option("--pin", help="持卡人密码 / cardholder PIN")]
ExpiryOption = Annotated[str, typer.Option("--expiry", help="有效期 / expiry YYMM")]
ChipOption = Annotated[bool, typer.Option("--chip", help="插IC卡 / read the card's chip (needs AID/CAPK)")]
AmountOption = Annotated[int, typer.Option("--amount", help="金额(分) / amount in cents (fen)")]


def register(app: typer.Typer) -> None:
    """Add `term` to the root app."""
    app.add_typer(term_app, name="term")


@term_app.callback()
def term_main(ctx: typer.Context, tid: Annotated[str, typer.Argument(help="终端号 / terminal ID (8 characters)")]) -> None:
    """终端模拟器 / run one operation on emulated terminal TID."""
    ctx.obj = tid


# --- plumbing -----------------------------------------------------------------------------

def _home() -> Path:
    return load_settings().home


def _exists(tid: str) -> bool:
    try:
        return TerminalFiles(_home()).exists(tid)
    except StateFileError:
        return True  # let _open report the bad TID


def _open(ctx: typer.Context, as_json: bool, create: dict[str, str] | None = None) -> PaymentApp:
    try:
        return open_app(_home(), ctx.obj, create=create)
    except StateFileError as exc:
        hint_zh, hint_en = ("; 请先执行 init", "; run init first") if exc.kind == "missing" else ("", "")
        _fail(exc.zh + hint_zh, exc.en + hint_en, as_json, EXIT_INVALID if exc.kind == "invalid_tid" else EXIT_FAILED)
    except StoreError as exc:
        _fail(exc.zh, exc.en, as_json, EXIT_FAILED)
    except ValueError as exc:  # the TID or serial fails validation
        _fail(f"参数无效: {exc}", f"invalid value: {exc}", as_json)


def _configure(app: PaymentApp, as_json: bool, host: str | None = None, port: int | None = None,
               tpdu: str | None = None, header: bool | None = None, timeout: float | None = None) -> None:
    comm = app.state.comm
    changes = {k: v for k, v in {"host": host, "port": port, "tpdu": tpdu, "header": header,
                                 "receive_timeout_s": timeout}.items() if v is not None}
    if not changes:
        return
    try:
        app.state.comm = comm.model_validate({**comm.model_dump(), **changes})
    except ValueError as exc:
        _fail(f"通讯参数无效: {exc}", f"invalid communication settings: {exc}", as_json)
    app.save()


def _card(pan: str, expiry: str, chip: bool, as_json: bool) -> Card:
    try:
        return Card(pan, expiry=expiry, chip=chip)
    except CardError as exc:
        _fail(f"卡数据无效: {exc}", f"invalid card data: {exc}", as_json)


def _key(hex_value: str | None, path: Path | None, name: str, as_json: bool) -> bytes | None:
    if hex_value is not None and path is not None:
        _fail(f"{name} 只能用一种方式给出", f"give the {name} either as hex or as a file, not both", as_json)
    if path is not None:
        try:
            hex_value = path.read_text().strip()
        except OSError as exc:
            _fail(f"无法读取 {path}: {exc.strerror}", f"cannot read {path}: {exc.strerror}", as_json)
    if hex_value is None:
        return None
    try:
        key = bytes.fromhex(hex_value.strip())
    except ValueError:
        _fail(f"{name} 不是十六进制", f"{name} is not hex", as_json)
    if len(key) not in (8, 16, 24):
        _fail(f"{name} 长度应为8/16/24字节", f"{name} must be 8, 16 or 24 bytes", as_json)
    return key


def _yuan(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _lines(outcome: Outcome) -> list[str]:
    mark = "[green]✔[/green]" if outcome.ok else "[red]✘[/red]"
    lines = [f"{mark} {outcome.operation}: {outcome.message_zh} / {outcome.message_en}"]
    text = outcome.response_text
    if text is not None:
        lines.append(f"   应答码 / response code {outcome.response_code}: {text[0]} / {text[1]}")
    txn = outcome.txn_summary()
    if txn is not None:
        lines.append(f"   卡号 / card {txn['pan']}  金额 / amount {_yuan(txn['amount'])}  流水号 / STAN {txn['stan']}"
                     f"  批次 / batch {txn['batch']}  参考号 / RRN {txn['rrn']}  授权码 / auth {txn['auth_code']}")
    if outcome.balance is not None:
        lines.append(f"   余额 / balance {_yuan(outcome.balance)}")
    for event in outcome.events:
        shown = event.kind in ("reversal", "host_requirement") or event.code.startswith("device.")
        if shown and event.code != outcome.code:
            lines.append(f"   · {event.message_zh} / {event.message_en}")
    for follow_up in outcome.follow_ups:
        lines.extend("   " + line for line in _lines(follow_up))
    return lines


def _report(outcomes: list[Outcome], as_json: bool) -> NoReturn:
    ok = all(o.ok for o in outcomes)
    if as_json:
        data: Any = outcomes[0].to_json() if len(outcomes) == 1 else {"ok": ok, "steps": [o.to_json() for o in outcomes]}
        typer.echo(json.dumps(data, ensure_ascii=False))
    else:
        console = Console()
        for outcome in outcomes:
            for line in _lines(outcome):
                console.print(line, highlight=False)
    raise typer.Exit(0 if ok else EXIT_FAILED)


def _run(awaitable: Awaitable[Outcome]) -> Outcome:
    return asyncio.run(awaitable)  # type: ignore[arg-type]


# --- commands -------------------------------------------------------------------------------

@term_app.command("init", help="初始化: 主密钥、参数、公钥、IC卡参数 / TMK, parameters, CAPK, AID download")
def init(ctx: typer.Context,
         serial: Annotated[str | None, typer.Option("--serial", help="设备序列号 / device serial (first init)")] = None,
         model: Annotated[str, typer.Option("--model", help="终端型号 / model")] = "EMU-100",
         mid: Annotated[str | None, typer.Option("--mid", help="商户号 / merchant ID")] = None,
         tk: Annotated[str | None, typer.Option("--tk", help="传输密钥(十六进制) / transport key hex")] = None,
         tk_file: Annotated[Path | None, typer.Option("--tk-file", help="传输密钥文件 / transport key file")] = None,
         tmk: Annotated[str | None, typer.Option("--tmk", help="直接注入主密钥 / inject this TMK (hex)")] = None,
         tmk_file: Annotated[Path | None, typer.Option("--tmk-file", help="主密钥文件 / TMK file")] = None,
         signin_mode: Annotated[str | None, typer.Option("--signin-mode", help="签到方式 / 001, 003, 004, 006")] = None,
         host: HostOption = None, port: PortOption = None, tpdu: TpduOption = None, header: HeaderOption = None,
         timeout: TimeoutOption = None, as_json: JsonOption = False) -> None:
    tk_key, tmk_key = _key(tk, tk_file, "TK", as_json), _key(tmk, tmk_file, "TMK", as_json)
    if serial is None and not _exists(ctx.obj):
        _fail("首次初始化需要 --serial (设备序列号)", "the first init needs --serial (the device serial number)",
              as_json)
    create = {"serial": serial or "", "mid": mid or "", "model": model}
    app = _open(ctx, as_json, create=create if serial else None)
    if mid and app.state.mid != mid:
        app.state.mid = mid
    if signin_mode is not None:
        if signin_mode not in SIGNIN_MODES:
            _fail("签到方式应为 001/003/004/006", "sign-in mode must be 001, 003, 004 or 006", as_json)
        app.state.settings.signin_mode = signin_mode  # type: ignore[assignment]
    _configure(app, as_json, host, port, tpdu, header, timeout)
    if tmk_key is None and tk_key is None and not app.state.has_key("TK"):
        _fail("需要 --tk/--tk-file 或 --tmk/--tmk-file", "give --tk/--tk-file or --tmk/--tmk-file", as_json)
    outcomes = [app.self_check()]
    try:
        if tk_key is not None:
            outcomes.append(app.inject_transport_key(tk_key))
        if tmk_key is not None:
            outcomes.append(app.inject_tmk(tmk_key))
    except CryptoError as exc:  # e.g. an 8-byte key for SM4 (sign-in mode 006)
        _fail(exc.zh, exc.en, as_json)
    outcomes += asyncio.run(app.initialise(download_tmk=tmk_key is None))
    _report(outcomes, as_json)


def _simple(name: str, zh: str, en: str) -> None:
    def command(ctx: typer.Context, host: HostOption = None, port: PortOption = None, tpdu: TpduOption = None,
                header: HeaderOption = None, timeout: TimeoutOption = None, as_json: JsonOption = False) -> None:
        app = _open(ctx, as_json)
        _configure(app, as_json, host, port, tpdu, header, timeout)
        operation = {"signin": app.sign_in, "signoff": app.sign_off, "echo": app.echo, "settle": app.settle,
                     "params": app.download_params}[name]
        _report([_run(operation())], as_json)

    command.__name__ = name
    term_app.command(name, help=f"{zh} / {en}")(command)


_simple("signin", "签到", "sign in (working keys)")
_simple("signoff", "签退", "sign off")
_simple("echo", "回响测试", "echo test")
_simple("settle", "结算", "settle the batch")
_simple("params", "参数下载", "download the parameters again")


@term_app.command("balance", help="余额查询 / balance inquiry")
def balance(ctx: typer.Context, card: CardOption, pin: PinOption = None, expiry: ExpiryOption = "3012",
            chip: ChipOption = False, host: HostOption = None, port: PortOption = None, as_json: JsonOption = False
            ) -> None:
    app = _open(ctx, as_json)
    _configure(app, as_json, host, port)
    _report([_run(app.balance(_card(card, expiry, chip, as_json), pin))], as_json)


@term_app.command("sale", help="消费 / sale")
def sale(ctx: typer.Context, card: CardOption, amount: AmountOption, pin: PinOption = None,
         expiry: ExpiryOption = "3012", chip: ChipOption = False, host: HostOption = None, port: PortOption = None,
         as_json: JsonOption = False) -> None:
    app = _open(ctx, as_json)
    _configure(app, as_json, host, port)
    _report([_run(app.sale(_card(card, expiry, chip, as_json), amount, pin))], as_json)


@term_app.command("void", help="消费撤销 / void a sale of this batch")
def void(ctx: typer.Context, stan: Annotated[str, typer.Option("--stan", help="原流水号 / STAN of the sale")],
         card: Annotated[str | None, typer.Option("--card", help="刷卡 / card (optional)")] = None,
         pin: PinOption = None, expiry: ExpiryOption = "3012", host: HostOption = None, port: PortOption = None,
         as_json: JsonOption = False) -> None:
    if not (stan.isdigit() and len(stan) <= 6):
        _fail("流水号应为1到6位数字", "STAN must be 1 to 6 digits", as_json)
    app = _open(ctx, as_json)
    _configure(app, as_json, host, port)
    swiped = _card(card, expiry, False, as_json) if card else None
    _report([_run(app.void(stan.zfill(6), swiped, pin))], as_json)


@term_app.command("refund", help="退货 / refund against an earlier sale's RRN")
def refund(ctx: typer.Context, card: CardOption, amount: AmountOption,
           orig_rrn: Annotated[str, typer.Option("--orig-rrn", help="原参考号 / RRN of the sale")],
           pin: PinOption = None, expiry: ExpiryOption = "3012", host: HostOption = None, port: PortOption = None,
           as_json: JsonOption = False) -> None:
    app = _open(ctx, as_json)
    _configure(app, as_json, host, port)
    _report([_run(app.refund(_card(card, expiry, False, as_json), amount, orig_rrn, pin))], as_json)


@term_app.command("show", help="终端状态 / show the terminal's state (no secrets)")
def show(ctx: typer.Context, events: Annotated[int, typer.Option("--events", help="最近事件数 / recent events")] = 10,
         as_json: JsonOption = False) -> None:
    app = _open(ctx, as_json)
    state = app.state
    pending = state.pending_reversal
    data = {
        "tid": state.tid, "mid": state.mid, "merchant_name": state.merchant_name, "serial": state.serial,
        "host": state.comm.host, "port": state.comm.port, "tpdu": state.comm.tpdu, "header": state.comm.header,
        "signed_in": state.signed_in, "batch": state.batch, "stan": f"{state.stan:06d}",
        "keys": {kind: key.kcv for kind, key in state.keys.items()}, "transactions": len(state.txn_log),
        "pending_reversal": {"stan": pending.stan, "reason": pending.reason, "attempts": pending.attempts}
        if pending else None,
        "events": [e.to_json() for e in state.events[-events:]] if events > 0 else [],
    }
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False))
        return
    console = Console()
    console.print(f"终端 / terminal {state.tid}  商户 / merchant {state.mid} {state.merchant_name}", highlight=False)
    console.print(f"主机 / host {state.comm.host}:{state.comm.port}  TPDU {state.comm.tpdu}  "
                  f"签到 / signed in: {'是 yes' if state.signed_in else '否 no'}  批次 / batch {state.batch}",
                  highlight=False)
    console.print(f"密钥校验值 / key check values: {data['keys']}  交易笔数 / transactions: {len(state.txn_log)}",
                  highlight=False)
    if pending:
        console.print(f"待冲正 / pending reversal: STAN {pending.stan} reason {pending.reason}", highlight=False)
    for event in data["events"]:
        console.print(f"  {event['at']} {event['kind']}: {event['message_zh']} / {event['message_en']}",
                      highlight=False)
