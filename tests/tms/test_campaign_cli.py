"""``posdoctor firmware|campaign|credential`` through the real Typer app (CliRunner)."""

import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from posdoctor.cli.main import app
from posdoctor.store import open_store
from posdoctor.tms.credentials import authenticate
from posdoctor.tms.reports import Report, record_reports
from posdoctor.tms.signing import public_key_hex, verify_package

MID = "898100000000001"


@pytest.fixture
def cli(db_url, home):
    runner = CliRunner()

    def run(*args, ok=True):
        result = runner.invoke(app, [*args, "--db", db_url] if args[-1] != "--no-db" else list(args[:-1]))
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


@pytest.fixture
def fleet_db(db_url, home):
    store = open_store(db_url, home=home)
    store.add_merchant(MID, "商户")
    tids = [f"{30000000 + i:08d}" for i in range(12)]
    for tid in tids:
        store.add_terminal(tid, MID, f"SN{tid}", model="P1")
    now = datetime.now(UTC)
    record_reports(store, [Report(tid, "heartbeat", {"app_version": "1.0.0"}, now) for tid in tids])
    yield store, tids
    store.close()


def test_build_add_list_and_a_campaign_lifecycle(cli, fleet_db, tmp_path, home):
    store, tids = fleet_db
    package = tmp_path / "p.zip"
    built = json.loads(cli("firmware", "build", str(package), "--version", "2.0.0", "--models", "P1",
                           "--defect", "self_check", "--size", "4096", "--json", "--no-db").output)
    assert built["defect"] == "self_check"
    assert verify_package(public_key_hex(home), package.read_bytes(), (tmp_path / "p.zip.sig").read_text().strip())
    added = json.loads(cli("firmware", "add", str(package), "--version", "2.0.0", "--models", "P1,P2",
                           "--resets", "config,keys", "--settle-first", "--json").output)
    assert added["sha256"] == built["sha256"] and added["resets"] == ["config", "keys"]
    listed = json.loads(cli("firmware", "list", "--json").output)
    assert [(p["version"], p["models"], p["settle_first"]) for p in listed] == [("2.0.0", ["P1", "P2"], True)]

    created = json.loads(cli("campaign", "create", "night", "--version", "2.0.0", "--models", "P1",
                             "--canary", "25", "--threshold", "0.3", "--min-sample", "2",
                             "--window", "01:00-05:00", "--stagger-minutes", "10", "--json").output)
    cid = str(created["id"])
    assert created["state"] == "draft" and created["window"] == "01:00-05:00"
    started = json.loads(cli("campaign", "start", cid, "--json").output)
    assert (started["state"], started["targeted"]) == ("running", 12)
    status = json.loads(cli("campaign", "status", cid, "--json").output)
    assert status["targets"] == {"pending": 12} and "target_list" not in status
    listed_targets = json.loads(cli("campaign", "status", cid, "--targets", "--json").output)["target_list"]
    assert sorted(t["tid"] for t in listed_targets) == tids
    assert sum(1 for t in listed_targets if t["wave"] == 1) == 3  # 25 % of 12
    assert "halted" == json.loads(cli("campaign", "halt", cid, "--reason", "look", "--json").output)["state"]
    assert json.loads(cli("campaign", "resume", cid, "--json").output)["state"] == "running"
    [row] = json.loads(cli("campaign", "list", "--json").output)
    assert {k: row[k] for k in ("state", "targeted", "succeeded", "failed", "rolled_back")} == {
        "state": "running", "targeted": 12, "succeeded": 0, "failed": 0, "rolled_back": 0}
    assert json.loads(cli("campaign", "rollback", cid, "--json").output)["state"] == "rolled_back"
    text = cli("campaign", "status", cid).output
    assert "已回滚 / rolled_back" in text and "targeted 12" in text


def test_errors_have_exit_codes_and_both_languages(cli, fleet_db, tmp_path):
    missing = cli("campaign", "status", "99", "--json", ok=False)
    assert missing.exit_code == 3 and json.loads(missing.output)["error"]["en"] == "campaign 99 not found"
    bad = cli("campaign", "create", "x", "--version", "9.9", "--window", "25:00-01:00", ok=False)
    assert bad.exit_code == 2 and "HH:MM" in bad.output
    unreadable = cli("firmware", "add", str(tmp_path / "none.zip"), "--version", "1", "--models", "P1", ok=False)
    assert unreadable.exit_code == 1 and "cannot read" in unreadable.output and "无法读取" in unreadable.output
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"junk")
    refused = cli("firmware", "add", str(junk), "--version", "1", "--models", "P1", "--json", ok=False)
    assert refused.exit_code == 2 and "not a valid package" in json.loads(refused.output)["error"]["en"]


def test_credential_issue_to_a_private_file_and_revoke(cli, fleet_db, tmp_path):
    store, tids = fleet_db
    out = tmp_path / "cred"
    cli("credential", "issue", tids[0], "--out", str(out))
    assert out.stat().st_mode & 0o777 == 0o600
    token = out.read_text().strip()
    assert authenticate(store, token) == (tids[0], f"SN{tids[0]}")
    printed = json.loads(cli("credential", "issue", tids[1], "--json").output)["credential"]
    assert authenticate(store, printed)[0] == tids[1]
    assert json.loads(cli("credential", "revoke", tids[0], "--json").output)["revoked"] == 1
    assert cli("credential", "issue", "99999999", ok=False).exit_code == 3
