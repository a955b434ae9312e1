"""Seeded runs are reproducible; faults land where asked; the CLI and the bench run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from posdoctor.cli.main import app
from simkit import simulate

FAULTS = ["keys.tmk_mismatch", "txn.wrong_pin", "status.merchant_frozen@10000003", "hw.card_reader"]


def _placement(result) -> list[tuple]:
    return [(i.cause, i.tid, i.variant, i.at) for i in result.injections]


def test_same_seed_same_day(tmp_path: Path) -> None:
    first = simulate(tmp_path / "a", 10, FAULTS, seed=21)
    second = simulate(tmp_path / "b", 10, FAULTS, seed=21)
    assert _placement(first) == _placement(second)
    assert first.outcomes == second.outcomes
    assert first.truth == second.truth
    assert first.truth["10000003"] == ["status.merchant_frozen"]
    third = simulate(tmp_path / "c", 10, FAULTS, seed=22)
    assert _placement(third) != _placement(first) or third.outcomes != first.outcomes


def test_a_host_outage_lasts_its_window_in_every_run(tmp_path: Path) -> None:
    """The host stops and starts again as fleet actions: the terminals meet it the same
    way in every run, however fast the machine, and the evening finds the host back."""
    outage = ["backend.host_down@10000002#0"]
    first = simulate(tmp_path / "a", 6, outage, seed=11)
    second = simulate(tmp_path / "b", 6, outage, seed=11)
    assert first.outcomes == second.outcomes
    assert sum(first.failures.values()) >= 2
    assert all(o["settlement"] == "1/1" and o["sign_off"] == "1/1" for o in first.outcomes.values()), first.outcomes


def test_a_healthy_day_has_no_failures(tmp_path: Path) -> None:
    result = simulate(tmp_path, 8, [], seed=3)
    assert not result.truth
    assert all(n == 0 for n in result.failures.values()), result.outcomes
    summary = result.summary()
    assert summary["txns"] == summary["approved"] > 0
    for outcome in result.outcomes.values():
        assert outcome["sign_in"] == "1/1" and outcome["settlement"] == "1/1" and outcome["sign_off"] == "1/1"
    assert result.reports["events_written"] > 0 and result.reports["rejected"] == 0


def test_simulate_json_cli(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("POSDOCTOR_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    outcome = runner.invoke(app, ["simulate", "-n", "6", "--seed", "4", "--json",
                                  "--fault", "txn.insufficient_funds@10000002", "--fault", "hw.printer"])
    assert outcome.exit_code == 0, outcome.output
    data = json.loads(outcome.stdout)
    assert data["truth"]["10000002"] == ["txn.insufficient_funds"]
    assert {f["cause"] for f in data["faults"]} == {"txn.insufficient_funds", "hw.printer"}
    assert data["summary"]["terminals"] == 6 and data["db"].startswith("sqlite:///")
    assert set(data["outcomes"]) == {str(10000001 + i) for i in range(6)}
    assert data["window"]["since"] < data["window"]["until"]

    bad = runner.invoke(app, ["simulate", "-n", "3", "--json", "--fault", "no.such_cause"])
    assert bad.exit_code == 2
    assert "no.such_cause" in json.loads(bad.stdout)["error"]["en"]
    outside = runner.invoke(app, ["simulate", "-n", "3", "--json", "--fault", "net.offline@10000009"])
    assert outside.exit_code == 2


def test_memory_bench_runs_small(tmp_path: Path) -> None:
    bench = Path(__file__).resolve().parents[2] / "bench" / "sim_memory.py"
    done = subprocess.run([sys.executable, str(bench), "--terminals", "4", "--json", "--home", str(tmp_path)],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(done.stdout.strip().splitlines()[-1])
    assert data["terminals"] == 4 and data["peak_mb"] >= data["baseline_mb"] > 0
    assert data["txns"] > 0 and "per_terminal_kb" in data


def test_a_site_power_cut_strikes_and_ends_on_time_for_every_terminal(tmp_path: Path) -> None:
    """A small fleet (fewer terminals than workers): the cut strikes at its planned time,
    not when the busiest terminal's day has run ahead; every terminal starts up again
    (self-check) right after the power returns; nothing is logged while the power is off."""
    from datetime import datetime, timedelta

    from sqlalchemy import select

    from posdoctor.store.models import Event
    from simkit import open_result_store

    result = simulate(tmp_path, 10, ["hw.power@10000003#1"], seed=2)
    injection = result.injections[0]
    planned = datetime.strptime(injection.at, "%H:%M")
    struck = datetime.strptime(injection.detail["struck_at"], "%H:%M:%S")
    assert timedelta(0) <= struck - planned < timedelta(minutes=2), (injection.at, injection.detail)
    store = open_result_store(result, tmp_path)
    with store.engine.connect() as conn:
        rows = conn.execute(select(Event.tid, Event.at, Event.kind, Event.code)).all()
    store.engine.dispose()
    assert not [row for row in rows if row.code == "tms.unreachable"], "a terminal logged while its power was off"
    restarts = {}
    for tid, at, kind, _code in rows:
        if kind == "self_check":
            restarts.setdefault(tid, []).append(at)
    back = [sorted(ats)[1] for ats in restarts.values() if len(ats) > 1]  # the power-on after the morning's
    assert len(back) == 10, restarts
    assert max(back) - min(back) < timedelta(minutes=2), back  # all together, a minute after the power returns
