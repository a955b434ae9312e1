"""`posdoctor demo` end to end: the real host and emulator, small fleet, JSON summary."""

import json

from typer.testing import CliRunner

from posdoctor.cli.main import app
from posdoctor.store import open_store


def test_demo_runs_terminals_through_the_day_and_conserves_money(home):
    runner = CliRunner()
    result = runner.invoke(app, ["demo", "--terminals", "3", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["terminals"] == 3
    assert summary["failed_terminals"] == []
    assert summary["money_conserved"] is True
    # 3 sales (1250 + 3800 + 990), the first voided, 500 refunded: 4290 per terminal
    assert summary["net_spent"] == 3 * (3800 + 990 - 500)
    assert summary["card_balance_before"] - summary["card_balance_after"] == summary["net_spent"]

    store = open_store(home=home)
    try:
        trace = store.journal(tid="10000002", limit=200)
        routes = {entry.route for entry in trace}
    finally:
        store.engine.dispose()
    assert {"tmk_download", "sign_in_004", "sale", "void", "refund", "settlement", "sign_off"} <= routes, routes


def test_demo_can_run_again_on_the_same_data(home):
    runner = CliRunner()
    first = runner.invoke(app, ["demo", "--terminals", "2", "--json"])
    second = runner.invoke(app, ["demo", "--terminals", "2", "--json"])
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    before = json.loads(first.stdout.strip().splitlines()[-1])
    after = json.loads(second.stdout.strip().splitlines()[-1])
    assert after["card_balance_before"] == before["card_balance_after"]
