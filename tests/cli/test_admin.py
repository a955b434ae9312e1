"""The registry CLI through Typer's test runner: output, files, messages, exit codes."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from typer.testing import CliRunner

from posdoctor.cli import admin
from posdoctor.store import open_store
from posdoctor.store.records import JournalRecord

MID = "898100000000001"
TID = "10000001"
PAN = "6222020000000000000"

app = typer.Typer()
admin.register(app)
runner = CliRunner()


def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), input=input)


def tdes_kcv(key: bytes) -> str:
    """Independent check value: 3DES-encrypt a zero block, keep 4 bytes."""
    encryptor = Cipher(TripleDES(key + key[:8]), modes.ECB()).encryptor()
    return (encryptor.update(bytes(8)) + encryptor.finalize())[:4].hex().upper()


# --- merchant ------------------------------------------------------------------------


def test_merchant_add_on_both_databases(home: Path, db_url: str) -> None:
    result = run("merchant", "add", MID, "--name", "示例商户", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"商户 {MID} 已登记 / merchant {MID} registered: 示例商户\n"
    again = run("merchant", "add", MID, "--name", "x", "--db", db_url)
    assert again.exit_code == 4
    assert again.stderr == f"商户 {MID} 已存在 / merchant {MID} already exists\n"
    listed = run("merchant", "list", "--json", "--db", db_url)
    assert json.loads(listed.stdout) == [{"mid": MID, "name": "示例商户", "status": "active"}]


def test_merchant_add_uses_home_by_default_and_json(home: Path) -> None:
    result = run("merchant", "add", MID, "--name", "A", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"ok": True, "mid": MID, "name": "A", "status": "active"}
    assert (home / "posdoctor.db").exists() and (home / "lmk.key").exists()


@pytest.mark.parametrize("mid", ["89810000000000", "8981000000000012", "89810000000000X"])
def test_bad_mid_is_refused_before_touching_anything(home: Path, mid: str) -> None:
    result = run("merchant", "add", mid, "--name", "A")
    assert result.exit_code == 2
    assert result.stderr == "商户号必须是15位数字 / MID must be 15 digits\n"
    assert not home.exists()


def test_errors_as_json(home: Path) -> None:
    result = run("merchant", "add", "1", "--name", "A", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "ok": False,
        "error": {"type": "InvalidValue", "zh": "商户号必须是15位数字", "en": "MID must be 15 digits"},
    }


def test_bad_database_url_is_a_clear_error(home: Path) -> None:
    result = run("merchant", "add", MID, "--name", "A", "--db", "mysql://u@h/db")
    assert result.exit_code == 1
    assert result.stderr == (
        "不支持的数据库: mysql://u@h/db (只支持 sqlite 和 postgresql) / "
        "unsupported database: mysql://u@h/db (only sqlite and postgresql)\n"
    )


# --- terminal ------------------------------------------------------------------------


def test_terminal_add_writes_keys_and_prints_only_check_values(home: Path, db_url: str, tmp_path: Path) -> None:
    from posdoctor.crypto.hsm import SoftHSM

    assert run("merchant", "add", MID, "--name", "A", "--db", db_url).exit_code == 0
    tk_file, tmk_file = tmp_path / "tk.hex", tmp_path / "tmk.hex"
    result = run("terminal", "add", TID, "--mid", MID, "--serial", "SN0001", "--model", "N910",
                 "--tk-out", str(tk_file), "--tmk-out", str(tmk_file), "--db", db_url)
    assert result.exit_code == 0, result.output
    tk_hex, tmk_hex = tk_file.read_text().strip(), tmk_file.read_text().strip()
    for key_hex, path in ((tk_hex, tk_file), (tmk_hex, tmk_file)):
        assert len(key_hex) == 32 and bytes.fromhex(key_hex)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert key_hex not in result.output
    assert result.stdout.splitlines() == [
        f"终端 {TID} 已登记 / terminal {TID} registered (MID {MID}, SN SN0001)",
        f"传输密钥校验值 / TK KCV:  {tdes_kcv(bytes.fromhex(tk_hex))}",
        f"主密钥校验值 / TMK KCV: {tdes_kcv(bytes.fromhex(tmk_hex))}",
        f"已写出 / written: {tk_file} (0600)",
        f"已写出 / written: {tmk_file} (0600)",
    ]
    store = open_store(db_url, home=home)
    try:
        keys = store.get_terminal_keys(TID)
        hsm = SoftHSM(admin.load_lmk(home))
        assert hsm.reveal_for_key_room(keys["TMK"]).hex().upper() == tmk_hex
        assert hsm.reveal_for_key_room(keys["TK"]).hex().upper() == tk_hex
        terminal = store.get_terminal(TID)
        assert (terminal.mid, terminal.serial, terminal.model) == (MID, "SN0001", "N910")
    finally:
        store.close()


def test_terminal_add_json_and_existing_file_replaced_private(home: Path, tmp_path: Path) -> None:
    run("merchant", "add", MID, "--name", "A")
    tmk_file = tmp_path / "tmk.hex"
    tmk_file.write_text("old")
    tmk_file.chmod(0o644)
    result = run("terminal", "add", TID, "--mid", MID, "--serial", "SN1", "--tmk-out", str(tmk_file), "--json")
    data = json.loads(result.stdout)
    assert data["tmk_kcv"] == tdes_kcv(bytes.fromhex(tmk_file.read_text()))
    assert (data["tid"], data["tk_file"], data["tmk_file"]) == (TID, None, str(tmk_file))
    assert len(data["tk_kcv"]) == 8
    assert stat.S_IMODE(tmk_file.stat().st_mode) == 0o600


def test_terminal_add_unknown_merchant_writes_no_file(home: Path, tmp_path: Path) -> None:
    result = run("terminal", "add", TID, "--mid", MID, "--serial", "SN1", "--tmk-out", str(tmp_path / "k"))
    assert result.exit_code == 3
    assert result.stderr == f"商户 {MID} 不存在 / merchant {MID} not found\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]  # no key file, no temp file


def test_terminal_add_duplicate(home: Path) -> None:
    run("merchant", "add", MID, "--name", "A")
    assert run("terminal", "add", TID, "--mid", MID, "--serial", "SN1").exit_code == 0
    result = run("terminal", "add", TID, "--mid", MID, "--serial", "SN2")
    assert result.exit_code == 4
    assert result.stderr == f"终端 {TID} 已存在 / terminal {TID} already exists\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["1000001", "--mid", MID, "--serial", "SN1"], "终端号必须是8位字母或数字 / TID must be 8 letters or digits"),
        ([TID, "--mid", "12", "--serial", "SN1"], "商户号必须是15位数字 / MID must be 15 digits"),
        ([TID, "--mid", MID, "--serial", "S N"],
         "设备序列号必须是1到32位字母、数字或 . _ - / device serial must be 1 to 32 letters, digits or . _ -"),
        ([TID, "--mid", MID, "--serial", "SN1", "--tk-out", "k", "--tmk-out", "k"],
         "--tk-out 和 --tmk-out 不能是同一个文件 / --tk-out and --tmk-out must be different files"),
    ],
)
def test_terminal_add_bad_input(home: Path, args: list[str], message: str) -> None:
    result = run("terminal", "add", *args)
    assert result.exit_code == 2
    assert result.stderr == message + "\n"


def test_terminal_add_into_missing_directory_registers_nothing(home: Path, tmp_path: Path) -> None:
    run("merchant", "add", MID, "--name", "A")
    target = tmp_path / "nope" / "tmk.hex"
    result = run("terminal", "add", TID, "--mid", MID, "--serial", "SN1", "--tmk-out", str(target))
    assert result.exit_code == 1
    assert result.stderr == (
        f"无法写入 {target}: 目录不存在或目标是目录 / "
        f"cannot write {target}: no such directory, or it is a directory\n"
    )
    assert json.loads(run("terminal", "list", "--json").stdout) == []


# --- card ----------------------------------------------------------------------------


def test_card_add_prints_masked_pan_only(home: Path, db_url: str) -> None:
    result = run("card", "add", PAN, "--pin", "123456", "--balance", "100000", "--expiry", "3012",
                 "--single-limit", "50000", "--daily-limit", "90000", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert PAN not in result.output and "123456" not in result.output
    assert result.stdout == "卡 622202*********0000 已添加 / card 622202*********0000 added (id 1, account 1, balance 100000)\n"
    store = open_store(db_url, home=home)
    try:
        card = store.find_card_by_pan(PAN)
        assert card is not None
        assert (card.expiry, card.single_limit, card.daily_limit, card.status) == ("3012", 50000, 90000, "active")
        assert store.card_pin(card) == "123456"
        assert store.get_account(card.account_id).balance == 100000
    finally:
        store.close()


def test_card_add_json_and_prompted_pin(home: Path) -> None:
    result = run("card", "add", PAN, "--balance", "5", "--status", "lost", "--json", input="2468\n")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.splitlines()[-1])
    assert data == {"ok": True, "card_id": 1, "pan_masked": "622202*********0000", "account_id": 1,
                    "balance": 5, "expiry": None, "status": "lost", "single_limit": None, "daily_limit": None}
    store = open_store(home=home)
    try:
        assert store.card_pin(store.find_card_by_pan(PAN)) == "2468"  # type: ignore[arg-type]
    finally:
        store.close()


def test_card_add_duplicate_shows_masked_pan(home: Path) -> None:
    run("card", "add", PAN, "--pin", "1234", "--balance", "1")
    result = run("card", "add", PAN, "--pin", "1234", "--balance", "1")
    assert result.exit_code == 4
    assert result.stderr == "卡 622202*********0000 已存在 / card 622202*********0000 already exists\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["6222020000000000007", "--pin", "1234", "--balance", "1"], "卡号校验位错误(Luhn) / PAN check digit is wrong (Luhn)"),
        (["622202000000", "--pin", "1234", "--balance", "1"], "卡号必须是13到19位数字 / PAN must be 13 to 19 digits"),
        ([PAN, "--pin", "12345678901234", "--balance", "1"], "密码必须是4到12位数字 / PIN must be 4 to 12 digits"),
        ([PAN, "--pin", "1234", "--balance", "-1"], "balance 金额不能为负数 / balance must not be negative"),
        ([PAN, "--pin", "1234", "--balance", "1", "--expiry", "3099"],
         "有效期必须是YYMM格式(月份01-12) / expiry must be YYMM (month 01-12)"),
        ([PAN, "--pin", "1234", "--balance", "1", "--status", "gone"],
         "status 必须是以下之一: active, lost, expired, blocked / status must be one of: active, lost, expired, blocked"),
    ],
)
def test_card_add_bad_input(home: Path, args: list[str], message: str) -> None:
    result = run("card", "add", *args)
    assert result.exit_code == 2
    assert result.stderr == message + "\n"
    if len(args[0]) >= 13:
        assert args[0] not in result.output  # a PAN is never echoed back
    assert not home.exists()


# --- journal -------------------------------------------------------------------------


def _record_trace(db_url: str, home: Path) -> list[JournalRecord]:
    at = datetime(2024, 6, 1, 9, 0, 0, 123000, tzinfo=UTC)
    records = [
        JournalRecord("in", at=at, tid=TID, mid=MID, route="0800.004", mti="0800", stan="000001",
                      steps=[{"step": "DecodeFrame", "verdict": "ok", "reason": ""},
                             {"step": "LoadTerminal", "verdict": "fail", "reason": "TID [unknown]"}],
                      fields={"t": "0800", "11": "000001", "41": TID, "60": "00000001004", "2": "622202*********0000"},
                      raw_hex="0800002000000000"),
        JournalRecord("out", at=at.replace(microsecond=456000), tid=TID, mid=MID, route="0800.004", mti="0810",
                      stan="000001", rc="97", latency_ms=2.25, fields={"39": "97"}, raw_hex="0810"),
        JournalRecord("in", at=at.replace(second=5), tid="10000002", mti="0820", stan="000009"),
    ]
    store = open_store(db_url, home=home)
    try:
        store.record_journal(records)
    finally:
        store.close()
    return records


def test_journal_text_trace(home: Path, db_url: str) -> None:
    records = _record_trace(db_url, home)
    result = run("journal", TID, "--db", db_url)
    assert result.exit_code == 0, result.output
    local = [r.at.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] for r in records]
    assert result.stdout.splitlines() == [
        f"{local[0]} ← in  {TID} 0800 0800.004 STAN 000001 rc -- -",
        "  steps: DecodeFrame ok · LoadTerminal fail (TID [unknown])",
        "  hex: 0800002000000000",
        "       t  0800",
        "       2  622202*********0000",
        "      11  000001",
        f"      41  {TID}",
        "      60  00000001004",
        f"{local[1]} → out {TID} 0810 0800.004 STAN 000001 rc 97 2.2 ms",
        "  hex: 0810",
        "      39  97",
    ]


def test_journal_json_limit_and_all_terminals(home: Path) -> None:
    db_url = f"sqlite:///{home / 'posdoctor.db'}"
    _record_trace(db_url, home)
    everything = json.loads(run("journal", "--json").stdout)
    assert [(e["tid"], e["mti"]) for e in everything] == [(TID, "0800"), (TID, "0810"), ("10000002", "0820")]
    first = everything[0]
    assert first["at"] == "2024-06-01T09:00:00.123000+00:00"
    assert first["steps"][1] == {"step": "LoadTerminal", "verdict": "fail", "reason": "TID [unknown]"}
    assert first["fields"]["2"] == "622202*********0000"
    newest = json.loads(run("journal", "--limit", "1", "--json").stdout)
    assert [e["mti"] for e in newest] == ["0820"]


def test_journal_empty_and_bad_tid(home: Path) -> None:
    result = run("journal")
    assert (result.exit_code, result.stdout) == (0, "没有报文记录 / no messages in the journal\n")
    bad = run("journal", "10-1")
    assert bad.exit_code == 2
    assert bad.stderr == "终端号必须是8位字母或数字 / TID must be 8 letters or digits\n"


def test_unreachable_database_is_a_clear_error(home: Path) -> None:
    result = run("merchant", "list", "--db", "postgresql://nobody:secret@127.0.0.1:1/none")
    assert result.exit_code == 1
    assert result.stderr.startswith("数据库无法访问: ")
    assert " / database unavailable: " in result.stderr
    assert "secret" not in result.output and "Traceback" not in result.output
