"""CLI: ``posdoctor simulate`` (a fleet's day with injected faults) and ``posdoctor evaluate``
(the scenario suite scored against the doctor).

``simulate --json`` prints ``{"seed", "day", "db", "window", "summary", "faults": [...],
"truth": {tid: [cause...]}, "outcomes": {tid: {op: "ok/tried"}}, "host", "reports"}``;
the database it names is what ``posdoctor diagnose --db URL`` reads next. Exit 0 when the
simulation ran (faults are expected), 2 for bad input.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from posdoctor.cli.errors import fail as _fail
from posdoctor.sim.config import SimConfig, parse_fault_spec

__all__ = ["register", "simulate_command", "evaluate_command"]

FaultOption = Annotated[list[str] | None, typer.Option(
    "--fault", help="注入故障 CAUSE 或 CAUSE@TID (可重复) / inject CAUSE, optionally on one TID (repeatable; without TID the seed picks)")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the posdoctor app."""
    app.command("simulate", help="模拟终端车队的一天并注入故障 / simulate a fleet's day with injected faults")(
        simulate_command)
    app.command("evaluate", help="用故障场景评估诊断准确率 / score the doctor on the fault scenario suite")(
        evaluate_command)


def progress_view(snapshot: dict[str, Any]) -> Table:
    table = Table(title="模拟一天 / simulated day", show_header=False, min_width=60)
    table.add_row("阶段 phase", str(snapshot.get("label", snapshot.get("phase", ""))))
    table.add_row("模拟时钟 clock", str(snapshot.get("clock", "")))
    table.add_row("完成终端 terminals done", f"{snapshot.get('done', 0)}/{snapshot.get('total', 0)}")
    table.add_row("交易 txns (approved)", f"{snapshot.get('txns', 0)} ({snapshot.get('approved', 0)})")
    table.add_row("失败 failures", str(snapshot.get("failures", 0)))
    return table


def summary_view(result: Any) -> Table:
    summary = result.summary()
    table = Table(title=f"车队一天汇总 / fleet day summary (seed {result.seed}, {result.day})")
    table.add_column("项目 item")
    table.add_column("值 value", justify="right")
    for key, label in (("terminals", "终端 terminals"), ("healthy_terminals", "未注入 healthy"),
                       ("faulted_terminals", "注入故障 faulted"), ("terminals_with_failures", "有失败 with failures"),
                       ("txns", "交易 transactions"), ("approved", "成功 approved"), ("failures", "失败操作 failed ops"),
                       ("setup_s", "准备秒 setup s"), ("day_s", "一天用时秒 day s")):
        table.add_row(label, str(summary.get(key, "")))
    return table


def faults_view(result: Any) -> Table:
    table = Table(title="注入的故障(真实原因,诊断不可见) / injected faults (ground truth, not visible to the doctor)")
    for column in ("cause", "TID", "variant", "at", "affected"):
        table.add_column(column)
    for injection in result.injections:
        affected = injection.affected
        shown = ", ".join(affected[:3]) + (f" … (+{len(affected) - 3})" if len(affected) > 3 else "")
        table.add_row(injection.cause, injection.tid, injection.variant_name, injection.at or "-",
                      injection.skipped or shown)
    return table


def simulate_command(
    terminals: Annotated[int, typer.Option("--terminals", "-n", min=1, max=100_000, help="终端数 / terminals")] = 20,
    fault: FaultOption = None,
    seed: Annotated[int, typer.Option("--seed", help="随机种子 / seed (same seed, same day)")] = 1,
    db: Annotated[str | None, typer.Option("--db", help="数据库URL(会被清空) / database URL (reset!)")] = None,
    speed: Annotated[float | None, typer.Option(
        "--speed", help="模拟秒/真实秒; 不给则事件驱动 / virtual seconds per real second (default: event-driven)")] = None,
    per_merchant: Annotated[int, typer.Option("--per-merchant", min=1, help="每商户终端数 / terminals per merchant")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="输出JSON / print one JSON object")] = False,
) -> None:
    """Run the host, the TMS and N emulated terminals through a simulated day."""
    from posdoctor.sim.run import UnknownFault, run_simulation

    try:
        specs = [parse_fault_spec(text) for text in fault or []]
    except ValueError as exc:
        _fail(f"故障参数无效: {exc}", f"invalid --fault: {exc}", as_json)
    console = Console(stderr=as_json)
    show = not as_json and console.is_terminal
    live = Live(progress_view({"phase": "setup", "label": "准备 setting up"}), console=console,
                refresh_per_second=4, transient=True)
    config = SimConfig(terminals=terminals, seed=seed, faults=specs, db_url=db, speed=speed,
                       terminals_per_merchant=per_merchant,
                       progress=(lambda snap: live.update(progress_view(snap))) if show else None)
    try:
        with live if show else contextlib.nullcontext():
            result = run_simulation(config)
    except UnknownFault as exc:
        _fail(exc.zh, exc.en, as_json)
    if as_json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
        return
    console.print(summary_view(result))
    if result.injections:
        console.print(faults_view(result))
    console.print(f"证据数据库 evidence database: {result.db_url}")
    since, until = result.window
    console.print(f"试试 try: posdoctor diagnose --fleet --db {result.db_url} --since {since} --until {until}")


def evaluate_command(
    variations: Annotated[int, typer.Option("--variations", "-k", min=1, max=20,
                                            help="每个原因的场景数 / scenarios per cause")] = 3,
    seed: Annotated[int, typer.Option("--seed", help="随机种子 / seed")] = 1,
    causes: Annotated[list[str] | None, typer.Option("--cause", help="只评估这些原因 / only these causes")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="输出JSON / print one JSON object")] = False,
    home: Annotated[Path | None, typer.Option("--home", help="工作目录 / working directory")] = None,
) -> None:
    """Every cause in several variations among healthy terminals, then the doctor: accuracy."""
    from posdoctor.sim.evaluate import EvaluationConfig, run_evaluation
    from posdoctor.sim.report import accuracy_tables

    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 160)
    try:
        config = EvaluationConfig(variations=variations, seed=seed, causes=list(causes or []), home=home)
        config.check()
    except ValueError as exc:
        _fail(f"参数无效: {exc}", f"invalid option: {exc}", as_json)
    with console.status("评估中 evaluating…", spinner="dots") if not as_json else contextlib.nullcontext():
        report = run_evaluation(config, progress=None if as_json else lambda text: console.log(text))
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
        return
    for table in accuracy_tables(report):
        console.print(table)
