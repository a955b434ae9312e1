"""Registry commands: ``merchant``, ``terminal``, ``card`` and the message ``journal``.

Every message is in Chinese and English. Errors go to stderr (or, with ``--json``, as
``{"ok": false, "error": {...}}`` to stdout) with these exit codes: 2 invalid input,
3 not found, 4 already exists, 1 anything else (configuration, files).
Key material is never printed: ``terminal add`` shows check values only and writes
clear keys solely to the ``--tk-out``/``--tmk-out`` files (mode 0600).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError
from rich.text import Text

from posdoctor.store import (
    AlreadyExists,
    InvalidValue,
    NotFound,
    Store,
    StoreError,
    load_lmk,
    load_settings,
    make_engine,
    upgrade,
)
from posdoctor.store.models import JournalEntry
from posdoctor.store.validate import (
    CARD_STATUSES,
    mask_pan,
    validate_amount,
    validate_choice,
    validate_expiry,
    validate_mid,
    validate_pan,
    validate_pin,
    validate_serial,
    validate_tid,
)

EXIT_ERROR, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_EXISTS = 1, 2, 3, 4

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="数据库地址 / database URL (default: POSDOCTOR_DB, else SQLite in POSDOCTOR_HOME)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="输出JSON / print JSON for scripts")]

merchant_app = typer.Typer(help="商户 / merchants", no_args_is_help=True)
terminal_app = typer.Typer(help="终端 / terminals", no_args_is_help=True)
card_app = typer.Typer(help="测试卡 / test cards of the built-in issuer", no_args_is_help=True)


class CliError(Exception):
    def __init__(self, zh: str, en: str, code: int = EXIT_ERROR) -> None:
        super().__init__(f"{zh} / {en}")
        self.zh, self.en, self.code = zh, en, code


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(merchant_app, name="merchant")
    app.add_typer(terminal_app, name="terminal")
    app.add_typer(card_app, name="card")
    app.command("journal", help="报文流水 / the host's message journal (masked)")(journal_command)
    from posdoctor.cli import admin_config, admin_lifecycle  # their commands join the apps above

    admin_lifecycle.register(app)
    admin_config.register(app)


# --- plumbing ----------------------------------------------------------------------


def _exit_code(err: Exception) -> int:
    if isinstance(err, CliError):
        return err.code
    if isinstance(err, InvalidValue):
        return EXIT_INVALID
    if isinstance(err, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(err, AlreadyExists):
        return EXIT_EXISTS
    return EXIT_ERROR


def _fail(err: Exception, as_json: bool) -> NoReturn:
    zh, en = getattr(err, "zh", str(err)), getattr(err, "en", str(err))
    if as_json:
        error = {"type": type(err).__name__, "zh": zh, "en": en}
        typer.echo(json.dumps({"ok": False, "error": error}, ensure_ascii=False))
    else:
        typer.echo(str(err), err=True)
    raise typer.Exit(_exit_code(err))


@contextmanager
def _reporting(as_json: bool) -> Iterator[None]:
    """Turn the errors this module expects into a message and an exit code."""
    from posdoctor.crypto.errors import CryptoError

    try:
        yield
    except (StoreError, CliError, CryptoError) as err:
        _fail(err, as_json)
    except OperationalError as err:
        reason = str(err.orig).strip().splitlines()[0] if err.orig else type(err).__name__
        _fail(CliError(f"数据库无法访问: {reason}", f"database unavailable: {reason}"), as_json)


@contextmanager
def _opened(db: str | None) -> Iterator[tuple[Store, bytes]]:
    """The store (schema at head) and the LMK, both from the settings."""
    settings = load_settings()
    engine = make_engine(settings.database_url(db))
    lmk = load_lmk(settings.ensure_home())
    upgrade(engine)
    store = Store(engine, lmk)
    try:
        yield store, lmk
    finally:
        store.close()


def _emit(as_json: bool, data: dict[str, Any] | list[dict[str, Any]], lines: list[str]) -> None:
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False))
    else:
        for line in lines:
            typer.echo(line)


# --- merchants ---------------------------------------------------------------------


@merchant_app.command("add", help="登记商户 / register a merchant")
def merchant_add(
    mid: Annotated[str, typer.Argument(help="商户号(15位数字) / MID, 15 digits")],
    name: Annotated[str, typer.Option("--name", help="商户名称 / merchant name")],
    mcc: Annotated[str | None, typer.Option("--mcc", help="商户类别码 / merchant category code, e.g. 5411")] = None,
    status: Annotated[str, typer.Option("--status", help="初始状态 / initial status: pending|active")] = "active",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    with _reporting(as_json):
        validate_mid(mid)
        if not name.strip() or len(name) > 100:
            raise InvalidValue("name", "商户名称必须是1到100个字符", "merchant name must be 1 to 100 characters")
        validate_choice("status", status, ("pending", "active"))
        if mcc is not None and not (len(mcc) == 4 and mcc.isdigit()):
            raise InvalidValue("mcc", "商户类别码(MCC)必须是4位数字", "MCC must be 4 digits")
        with _opened(db) as (store, _lmk):
            merchant = store.add_merchant(mid, name, status, mcc=mcc)
    data = {"ok": True, "mid": merchant.mid, "name": merchant.name, "status": merchant.status}
    if mcc is not None:
        data["mcc"] = mcc
    _emit(as_json, data, [f"商户 {mid} 已登记 / merchant {mid} registered: {name}"])


@merchant_app.command("list", help="列出商户 / list merchants")
def merchant_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    with _reporting(as_json), _opened(db) as (store, _lmk):
        merchants = store.list_merchants()
    rows = [{"mid": m.mid, "name": m.name, "status": m.status} for m in merchants]
    _emit(as_json, rows, [f"{r['mid']}  {r['status']:<9} {r['name']}" for r in rows])


# --- terminals ---------------------------------------------------------------------


def _stage_secret_file(target: Path, text: str) -> Path:
    """Write ``text`` to a new mode-0600 file beside ``target``; renamed in place later."""
    if target.is_dir() or not target.parent.is_dir():
        raise CliError(f"无法写入 {target}: 目录不存在或目标是目录",
                       f"cannot write {target}: no such directory, or it is a directory")
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise CliError(f"无法写入 {target}: {exc.strerror}", f"cannot write {target}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
    return Path(name)


@contextmanager
def _key_files(outputs: dict[Path, str]) -> Iterator[dict[Path, Path]]:
    """Stage every file first (the block may still write to the staged paths it gets);
    put them in place only if the block succeeds."""
    staged: dict[Path, Path] = {}
    try:
        for target, text in outputs.items():
            staged[target] = _stage_secret_file(target, text)
        yield staged
        for target, temp in staged.items():
            os.replace(temp, target)
    finally:
        for temp in staged.values():
            temp.unlink(missing_ok=True)


@terminal_app.command("add", help="登记终端并生成传输密钥和主密钥 / register a terminal with a new TK and TMK")
def terminal_add(
    tid: Annotated[str, typer.Argument(help="终端号(8位) / TID, 8 letters or digits")],
    mid: Annotated[str, typer.Option("--mid", help="商户号 / MID")],
    serial: Annotated[str, typer.Option("--serial", help="设备序列号 / device serial number")],
    model: Annotated[str | None, typer.Option("--model", help="机型 / device model")] = None,
    tmk_out: Annotated[Path | None, typer.Option("--tmk-out", help="写出主密钥(明文十六进制) / write the clear TMK in hex")] = None,
    tk_out: Annotated[Path | None, typer.Option("--tk-out", help="写出传输密钥(明文十六进制) / write the clear transport key in hex")] = None,
    credential_out: Annotated[Path | None, typer.Option("--credential-out", help="写出TMS接入凭证 / write the device's TMS API credential")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    from posdoctor.crypto.hsm import SoftHSM

    with _reporting(as_json):
        validate_tid(tid)
        validate_mid(mid)
        validate_serial(serial)
        if tmk_out is not None and tk_out is not None and tmk_out.resolve() == tk_out.resolve():
            raise CliError("--tk-out 和 --tmk-out 不能是同一个文件",
                           "--tk-out and --tmk-out must be different files", EXIT_INVALID)
        with _opened(db) as (store, lmk):
            hsm = SoftHSM(lmk)
            tk, tmk = hsm.generate_key(16), hsm.generate_key(16)
            outputs = {path: hsm.reveal_for_key_room(key).hex().upper() + "\n"
                       for path, key in ((tk_out, tk), (tmk_out, tmk)) if path is not None}
            if credential_out is not None:
                outputs[credential_out] = ""  # staged now (checked writable); filled below
            with _key_files(outputs) as staged:
                store.add_terminal(tid, mid, serial, model, keys={"TK": tk, "TMK": tmk})
                if credential_out is not None:
                    _write_credential(store, tid, staged[credential_out])
    tk_kcv, tmk_kcv = tk.kcv.hex().upper(), tmk.kcv.hex().upper()
    data = {"ok": True, "tid": tid, "mid": mid, "serial": serial, "model": model,
            "tk_kcv": tk_kcv, "tmk_kcv": tmk_kcv,
            "tk_file": str(tk_out) if tk_out else None, "tmk_file": str(tmk_out) if tmk_out else None,
            "credential_file": str(credential_out) if credential_out else None}
    lines = [f"终端 {tid} 已登记 / terminal {tid} registered (MID {mid}, SN {serial})",
             f"传输密钥校验值 / TK KCV:  {tk_kcv}", f"主密钥校验值 / TMK KCV: {tmk_kcv}"]
    lines += [f"已写出 / written: {path} (0600)" for path in (tk_out, tmk_out, credential_out) if path]
    _emit(as_json, data, lines)


def _write_credential(store: Store, tid: str, staged: Path) -> None:
    """Issue the TMS API credential and write it to its staged file (mode 0600)."""
    from posdoctor.tms.credentials import issue_credential

    staged.write_text(issue_credential(store, tid) + "\n", encoding="ascii")


@terminal_app.command("list", help="列出终端 / list terminals")
def terminal_list(
    mid: Annotated[str | None, typer.Option("--mid", help="只列此商户 / only this merchant")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    with _reporting(as_json), _opened(db) as (store, _lmk):
        terminals = store.list_terminals(mid=mid)
    rows = [{"tid": t.tid, "mid": t.mid, "serial": t.serial, "model": t.model, "status": t.status,
             "batch_no": t.batch_no} for t in terminals]
    _emit(as_json, rows, [f"{r['tid']}  {r['mid']}  {r['serial']}  {r['model'] or '-'}  {r['status']}" for r in rows])


# --- cards ---------------------------------------------------------------------------


@card_app.command("add", help="添加测试卡 / add a test card")
def card_add(
    pan: Annotated[str, typer.Argument(help="卡号 / PAN (13-19 digits, Luhn)")],
    pin: Annotated[str, typer.Option("--pin", prompt="密码 / PIN", hide_input=True, help="密码 / PIN (4-12 digits)")],
    balance: Annotated[int, typer.Option("--balance", help="余额(分) / balance in cents")],
    expiry: Annotated[str | None, typer.Option("--expiry", help="有效期 YYMM / expiry YYMM")] = None,
    single_limit: Annotated[int | None, typer.Option("--single-limit", help="单笔限额(分) / per-transaction limit, cents")] = None,
    daily_limit: Annotated[int | None, typer.Option("--daily-limit", help="日累计限额(分) / daily limit, cents")] = None,
    status: Annotated[str, typer.Option("--status", help="状态 / status: " + ", ".join(CARD_STATUSES))] = "active",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    with _reporting(as_json):
        validate_pan(pan)
        validate_pin(pin)
        validate_amount("balance", balance)
        if expiry is not None:
            validate_expiry(expiry)
        for field, value in (("single_limit", single_limit), ("daily_limit", daily_limit)):
            if value is not None:
                validate_amount(field, value)
        validate_choice("status", status, CARD_STATUSES)
        with _opened(db) as (store, _lmk):
            card = store.add_card(pan, pin, balance=balance, expiry=expiry, status=status,
                                  single_limit=single_limit, daily_limit=daily_limit)
    masked = mask_pan(pan)
    data = {"ok": True, "card_id": card.id, "pan_masked": masked, "account_id": card.account_id,
            "balance": balance, "expiry": expiry, "status": status,
            "single_limit": single_limit, "daily_limit": daily_limit}
    _emit(as_json, data, [f"卡 {masked} 已添加 / card {masked} added "
                          f"(id {card.id}, account {card.account_id}, balance {balance})"])


# --- journal -------------------------------------------------------------------------


def _field_order(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (-1, name)


def _entry_json(entry: JournalEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": entry.at.isoformat(), "tid": entry.tid, "mid": entry.mid,
            "direction": entry.direction, "route": entry.route, "mti": entry.mti,
            "stan": entry.stan, "rc": entry.rc, "latency_ms": entry.latency_ms, "peer": entry.peer,
            "steps": entry.steps, "fields": entry.fields, "raw_hex": entry.raw_hex}


def _steps_text(steps: list[dict[str, Any]]) -> Text:
    text = Text("  steps: ")
    for n, step in enumerate(steps):
        verdict = str(step.get("verdict", ""))
        style = "green" if verdict in ("ok", "pass") else "red" if verdict in ("fail", "refused", "error") else ""
        text.append(" · " if n else "")
        text.append(f"{step.get('step', '?')} ")
        text.append(verdict, style=style)
        if step.get("reason"):
            text.append(f" ({step['reason']})")
    return text


def _print_entry(console: Console, entry: JournalEntry) -> None:
    when = entry.at.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    arrow = "→" if entry.direction == "out" else "←"
    latency = f"{entry.latency_ms:.1f} ms" if entry.latency_ms is not None else "-"
    head = Text(f"{when} {arrow} {entry.direction:<3} {entry.tid or '-':<8} {entry.mti or '----'} "
                f"{entry.route or '-'} STAN {entry.stan or '-'} rc {entry.rc or '--'} {latency}",
                style="bold")
    console.print(head)
    if entry.steps:
        console.print(_steps_text(entry.steps))
    if entry.raw_hex:
        console.print(Text(f"  hex: {entry.raw_hex}"))
    for name in sorted(entry.fields, key=_field_order):
        console.print(Text(f"    {name:>4}  {entry.fields[name]}"))


def journal_command(
    tid: Annotated[str | None, typer.Argument(help="终端号(可选) / TID (optional)")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="最近N条 / newest N messages")] = 50,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    with _reporting(as_json):
        if tid is not None:
            validate_tid(tid)
        with _opened(db) as (store, _lmk):
            entries = store.journal(tid, limit=limit)
    if as_json:
        typer.echo(json.dumps([_entry_json(e) for e in entries], ensure_ascii=False))
        return
    if not entries:
        typer.echo("没有报文记录 / no messages in the journal")
        return
    console = Console(soft_wrap=True, highlight=False)
    for entry in entries:
        _print_entry(console, entry)
