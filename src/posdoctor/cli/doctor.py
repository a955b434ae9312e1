"""CLI: ``posdoctor diagnose TID`` / ``diagnose --fleet`` and ``posdoctor fix TID``.

``--json`` prints the contract documented in ``docs/diagnosis.md``. Human output (Rich)
shows the cause in Chinese or English (``--lang``), the evidence lines with times, the
remedy steps and the fix command. Errors follow ``cli/admin.py`` (exit 2 invalid input,
3 not found, 1 other; with ``--json`` an ``{"ok": false, "error": ...}`` object).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from posdoctor.cli.admin import CliError, DbOption, JsonOption, _opened, _reporting
from posdoctor.doctor.catalog import CAUSES, SYMPTOMS
from posdoctor.doctor.ranker import FLEET_CAUSES, UNKNOWN
from posdoctor.store.errors import InvalidValue
from posdoctor.store.validate import validate_tid

LangOption = Annotated[str, typer.Option("--lang", help="语言 zh|en / language of the human output")]
SinceOption = Annotated[str | None, typer.Option("--since", help="起始时间 ISO / window start (ISO time, UTC if no zone)")]
UntilOption = Annotated[str | None, typer.Option("--until", help="结束时间 ISO / window end (default: newest evidence)")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the posdoctor app."""
    app.command("diagnose", help="诊断终端故障原因 / name the cause of a terminal's (or the fleet's) failures")(
        diagnose_command)
    app.command("fix", help="自动修复(默认只演示) / fix what software can fix (dry-run unless --apply)")(fix_command)


