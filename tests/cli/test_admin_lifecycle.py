"""Lifecycle, operator, policy, params and payout commands: exact forms, JSON, exit codes,
and bad input that changes nothing."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from posdoctor.cli import admin
from posdoctor.store import open_store
from posdoctor.tms.credentials import authenticate

MID = "898100000000501"
TID = "60000001"

app = typer.Typer()
admin.register(app)
runner = CliRunner()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def ok_json(*args: str) -> dict:  # type: ignore[type-arg]
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def registered(home: Path) -> Path:
    assert run("merchant", "add", MID, "--name", "命令行商户", "--mcc", "5812", "--status", "pending").exit_code == 0
    assert run("terminal", "add", TID, "--mid", MID, "--serial", "SN-CLI-1", "--model", "N910").exit_code == 0
    return home


def test_merchant_lifecycle_commands_and_show(registered: Path) -> None:
    assert ok_json("merchant", "approve", MID) == {"ok": True, "mid": MID, "status": "active", "reason": "approved"}
    frozen = run("merchant", "freeze", MID, "--reason", "风控审查")
    assert frozen.exit_code == 0
    assert frozen.stdout == f"商户 {MID} 现为冻结 / merchant {MID} is now frozen (风控审查)\n"
    assert ok_json("merchant", "unfreeze", MID)["status"] == "active"
    assert ok_json("merchant", "account", MID, "--number", "6222021234567890", "--bank", "工商银行")["number"] == \
        "6222********7890"
    assert ok_json("merchant", "account-status", MID, "invalid", "--reason", "销户")["status"] == "invalid"
    shown = ok_json("merchant", "show", MID)
    assert (shown["status"], shown["mcc"], shown["account"]["status"]) == ("active", "5812", "invalid")
    assert [h["new"] for h in shown["history"]] == ["active", "frozen", "active"]
    assert [h["actor"].startswith("cli") for h in shown["history"]] == [True] * 3
    assert shown["terminals"] == [{"tid": TID, "status": "active", "reason": None, "serial": "SN-CLI-1",
                                   "model": "N910"}]
    text = run("merchant", "show", MID)
    assert "状态 / status: active (正常)" in text.stdout and "6222********7890 工商银行 invalid (销户)" in text.stdout
    assert ok_json("merchant", "close", MID, "--reason", "合同到期")["status"] == "closed"
    again = run("merchant", "unfreeze", MID)
    assert again.exit_code == 2
    assert again.stderr == f"商户 {MID} 当前为已注销，不能改为正常 / merchant {MID} is closed: it cannot become active\n"


BAD_INPUT = [
    (("merchant", "freeze", MID, "--reason", " "), "a reason is required (--reason)"),
    (("merchant", "freeze", "12345", "--reason", "x"), "MID must be 15 digits"),
    (("merchant", "add", "898100000000599", "--name", "x", "--mcc", "54"), "MCC must be 4 digits"),
    (("merchant", "add", "898100000000599", "--name", "x", "--status", "frozen"), "status"),
    (("merchant", "account", MID, "--number", "12ab", "--bank", "x"), "8 to 32 digits"),
    (("merchant", "account-status", MID, "broken"), "status"),
    (("terminal", "allow", TID, "--types", "sale,cashback"), "invalid transaction types: cashback"),
    (("terminal", "disable", TID, "--reason", ""), "a reason is required"),
    (("policy", "set", "min_app_version", "latest"), "version must look like"),
    (("policy", "set", "speed", "1"), "unknown policy speed"),
    (("params", "set", "99", "1"), "unknown parameter 99"),
    (("params", "set", "12", "123"), "value is invalid"),
    (("params", "set", "12", "30", "--mid", MID, "--tid", TID), "not both"),
    (("operator", "add", TID, "1", "--password", "pass1234"), "2 to 4 digits"),
    (("operator", "add", TID, "01", "--password", "x"), "4 to 12 letters or digits"),
    (("payout", "why", "1"), "MID must be 15 digits"),
]


def test_bad_input_exits_2_and_changes_nothing(registered: Path) -> None:
    store = open_store(home=registered)

    def snapshot() -> list[str]:
        return [repr(x) for x in (store.last_host_change_id(), len(store.events(limit=1000)),
                                  store.get_merchant(MID).status, store.list_operators(TID), store.policies(),
                                  store.param_rows())]

    try:
        before = snapshot()
        for args, message in BAD_INPUT:
            result = run(*args)
            assert result.exit_code == 2, (args, result.output)
            assert message in result.stderr and " / " in result.stderr, (args, result.stderr)  # zh / en
            assert snapshot() == before, args
    finally:
        store.close()


def test_json_errors_and_not_found(registered: Path) -> None:
    result = run("terminal", "disable", "69999999", "--reason", "x", "--json")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["error"]["en"] == "terminal 69999999 not found"


def test_terminal_commands(registered: Path) -> None:
    assert ok_json("terminal", "suspend", TID, "--reason", "欠费")["status"] == "suspended"
    assert ok_json("terminal", "disable", TID, "--reason", "lost device")["reason"] == "lost device"
    assert ok_json("terminal", "enable", TID)["status"] == "active"
    assert ok_json("terminal", "allow", TID, "--types", "sale,void")["allowed_types"] == ["sale", "void"]
    shown = ok_json("terminal", "show", TID)
    assert (shown["status"], shown["device_status"], shown["allowed_types"]) == ("active", "active", ["sale", "void"])
    assert [h["new"] for h in shown["history"]] == ["suspended", "disabled", "active"]
    assert "允许交易 / allowed types: sale,void" in run("terminal", "show", TID).stdout


def test_operator_commands(registered: Path) -> None:
    assert ok_json("operator", "add", TID, "01", "--password", "pass1234")["status"] == "active"
    dup = run("operator", "add", TID, "01", "--password", "pass1234")
    assert dup.exit_code == 4
    assert ok_json("operator", "list", TID) == [{"opno": "01", "status": "active", "failures": 0,
                                                "locked_at": None, "lock_source": None}]
    not_locked = run("operator", "unlock", TID, "01")
    assert not_locked.exit_code == 2 and "already active" in not_locked.stderr
    store = open_store(home=registered)
    try:
        store.change_operator_status(TID, "01", "locked", reason="5 wrong passwords", actor="terminal")
    finally:
        store.close()
    assert ok_json("operator", "unlock", TID, "01")["status"] == "active"
    assert "pass1234" not in run("operator", "list", TID).stdout


def test_policy_and_params_commands(registered: Path) -> None:
    assert ok_json("policy", "set", "mcc.5812", "sale,refund", "--reason", "restaurants")["value"] == ["sale", "refund"]
    assert ok_json("policy", "set", "min_app_version", "1.2.0")["value"] == "1.2.0"
    table = {row["name"]: row for row in ok_json("policy", "show")}  # type: ignore[union-attr]
    assert table["mcc.5812"]["reason"] == "restaurants" and table["signin_requires_serial"]["default"] is True
    assert ok_json("params", "set", "receive_timeout", "30")["version"] == 1
    assert ok_json("params", "set", "12", "45", "--tid", TID)["scope"] == f"terminal {TID}"
    shown = ok_json("params", "show", TID)
    assert (shown["version"], shown["stale"]) == (2, True)
    assert shown["params"] == [{"tag": "12", "name": "receive_timeout", "value": "45", "from": "terminal"}]
    assert "需要下载 / download pending" in run("params", "show", TID).stdout


def test_payout_commands_without_money(registered: Path) -> None:
    assert ok_json("payout", "list", "--mid", MID) == []
    why = ok_json("payout", "why", MID)
    assert why["block"] == "merchant_pending" and why["payouts"] == []
    assert "商户尚在审核中" in run("payout", "why", MID).stdout


def test_terminal_add_writes_a_credential(home: Path, tmp_path: Path) -> None:
    assert run("merchant", "add", MID, "--name", "凭证商户").exit_code == 0
    target = tmp_path / "cred.txt"
    result = run("terminal", "add", TID, "--mid", MID, "--serial", "SN-CRED-1", "--credential-out", str(target),
                 "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["credential_file"] == str(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    store = open_store(home=home)
    try:
        assert authenticate(store, target.read_text().strip(), "SN-CRED-1") == (TID, "SN-CRED-1")
    finally:
        store.close()
    assert not list(tmp_path.glob(".cred.txt.*"))
