"""`posdoctor demo`: a fleet's day with a handful of faults, then the doctor's findings.

The host and the TMS run on loopback with the embedded SQLite default; 200 emulated
terminals (the real emulator over real TCP) live through a simulated day (power-on, the
morning sign-in storm, sales, voids, refunds, heartbeats, an upgrade campaign, settlement,
sign-off) while a few faults from different cause families strike. Then the doctor reads
only the evidence left in the database and names each failing terminal's cause with its
remedy. The database stays, so `posdoctor diagnose`, `posdoctor ask` and `posdoctor fix`
can be tried right after.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from posdoctor.cli.errors import fail as _fail
from posdoctor.sim.config import FIRST_TID, FaultSpec, SimConfig, parse_fault_spec

__all__ = ["register", "demo_command", "DEMO_FAULTS"]

# One fault from each of several families, on terminals the README names.
DEMO_FAULTS = (
    "keys.tmk_mismatch@10000007",
    "status.merchant_frozen@10000023",
    "net.firewall_blocked@10000042",
    "hw.printer@10000058",
    "txn.reversal_pending@10000077",
    "config.wrong_host@10000101",
    "upgrade.firmware_defect",
)
MARKER = "demo-database.txt"


def register(app: typer.Typer) -> None:
    app.command("demo", help="演示: 200台终端的一天、注入故障、诊断 / demo: a fleet's day with faults, then diagnosis")(
        demo_command)


def _database_is_free(url: str, home: Path) -> bool:
    """Empty, or made by an earlier demo: the demo resets it; anything else is left alone."""
    from sqlalchemy import inspect, text

    from posdoctor.store.db import make_engine

    marker = home / MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == url:
        return True
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if "merchants" not in inspect(conn).get_table_names():
                return True
            return not conn.execute(text("SELECT count(*) FROM merchants")).scalar()
    finally:
        engine.dispose()


def _fleet_table(fleet: Any, lang: str) -> Table:
    from posdoctor.doctor.catalog import CAUSES

    table = Table(title="车队健康 / fleet health: failing terminals by cause")
    for column in ("原因 cause", "ID", "终端数 terminals", "终端 TIDs"):
        table.add_column(column)
    for cause, count in fleet.by_cause.most_common():
        entry = CAUSES.get(cause)
        name = (entry.zh if lang == "zh" else entry.en) if entry else cause
        tids = [d.tid for d in fleet.terminals if d.cause == cause]
        shown = " ".join(tids[:6]) + (f" … (+{len(tids) - 6})" if len(tids) > 6 else "")
        table.add_row(name + (" [全网 fleet]" if entry and entry.fleet else ""), cause, str(count), shown)
    return table


def _diagnosis_table(fleet: Any, lang: str) -> Table:
    from posdoctor.doctor.catalog import CAUSES
    from posdoctor.doctor.diagnose import remedy_json

    table = Table(title="每台故障终端的诊断与处理 / each failing terminal: diagnosis and remedy", show_lines=True)
    for column in ("终端 TID", "原因 cause", "依据 evidence", "处理 what to do"):
        table.add_column(column, overflow="fold")
    for diagnosis in fleet.terminals:
        top = diagnosis.top
        if top is None:
            continue
        entry = CAUSES.get(top.cause)
        name = (entry.zh if lang == "zh" else entry.en) if entry else top.cause
        evidence = "\n".join(line.text(lang) for line in top.evidence[:1])
        remedy = remedy_json(top.cause, lang)
        steps = (remedy.get("merchant_steps") or {}).get(lang) or []
        first = steps[0] if steps else ""
        fix = remedy.get("auto_fix")
        todo = first + (f"\nposdoctor fix {diagnosis.tid} --apply ({fix})" if fix else "")
        table.add_row(diagnosis.tid, f"{name}\n{top.cause} {top.confidence:.0%}", evidence, todo)
    return table


def demo_command(
    terminals: Annotated[int, typer.Option("--terminals", "-n", min=20, max=10_000, help="终端数 / terminals")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="随机种子 / seed")] = 1,
    db: Annotated[str | None, typer.Option("--db", help="数据库URL / database URL")] = None,
    lang: Annotated[str, typer.Option("--lang", help="zh | en")] = "zh",
    as_json: Annotated[bool, typer.Option("--json", help="输出JSON / print one JSON object")] = False,
) -> None:
    """Run 200 terminals through a day with faults, then diagnose the fleet."""
    from posdoctor.cli.sim import progress_view, summary_view
    from posdoctor.doctor.diagnose import diagnose_fleet
    from posdoctor.sim.run import run_simulation
    from posdoctor.store import open_store
    from posdoctor.store.config import load_settings

    if lang not in ("zh", "en"):
        _fail("--lang 只能是 zh 或 en", "--lang must be zh or en", as_json)
    settings = load_settings()
    home = settings.ensure_home()
    url = settings.database_url(db)
    if not _database_is_free(url, home):
        _fail(f"数据库 {url} 已有非演示数据, 演示会清空它; 请用 --db 或另一个 POSDOCTOR_HOME",
              f"database {url} holds data the demo did not make and the demo resets it; "
              "use --db or another POSDOCTOR_HOME", as_json)
    faults: list[FaultSpec] = [parse_fault_spec(text) for text in DEMO_FAULTS]
    faults = [f for f in faults if f.tid is None or int(f.tid) < FIRST_TID + terminals]
    console = Console(stderr=as_json)
    show = not as_json and console.is_terminal
    live = Live(progress_view({"phase": "setup", "label": "准备 setting up"}), console=console,
                refresh_per_second=4, transient=True)
    started = time.monotonic()
    config = SimConfig(terminals=terminals, seed=seed, faults=faults, db_url=url, home=home,
                       progress=(lambda snap: live.update(progress_view(snap))) if show else None)
    with live if show else contextlib.nullcontext():
        result = run_simulation(config)
    (home / MARKER).write_text(url, encoding="utf-8")
    simulated_s = time.monotonic() - started

    from datetime import datetime

    since, until = (datetime.fromisoformat(t) for t in result.window)
    store = open_store(url, home=home)
    try:
        if not as_json:
            console.print(summary_view(result))
            console.print("医生诊断中(只读证据) / the doctor reads the evidence ...")
        fleet = diagnose_fleet(store, since=since, until=until)
    finally:
        store.engine.dispose()
    total_s = time.monotonic() - started
    if as_json:
        print(json.dumps({"ok": True, "db": url, "summary": result.summary(), "truth": result.truth,
                          "fleet": fleet.to_json(lang), "seconds": round(total_s, 1),
                          "simulation_seconds": round(simulated_s, 1)}, ensure_ascii=False))
        return
    console.print(_fleet_table(fleet, lang))
    console.print(_diagnosis_table(fleet, lang))
    console.print(f"用时 / took {total_s:.0f} s;  数据库 / database: {url}")
    console.print("接着试试 / try next:\n"
                  "  posdoctor diagnose 10000007\n"
                  "  posdoctor diagnose --fleet\n"
                  "  posdoctor fix 10000007            # 预演 dry run; --apply 执行\n"
                  "  posdoctor ask \"刷卡后显示A0 MAC校验错\"")
