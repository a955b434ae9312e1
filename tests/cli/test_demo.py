"""`posdoctor demo`: a small fleet's day with the demo faults, then the doctor's findings."""

import json

from typer.testing import CliRunner

from posdoctor.cli.main import app
from posdoctor.store import open_store


def _run(*args: str):
    result = CliRunner().invoke(app, ["demo", *args])
    return result, (json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else None)


def test_demo_runs_a_day_and_names_the_injected_causes(home):
    result, out = _run("--terminals", "60", "--json")
    assert result.exit_code == 0, result.output
    assert out["ok"] and out["summary"]["terminals"] == 60
    # the pinned faults inside a 60-terminal fleet, as the simulator reports its ground truth
    assert out["truth"]["10000007"] == ["keys.tmk_mismatch"]
    assert out["truth"]["10000023"] == ["status.merchant_frozen"]
    named = {d["terminal"]: d["findings"][0]["cause"] for d in out["fleet"]["terminals"]}
    for tid in ("10000007", "10000023", "10000042", "10000058"):
        assert named.get(tid) == out["truth"][tid][0], (tid, named.get(tid))
    assert sum(out["fleet"]["by_cause"].values()) == len(out["fleet"]["terminals"])
    finding = next(d for d in out["fleet"]["terminals"] if d["terminal"] == "10000007")["findings"][0]
    assert finding["remedy"]["merchant_steps"]["zh"] and finding["evidence"]

    store = open_store(home=home)  # the evidence stays for `posdoctor diagnose` afterwards
    try:
        routes = {entry.route for entry in store.journal(tid="10000002", limit=500)}
    finally:
        store.engine.dispose()
    assert {"sign_in_004", "sale", "settlement"} <= routes, routes


def test_demo_runs_again_but_never_resets_a_database_it_did_not_make(home, tmp_path):
    first, _ = _run("--terminals", "20", "--json")
    again, out = _run("--terminals", "20", "--json")
    assert first.exit_code == 0 and again.exit_code == 0, again.output
    assert out["summary"]["terminals"] == 20

    other = f"sqlite:///{tmp_path / 'mine.db'}"
    assert CliRunner().invoke(app, ["merchant", "add", "898100000000999", "--name", "x", "--db", other]).exit_code == 0
    refused, err = _run("--terminals", "20", "--db", other, "--json")
    assert refused.exit_code == 2 and "POSDOCTOR_HOME" in err["error"]["en"]
    store = open_store(other, home=home)
    try:
        assert [m.mid for m in store.list_merchants()] == ["898100000000999"]
    finally:
        store.engine.dispose()
