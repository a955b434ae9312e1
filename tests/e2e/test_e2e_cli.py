"""`posdoctor term` against the real host (the CLI runs in a worker thread, the host in
the test's event loop)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from e2esite import MID, PAN, PIN, SERIAL, TID, Site
from typer.testing import CliRunner

from posdoctor.cli.main import app
from posdoctor.terminal import TerminalFiles


async def term(*args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(CliRunner().invoke, app, ["term", TID, *args])
    return result.exit_code, result.output


async def term_json(*args: str) -> tuple[int, dict[str, Any]]:
    code, output = await term(*args, "--json")
    return code, json.loads(output)


async def test_cli_lifecycle(site: Site, tmp_path: Path) -> None:
    host, port = site.address
    tk_file = tmp_path / "tk.hex"
    tk_file.write_text(site.sheet.tk.hex().upper() + "\n")

    code, out = await term("init", "--serial", SERIAL, "--model", "N910", "--mid", MID, "--tk-file", str(tk_file),
                           "--host", host, "--port", str(port), "--timeout", "3")
    assert code == 0, out
    assert "主密钥下载成功 / Master key downloaded" in out
    assert "IC卡参数下载成功" in out

    code, out = await term("signin")
    assert code == 0 and "签到成功 / Signed in" in out

    code, data = await term_json("balance", "--card", PAN, "--pin", PIN)
    assert code == 0 and data["balance"] == 100_000 and data["response_zh"] == "交易成功"

    code, data = await term_json("sale", "--card", PAN, "--pin", PIN, "--amount", "1234")
    assert code == 0 and data["txn"]["amount"] == 1234
    assert data["txn"]["pan"] == "622202*********0000"
    stan, rrn = data["txn"]["stan"], data["txn"]["rrn"]

    code, out = await term("sale", "--card", PAN, "--pin", "000000", "--amount", "1")
    assert code == 1 and "应答码 / response code 55: 密码错 / incorrect PIN" in out

    code, data = await term_json("refund", "--card", PAN, "--pin", PIN, "--amount", "34", "--orig-rrn", rrn)
    assert code == 0 and data["txn"]["kind"] == "refund"

    code, data = await term_json("void", "--stan", str(int(stan)))
    assert code == 1 and data["response_code"] == "12"  # a partly refunded sale cannot be voided

    code, out = await term("signoff")
    assert code == 1 and "有未结算交易,请先结算" in out

    code, data = await term_json("settle")
    assert code == 0 and data["detail"]["debit_amount"] == 1234 and data["detail"]["credit_amount"] == 34

    code, out = await term("signoff")
    assert code == 0 and "签退成功" in out
    assert site.balance() == 100_000 - 1234 + 34

    state_text = TerminalFiles(site.home).state_path(TID).read_text()
    assert PAN not in state_text and site.sheet.tk.hex().upper() not in state_text.upper()
    assert site.sheet.tmk.hex().upper() not in state_text.upper()

    code, data = await term_json("show")
    assert code == 0 and data["batch"] == "000002" and data["keys"]["TMK"] == site.sheet.tmk_kcv.hex().upper()


async def test_cli_injected_tmk_and_echo(site: Site) -> None:
    host, port = site.address
    code, out = await term("init", "--serial", SERIAL, "--mid", MID, "--tmk", site.sheet.tmk.hex(),
                           "--host", host, "--port", str(port))
    assert code == 0, out
    assert "主密钥已注入" in out and "主密钥下载成功" not in out
    code, data = await term_json("echo")
    assert code == 0 and data["code"] == "ok.echo"
    code, data = await term_json("echo", "--port", "1")
    assert code == 1 and data["message_zh"] == "连接主机异常"
