"""`posdoctor term` input handling (no host needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posdoctor.cli.main import app
from posdoctor.terminal import TerminalFiles

TID = "40000001"


def term(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["term", *args])
    return result.exit_code, result.output


def test_uninitialised_terminal(home: Path) -> None:
    code, out = term(TID, "sale", "--card", "6222020000000000000", "--amount", "1", "--json")
    assert code == 1
    assert json.loads(out)["error"]["zh"] == f"终端 {TID} 未初始化; 请先执行 init"


@pytest.mark.parametrize(
    ("args", "zh"),
    [
        (["--tk", "00112233", "--tk-file", "x"], "TK 只能用一种方式给出"),
        (["--tk", "zz"], "TK 不是十六进制"),
        (["--tk", "0011"], "TK 长度应为8/16/24字节"),
        (["--tmk-file", "/nonexistent/tmk.hex"], "无法读取 /nonexistent/tmk.hex: No such file or directory"),
        (["--serial", "S1"], "需要 --tk/--tk-file 或 --tmk/--tmk-file"),
        (["--serial", "S1", "--tk", "00" * 16, "--signin-mode", "005"], "签到方式应为 001/003/004/006"),
        (["--serial", "S1", "--tk", "00" * 16, "--tpdu", "123"], "通讯参数无效"),
    ],
)
def test_init_refuses_bad_input(home: Path, args: list[str], zh: str) -> None:
    code, out = term(TID, "init", *args, "--json")
    assert code == 2
    assert json.loads(out)["error"]["zh"].startswith(zh)


def test_init_offline_records_the_failure_and_keeps_the_state(home: Path) -> None:
    code, out = term(TID, "init", "--serial", "S1", "--tk", "11" * 16, "--port", "1", "--json")
    assert code == 1
    steps = json.loads(out)["steps"]
    assert [s["operation"] for s in steps] == ["self_check", "key_injection", "tmk_download"]
    assert steps[-1]["message_zh"] == "连接主机异常"
    state = TerminalFiles(home).load(TID)
    assert state.comm.port == 1 and state.has_key("TK") and not state.has_key("TMK")


def test_bad_tid_and_bad_card(home: Path) -> None:
    code, out = term("1234", "init", "--serial", "S1", "--tk", "11" * 16, "--json")
    assert code == 2 and json.loads(out)["error"]["zh"] == "终端号 '1234' 不合法(8位字母或数字)"
    term(TID, "init", "--serial", "S1", "--tk", "11" * 16, "--port", "1")
    code, out = term(TID, "sale", "--card", "12ab", "--amount", "1", "--json")
    assert code == 2 and json.loads(out)["error"]["en"].startswith("invalid card data")
    code, out = term(TID, "void", "--stan", "x1", "--json")
    assert code == 2


def test_refusal_is_printed_in_both_languages(home: Path) -> None:
    term(TID, "init", "--serial", "S1", "--tk", "11" * 16, "--port", "1")
    code, out = term(TID, "sale", "--card", "6222020000000000000", "--pin", "123456", "--amount", "100")
    assert code == 1
    assert "请下载主密钥 / Please download the master key" in out
    assert "6222020000000000000" not in out


def test_first_init_needs_a_serial(home: Path) -> None:
    code, out = term(TID, "init", "--tk", "11" * 16, "--json")
    assert code == 2 and json.loads(out)["error"]["en"] == "the first init needs --serial (the device serial number)"


def test_key_of_the_wrong_length_for_sm4(home: Path) -> None:
    code, out = term(TID, "init", "--serial", "S1", "--signin-mode", "006", "--tk", "11" * 8, "--json")
    assert code == 2
    assert json.loads(out)["error"]["en"] == "key length 8 bytes is not allowed (allowed: 16)"
