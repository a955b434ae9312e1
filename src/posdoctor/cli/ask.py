"""CLI: ``posdoctor ask`` (complaint -> likely causes, or a guided yes/no session) and
``posdoctor probe`` (at which step does talking to a CUP host fail).

Texts are Chinese by default with English alongside; ``--lang en`` shows English only,
``--lang zh`` Chinese first. ``--json`` prints the documented objects (docs/diagnosis-ask.md).
Exit codes: 0 fine, 1 a probe step failed, 2 invalid input.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from posdoctor.cli.admin import DbOption, JsonOption
from posdoctor.cli.errors import EXIT_FAILED, fail

LangOption = Annotated[str, typer.Option("--lang", help="语言 zh|en / language (zh shows English alongside)")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the posdoctor app."""
    app.command("ask", help="根据商户描述判断故障原因 / likely causes from a merchant's words, or --guided")(
        ask_command)
    app.command("probe", help="逐步探测CUP主机 / find the step at which talking to a CUP host fails")(
        probe_command)


def _both(zh: str, en: str, lang: str) -> str:
    return en if lang == "en" else f"{zh} [dim]/ {en}[/dim]"


def _check_lang(lang: str, as_json: bool) -> None:
    if lang not in ("zh", "en"):
        fail("语言必须是 zh 或 en", "language must be zh or en", as_json)


# --- ask ------------------------------------------------------------------------------------
def ask_command(
    text: Annotated[str | None, typer.Argument(
        help="商户的描述, - 表示从标准输入读 / the merchant's words, - reads stdin (optional with --guided)")] = None,
    lang: LangOption = "zh",
    top: Annotated[int, typer.Option("--top", min=1, max=20, help="列出几个原因 / how many causes")] = 5,
    guided: Annotated[bool, typer.Option("--guided", help="逐题引导排查 / guided yes/no troubleshooting")] = False,
    answers: Annotated[str | None, typer.Option(
        "--answers", help="脚本化回答, 如 y,n,? / scripted answers for --guided, e.g. y,n,?")] = None,
    evaluate: Annotated[bool, typer.Option(
        "--evaluate", help="在标注投诉集上测准确率 / accuracy on the labelled complaint set")] = False,
    as_json: JsonOption = False,
) -> None:
    _check_lang(lang, as_json)
    if text == "-":
        text = sys.stdin.read()
    if evaluate:
        _evaluate(as_json)
        return
    if guided:
        _guided(text, lang, answers, as_json)
        return
    if answers is not None:
        fail("--answers 只能与 --guided 一起使用", "--answers only goes with --guided", as_json)
    if text is None or not text.strip():
        fail("请输入商户描述, 或使用 --guided", "give the merchant's words, or use --guided", as_json)
    from posdoctor.doctor.ask import ask

    result = ask(text, top=top)
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
        return
    _show_ask(Console(), result.to_json(), lang)


def _evaluate(as_json: bool) -> None:
    from rich.progress import Progress

    from posdoctor.doctor.ask import evaluate

    with Progress(console=Console(stderr=True), transient=True, disable=as_json) as progress:
        task = progress.add_task("评估 / evaluating", total=None)
        scores = evaluate(progress=lambda done, total: progress.update(task, completed=done, total=total))
    if as_json:
        typer.echo(json.dumps(scores))
        return
    table = Table(title="posdoctor ask: 标注投诉集准确率 / accuracy on the labelled complaints")
    for column in ("split", "n", "top-1", "top-3"):
        table.add_column(column)
    for split, s in scores.items():
        table.add_row(split, str(s["n"]), f"{s['top1']:.1%}", f"{s['top3']:.1%}")
    Console().print(table)


def _show_ask(console: Console, data: dict[str, Any], lang: str) -> None:
    if data["codes"]:
        console.print(_both("识别到的应答码", "codes found", lang) + ": " + ", ".join(data["codes"]))
    if not data["findings"]:
        console.print(_both("无法从描述判断原因, 请回答下面的问题或使用 --guided",
                            "cannot tell the cause from these words: answer the questions below or use --guided",
                            lang))
    table = Table(title=_both("可能的原因", "likely causes", lang))
    for column in ("#", _both("原因", "cause", lang), _both("把握", "confidence", lang), _both("依据", "why", lang)):
        table.add_column(column)
    for n, f in enumerate(data["findings"], 1):
        name = _both(f["name"]["zh"], f["name"]["en"], lang)
        why = "\n".join(e.split(" / ")[0 if lang == "en" else -1] for e in f["evidence"][:4])
        table.add_row(str(n), f"{name}\n[dim]{f['cause']}[/dim]", f"{f['confidence']:.0%}", why)
    console.print(table)
    if data["findings"]:
        _show_remedy(console, data["findings"][0]["remedy"], lang)
    if data["cause"] == "unknown" and data["collect"]:
        console.print(_both("把握不足, 请收集:", "not sure yet; collect:", lang))
        for item in data["collect"][:5]:
            console.print(f"  • {_both(item['zh'], item['en'], lang)}")
    if data["questions"]:
        console.print(_both("可以这样问, 以区分这些原因:", "questions that tell these apart:", lang))
        for q in data["questions"]:
            console.print(f"  • {_both(q['zh'], q['en'], lang)}")