def _parse_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidValue(name, f"{name} 不是有效的ISO时间: {value}", f"{name} is not an ISO time: {value}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _check_lang(lang: str) -> str:
    if lang not in ("zh", "en"):
        raise InvalidValue("lang", "语言必须是 zh 或 en", "language must be zh or en")
    return lang


# --- diagnose ----------------------------------------------------------------------------
def diagnose_command(
    tid: Annotated[str | None, typer.Argument(help="终端号 / terminal ID (omit with --fleet)")] = None,
    fleet: Annotated[bool, typer.Option("--fleet", help="诊断全部终端 / every failing terminal")] = False,
    lang: LangOption = "zh",
    since: SinceOption = None,
    until: UntilOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    from posdoctor.doctor.diagnose import diagnose_fleet, diagnose_terminal

    with _reporting(as_json):
        _check_lang(lang)
        start, end = _parse_time(since, "since"), _parse_time(until, "until")
        if fleet == (tid is not None):
            raise CliError("请给出终端号或 --fleet(二选一)", "give a terminal ID or --fleet (one of them)", 2)
        with _opened(db) as (store, _lmk):
            if tid is not None:
                validate_tid(tid)
                result = diagnose_terminal(store, tid, since=start, until=end)
                if as_json:
                    typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
                else:
                    show_diagnosis(Console(), result.to_json(lang), lang)
                return
            if as_json:
                typer.echo(json.dumps(diagnose_fleet(store, since=start, until=end).to_json(), ensure_ascii=False))
                return
            console = Console()
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console, transient=True) as bar:
                task = bar.add_task("诊断中 / diagnosing", total=None)
                result = diagnose_fleet(store, since=start, until=end,
                                        progress=lambda n, total: bar.update(task, completed=n, total=total))
            show_fleet(console, result.to_json(lang), lang, result.examined)


def _cause_name(cause: str, lang: str) -> str:
    if cause == UNKNOWN:
        return "原因不明(证据不足)" if lang == "zh" else "Unknown (not enough evidence)"
    entry = CAUSES.get(cause)
    return entry.name(lang) if entry else cause


def _text(value: Any, lang: str) -> Any:
    return value.get(lang, next(iter(value.values()), "")) if isinstance(value, dict) else value


def show_diagnosis(console: Console, data: dict[str, Any], lang: str) -> None:
    tid = data["terminal"]
    symptoms = ", ".join(SYMPTOMS[s][0 if lang == "zh" else 1] for s in data["symptoms"] if s in SYMPTOMS)
    findings = data["findings"]
    if not findings:
        console.print(f"[green]{'终端' if lang == 'zh' else 'Terminal'} {tid}: "
                      f"{'未发现故障' if lang == 'zh' else 'no failure found in the window'}[/]")
        return
    top = findings[0]
    title = f"{'终端' if lang == 'zh' else 'Terminal'} {tid}" + (f" — {symptoms}" if symptoms else "")
    body = [f"[bold]{_cause_name(top['cause'], lang)}[/] ({top['cause']}, {top['confidence']:.0%})"]
    if top.get("resolved"):
        body.append("[green]" + ("已当场解决, 目前正常" if lang == "zh" else "put right since; working now") + "[/]")
    remedy = top.get("remedy") or {}
    explanation = _text(remedy.get("explanation"), lang)
    if explanation:
        body.append(explanation)
    console.print(Panel("\n".join(body), title=title, expand=False))
    console.print("[bold]" + ("证据" if lang == "zh" else "Evidence") + "[/]")
    for item in top["evidence"]:
        console.print(f"  • {item}")
    for role, label in (("merchant_steps", ("商户操作", "Merchant steps")), ("operator_steps", ("运维操作", "Operator steps"))):
        steps = _text(remedy.get(role) or {}, lang) or []
        if steps:
            console.print("[bold]" + label[0 if lang == "zh" else 1] + "[/]")
            for n, step in enumerate(steps, 1):
                console.print(f"  {n}. {step}")
    fix = top.get("fix") or {}
    if fix.get("command"):
        console.print(("[bold]自动修复[/] " if lang == "zh" else "[bold]Automatic fix[/] ") + f"{fix['command']}")
    for person in fix.get("needs_person") or []:
        console.print(("需人工: " if lang == "zh" else "Needs a person: ") + str(_text(person, lang) or person.get("action")))
    others = findings[1:4]
    if others:
        console.print("[dim]" + ("其他可能" if lang == "zh" else "Other possibilities") + ": " +
                      ", ".join(f"{_cause_name(f['cause'], lang)} {f['confidence']:.0%}" for f in others) + "[/]")


def show_fleet(console: Console, data: dict[str, Any], lang: str, examined: int) -> None:
    by_cause: dict[str, int] = data["by_cause"]
    zh = lang == "zh"
    if not by_cause:
        console.print(f"[green]{'检查了' if zh else 'Examined'} {examined} "
                      f"{'台可疑终端, 均无故障' if zh else 'suspect terminals: none failing'}[/]")
        return
    table = Table(title=("故障终端按原因分组" if zh else "Failing terminals by cause"))
    for column in (("原因", "Cause"), ("ID", "ID"), ("终端数", "Terminals"), ("示例", "Examples")):
        table.add_column(column[0 if zh else 1])
    tids: dict[str, list[str]] = {}
    for item in data["terminals"]:
        tids.setdefault(item["findings"][0]["cause"], []).append(item["terminal"])
    order = sorted(by_cause, key=lambda c: (c not in FLEET_CAUSES, -by_cause[c], c))
    for cause in order:
        marker = (" [全网]" if zh else " [fleet]") if cause in FLEET_CAUSES else ""
        table.add_row(_cause_name(cause, lang) + marker, cause, str(by_cause[cause]), " ".join(tids.get(cause, [])[:5]))
    console.print(table)
    total = sum(by_cause.values())
    console.print(f"{'故障终端' if zh else 'Failing terminals'}: {total} / {'检查' if zh else 'examined'} {examined}. "
                  + ("详情: posdoctor diagnose TID" if zh else "Details: posdoctor diagnose TID"))


# --- fix ---------------------------------------------------------------------------------
def fix_command(
    tid: Annotated[str, typer.Argument(help="终端号 / terminal ID")],
    cause: Annotated[str | None, typer.Option("--cause", help="原因ID(默认: 诊断结果) / cause ID (default: the diagnosis)")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="真正执行 / act (default: dry-run)")] = False,
    lang: LangOption = "zh",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    from posdoctor.crypto.hsm import SoftHSM
    from posdoctor.doctor.diagnose import diagnose_terminal
    from posdoctor.doctor.fixes import FixEnv, run_fix

    with _reporting(as_json):
        _check_lang(lang)
        validate_tid(tid)
        if cause is not None and cause not in CAUSES:
            raise InvalidValue("cause", f"未知原因ID {cause}", f"unknown cause ID {cause}")
        with _opened(db) as (store, lmk):
            store.get_terminal(tid)
            if cause is None:
                diagnosis = diagnose_terminal(store, tid)
                if diagnosis.cause in (None, UNKNOWN):
                    raise CliError("未能确定原因, 请用 --cause 指定", "no confident diagnosis: name the cause with --cause", 2)
                cause = diagnosis.cause
            outcome = run_fix(FixEnv(store, SoftHSM(lmk)), tid, cause, apply=apply)
    data = outcome.to_json()
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, default=str))
    else:
        show_fix(Console(), data, lang)
    if apply and not outcome.ok:
        raise typer.Exit(1)


def show_fix(console: Console, data: dict[str, Any], lang: str) -> None:
    zh = lang == "zh"
    head = f"{data['terminal']} · {_cause_name(data['cause'], lang)} · {data['action'] or ('无自动修复' if zh else 'no automatic fix')}"
    plan = data["plan"]
    lines = [_text({"zh": plan.get("zh", ""), "en": plan.get("en", "")}, lang)]
    if data["dry_run"]:
        if not plan.get("blocked"):
            lines.append("(演示, 未执行; 加 --apply 执行)" if zh else "(dry-run, nothing changed; add --apply to act)")
    else:
        check = data["check"]
        status = ("[green]已生效[/]" if zh else "[green]worked[/]") if data["ok"] else ("[red]未生效[/]" if zh else "[red]did not work[/]")
        lines.append(f"{'检查' if zh else 'Check'}: {status} — {_text({'zh': check.get('zh', ''), 'en': check.get('en', '')}, lang)}")
        if data["result"].get("error"):
            lines.append(str(data["result"].get("zh" if zh else "error")))
    for person in data.get("needs_person") or []:
        lines.append(("需人工: " if zh else "Needs a person: ") + str(person.get(lang) or person.get("action")))
    console.print(Panel("\n".join(lines), title=head, expand=False))
