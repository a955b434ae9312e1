"""`posdoctor demo`: the host on loopback and a demo merchant's terminals through a day.

Each terminal is registered (or re-keyed when it already is), then the real emulator
downloads its master key, parameters, CAPK and AID, signs in, makes a balance inquiry,
sales, a void and a refund, settles and signs off, over TCP with real ISO 8583 bytes.
The database stays in `$POSDOCTOR_HOME` for the commands the README shows next.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from posdoctor.crypto.hsm import SoftHSM
from posdoctor.host.config import HostConfig
from posdoctor.host.provision import KeyRoomSheet, provision_card, provision_terminal, rekey_terminal
from posdoctor.host.server import HostServer
from posdoctor.store import Store, open_store
from posdoctor.store.config import load_lmk, load_settings
from posdoctor.terminal import Card, Outcome, PaymentApp, TerminalFiles, open_app

DEMO_MID = "898100000000001"
DEMO_MERCHANT = "posdoctor 演示商户 Demo Merchant"
DEMO_CARD = "6222021234567890128"
DEMO_PIN = "123456"
DEMO_BALANCE = 10_000_000
FIRST_TID = 10000001
SALES = (1250, 3800, 990)
STEPS = ("init", "signin", "balance", "sale", "sale", "sale", "void", "refund", "settle", "signoff")


@dataclass
class TerminalRun:
    tid: str
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def spent(self) -> int:
        """Net amount taken from the card by this terminal's approved transactions."""
        total = 0
        for outcome in self.outcomes:
            if outcome.ok and outcome.txn is not None:
                sign = -1 if outcome.operation in ("void", "refund") else 1
                total += sign * outcome.txn.amount
        return total


def register_demo_fleet(store: Store, hsm: SoftHSM, count: int) -> dict[str, KeyRoomSheet]:
    """The demo merchant, its terminals and a card; existing ones are reused (re-keyed)."""
    if not any(m.mid == DEMO_MID for m in store.list_merchants()):
        store.add_merchant(DEMO_MID, DEMO_MERCHANT)
    if store.find_card_by_pan(DEMO_CARD) is None:
        provision_card(store, hsm, DEMO_CARD, DEMO_PIN, DEMO_BALANCE)
    known = {t.tid for t in store.list_terminals(DEMO_MID)}
    sheets = {}
    for i in range(count):
        tid = str(FIRST_TID + i)
        if tid not in known:
            sheets[tid] = provision_terminal(store, hsm, tid, DEMO_MID, f"DEMO{i + 1:06d}", "EMU-100")
        else:
            sheets[tid] = rekey_terminal(store, hsm, tid)
    return sheets


def card_balance(store: Store) -> int:
    card = store.find_card_by_pan(DEMO_CARD)
    assert card is not None, "the demo card is registered by register_demo_fleet"
    return store.get_account(card.account_id).balance


async def run_terminal(home: Path, tid: str, sheet: KeyRoomSheet, port: int, advance) -> TerminalRun:
    files = TerminalFiles(home)
    if files.exists(tid):
        files.state_path(tid).unlink()  # a factory-fresh device each demo run
    serial = f"DEMO{int(tid) - FIRST_TID + 1:06d}"
    app: PaymentApp = open_app(home, tid, create={"serial": serial, "mid": DEMO_MID, "model": "EMU-100"})
    app.state.comm.host, app.state.comm.port = "127.0.0.1", port
    app.inject_transport_key(sheet.tk)
    card = Card(DEMO_CARD)
    run = TerminalRun(tid)

    async def step(coro) -> Outcome:
        outcome = await coro
        run.outcomes.append(outcome)
        advance()
        return outcome

    init = await app.initialise()
    run.outcomes.extend(init)
    advance()
    await step(app.sign_in())
    await step(app.balance(card, DEMO_PIN))
    sales = [await step(app.sale(card, amount, DEMO_PIN)) for amount in SALES]
    if sales[0].ok and sales[0].txn is not None:
        await step(app.void(sales[0].txn.stan, card, DEMO_PIN))
    if sales[1].ok and sales[1].txn is not None and sales[1].txn.rrn:
        await step(app.refund(card, 500, sales[1].txn.rrn, DEMO_PIN))
    await step(app.settle())
    await step(app.sign_off())
    return run


async def run_demo(store: Store, hsm: SoftHSM, home: Path, count: int, console: Console,
                   show_progress: bool) -> tuple[list[TerminalRun], int, int]:
    sheets = register_demo_fleet(store, hsm, count)
    before = card_balance(store)
    server = HostServer(store, hsm, HostConfig(port=0))
    _, port = await server.start()
    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, disable=not show_progress) as progress:
            task = progress.add_task("终端上线与交易 / terminals at work", total=count * len(STEPS))
            runs = await asyncio.gather(*(
                run_terminal(home, tid, sheet, port, lambda: progress.advance(task))
                for tid, sheet in sheets.items()
            ))
    finally:
        await server.stop()
    return list(runs), before, card_balance(store)


def summary_table(runs: list[TerminalRun]) -> Table:
    table = Table(title="演示结果 / Demo results (ok/tried)")
    for column in ("TID", "初始化\ninit", "签到\nsign-in", "查询\nbalance", "消费\nsale", "撤销\nvoid",
                   "退货\nrefund", "结算\nsettle", "签退\nsign-off"):
        table.add_column(column, no_wrap=True)
    for run in runs:
        by_op: dict[str, list[Outcome]] = {}
        for outcome in run.outcomes:
            by_op.setdefault(outcome.operation, []).append(outcome)

        def mark(op: str) -> str:
            got = by_op.get(op, [])
            return "-" if not got else f"{sum(o.ok for o in got)}/{len(got)}"

        init_ok = all(o.ok for o in run.outcomes if o.operation.endswith("_download"))
        table.add_row(run.tid, "✓" if init_ok else "✗", mark("sign_in"), mark("balance"), mark("sale"),
                      mark("void"), mark("refund"), mark("settlement"), mark("sign_off"))
    return table


def demo(
    terminals: int = typer.Option(20, "--terminals", "-n", min=1, max=500, help="How many terminals"),
    db: str | None = typer.Option(None, "--db", help="Database URL (default: SQLite in POSDOCTOR_HOME)"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables"),
) -> None:
    """Run the host and a demo merchant's terminals through a day. 演示：主机与终端完整流程。"""
    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 100)
    settings = load_settings()
    home = settings.ensure_home()
    store = open_store(db)
    hsm = SoftHSM(load_lmk(home))
    try:
        runs, before, after = asyncio.run(run_demo(store, hsm, home, terminals, console, not as_json))
    finally:
        store.engine.dispose()
    spent = sum(run.spent() for run in runs)
    conserved = before - after == spent
    failed = [run for run in runs if run.failed]
    result = {
        "terminals": len(runs), "failed_terminals": [run.tid for run in failed],
        "card_balance_before": before, "card_balance_after": after, "net_spent": spent,
        "money_conserved": conserved, "home": str(home),
    }
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        console.print(summary_table(runs))
        for run in failed:
            for outcome in run.failed:
                console.print(f"[red]{run.tid} {outcome.operation}[/red]: {outcome.text}")
        console.print(f"卡余额 card balance: {before} -> {after} 分 (fen); 净消费 net spent {spent}; "
                      f"资金守恒 money conserved: {'是 yes' if conserved else '否 NO'}")
        console.print(f"数据保存在 data kept in {home}: 试试 try `posdoctor journal {FIRST_TID}`")
    if failed or not conserved:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