def _show_remedy(console: Console, remedy: dict[str, Any], lang: str) -> None:
    key = "en" if lang == "en" else "zh"
    console.print(f"[bold]{_both('说明', 'explanation', lang)}[/bold]: {remedy['explanation'][key]}")
    console.print(f"[bold]{_both('商户可以这样做', 'what the merchant can do', lang)}[/bold]:")
    for n, step in enumerate(remedy["merchant_steps"][key], 1):
        console.print(f"  {n}. {step}")
    if remedy["auto_fix"]:
        console.print(_both("可自动修复", "software fix", lang) + f": {remedy['auto_fix']} (posdoctor fix TID)")


def _split_answers(raw: str, as_json: bool) -> list[bool | None]:
    from posdoctor.doctor.guided import parse_answer

    try:
        return [parse_answer(word) for word in raw.replace("，", ",").split(",") if word.strip()]
    except ValueError as exc:
        fail(f"无法识别的回答: {exc}", f"unrecognised answer: {exc}", as_json)


def _guided(text: str | None, lang: str, answers: str | None, as_json: bool) -> None:
    from posdoctor.doctor.guided import GuidedSession, parse_answer

    if as_json and answers is None:
        fail("--json 需要同时给出 --answers", "--json needs --answers (scripted answers)", as_json)
    session = GuidedSession()
    if text and text.strip():
        from posdoctor.doctor.ask import ask

        session = GuidedSession.seeded({f.cause: f.confidence for f in ask(text, top=10).findings})
    console = Console()
    if answers is not None:
        session.run(_split_answers(answers, as_json))
    else:
        while not session.done:
            question = session.next_question()
            if question is None:
                break
            while True:
                reply = typer.prompt(f"{_plain(question.zh, question.en, lang)} [y/n/?]")
                try:
                    session.answer(question.id, parse_answer(reply))
                    break
                except ValueError:
                    console.print(_both("请回答 y(是)、n(否) 或 ?(不知道)", "answer y, n or ? (unknown)", lang))
    result = session.result(lang=None)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    _show_guided(console, result, lang)


def _plain(zh: str, en: str, lang: str) -> str:
    return en if lang == "en" else f"{zh} / {en}"


def _show_guided(console: Console, result: dict[str, Any], lang: str) -> None:
    for item in result["asked"]:
        console.print(f"  {_both(item['zh'], item['en'], lang)} → {item['answer']}")
    if not result["done"]:
        console.print(_both("问题还没答完, 以下为目前的判断", "not all questions answered: the current view", lang))
    best = result["findings"][0]
    if result["cause"] == "unknown":
        console.print(_both("还不能确定原因, 最可能的是:", "cause not certain yet; most likely:", lang))
    for f in result["findings"]:
        console.print(f"  {_both(f['name']['zh'], f['name']['en'], lang)} [dim]{f['cause']}[/dim] "
                      f"{f['confidence']:.0%}")
    _show_remedy(console, best["remedy"], lang)


# --- probe ----------------------------------------------------------------------------------
def _hex(value: str | None, name: str, lengths: tuple[int, ...], as_json: bool) -> bytes | None:
    if value is None:
        return None
    try:
        raw = bytes.fromhex(value.strip())
    except ValueError:
        raw = b""
    if len(raw) not in lengths:
        sizes = "/".join(str(n * 2) for n in lengths)
        fail(f"{name} 必须是 {sizes} 位十六进制", f"{name} must be {sizes} hex digits", as_json)
    return raw


def probe_command(
    host: Annotated[str, typer.Option("--host", help="主机地址或域名 / host address or name")],
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="端口 / port")],
    tid: Annotated[str | None, typer.Option("--tid", help="终端号(8位) / terminal ID")] = None,
    mid: Annotated[str | None, typer.Option("--mid", help="商户号(15位) / merchant ID")] = None,
    tmk: Annotated[str | None, typer.Option("--tmk", help="明文主密钥HEX, 仅用于校验 / clear TMK (hex) to check "
                                                          "the working keys; never shown")] = None,
    tmk_file: Annotated[Path | None, typer.Option("--tmk-file", help="从文件读主密钥HEX(不留在命令历史) / read the "
                                                                     "TMK hex from a file (keeps it out of shell history)")] = None,
    tpdu: Annotated[str, typer.Option("--tpdu", help="TPDU(10位HEX) / TPDU, 10 hex digits")] = "6000030000",
    no_header: Annotated[bool, typer.Option("--no-header", help="不带6字节报文头 / no 6-byte header")] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, max=120, help="每步超时(秒) / per-step timeout")] = 5.0,
    no_sign_in: Annotated[bool, typer.Option("--no-sign-in", help="不签到(签到会为该终端换发工作密钥) / skip the "
                                                                  "sign-in (it issues new working keys for the TID)")] = False,
    mode: Annotated[str, typer.Option("--mode", help="签到方式60.3 / sign-in mode: 001, 003, 004 or 006 (SM4)")] = "004",
    lang: LangOption = "zh",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    from posdoctor.doctor.probe import SIGNIN_MODES, ProbeConfig, probe

    _check_lang(lang, as_json)
    if tmk_file is not None:
        if tmk is not None:
            fail("--tmk 与 --tmk-file 只能二选一", "give --tmk or --tmk-file, not both", as_json)
        try:
            tmk = tmk_file.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            fail(f"无法读取 {tmk_file}", f"cannot read {tmk_file}", as_json)
    if mode not in SIGNIN_MODES:
        fail(f"签到方式必须是 {'/'.join(SIGNIN_MODES)}", f"--mode must be one of {', '.join(SIGNIN_MODES)}",
                       as_json)
    if tid is not None and not (len(tid) == 8 and tid.isalnum()):
        fail("终端号必须是8位", "TID must be 8 characters", as_json)
    if mid is not None and not (len(mid) == 15 and mid.isalnum()):
        fail("商户号必须是15位", "MID must be 15 characters", as_json)
    if (tid is None) != (mid is None):
        fail("终端号和商户号需同时给出", "give both --tid and --mid, or neither", as_json)
    if tmk is not None and tid is None:
        fail("--tmk 需要终端号和商户号(签到)", "--tmk needs --tid and --mid (a sign-in)", as_json)
    config = ProbeConfig(host, port, tid, mid, _hex(tmk, "TMK", (16, 24), as_json),
                         _hex(tpdu, "TPDU", (5,), as_json) or b"", not no_header, timeout, not no_sign_in, mode)
    result = asyncio.run(probe(config)).to_json()
    if db is not None:
        result["recorded"] = _record_probe(db, tid, result)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
    else:
        _show_probe(Console(), result, lang)
    if not result["ok"]:
        raise typer.Exit(EXIT_FAILED)


def _record_probe(db: str, tid: str | None, result: dict[str, Any]) -> bool:
    """An Event(source doctor, kind probe); False (and a note) when the store is unreachable."""
    from sqlalchemy.exc import SQLAlchemyError

    from posdoctor.cli.admin import _opened
    from posdoctor.store.errors import StoreError
    from posdoctor.store.records import EventRecord

    code = "ok" if result["ok"] else f"failed.{result['failed_step']}"
    try:
        with _opened(db) as (store, _lmk):
            store.record_events([EventRecord(source="doctor", kind="probe", tid=tid, code=code, detail=result)])
    except (SQLAlchemyError, StoreError, OSError) as exc:
        Console(stderr=True).print(f"[yellow]探测结果未记录 / probe not recorded: {type(exc).__name__}[/yellow]")
        return False
    return True


def _show_probe(console: Console, result: dict[str, Any], lang: str) -> None:
    from posdoctor.doctor.catalog import get_cause

    console.print(f"[bold]probe {result['host']}:{result['port']}[/bold]")
    for step in result["steps"]:
        mark = "[green]✓[/green]" if step["ok"] else "[red]✗[/red]"
        name = _both(step["name"]["zh"], step["name"]["en"], lang)
        console.print(f" {mark} {name}: {_both(step['zh'], step['en'], lang)} [dim]{step['ms']} ms[/dim]")
    if result["ok"]:
        console.print(_both("全部步骤通过", "every step passed", lang))
        return
    console.print(_both("可能的原因", "likely causes", lang) + ":")
    for cause in result["causes"]:
        meta = get_cause(cause)
        console.print(f"  • {_both(meta.zh, meta.en, lang)} [dim]{cause}[/dim]")
