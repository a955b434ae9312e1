"""Registry changes seen on the wire at once: the real host on loopback, the real emulator,
changes made through the CLI (its own engine: another writer, as another process would
be) and applied by the host's change feed before the next message."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from posdoctor.cli import admin
from posdoctor.crypto.hsm import SoftHSM
from posdoctor.host import HostConfig, HostServer, KeyRoomSheet, provision_card, provision_terminal
from posdoctor.store import Store
from posdoctor.terminal import Card, Device, PaymentApp, TcpLink, TerminalFiles, new_state
from posdoctor.tms.payouts import payout_tick

MID = "898100000000401"
TID = "50000001"
SERIAL = "SN-HS-0001"
MODEL = "N910"
PAN = "6222020000000000000"
PIN = "123456"
CARD = Card(PAN, expiry="3012")
CONFIG = HostConfig(port=0, commit_interval_s=0.0005, idle_timeout_s=5.0, change_feed_interval_s=0.05)

cli = typer.Typer()
admin.register(cli)
runner = CliRunner()


@dataclass
class Live:
    store: Store
    host: HostServer
    sheet: KeyRoomSheet
    db_url: str
    home: Path
    address: tuple[str, int]

    def admin(self, *args: str) -> dict:  # type: ignore[type-arg]
        """Run a CLI command against the same database (its own engine) and wait until the
        host's change feed has applied what it wrote."""
        result = runner.invoke(cli, [*args, "--db", self.db_url, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    async def applied(self) -> None:
        target = self.store.last_host_change_id()
        for _ in range(400):
            if self.host.change_feed.last_id >= target:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"change feed stuck at {self.host.change_feed.last_id} < {target}")

    def terminal(self) -> PaymentApp:
        files = TerminalFiles(self.home)
        state = new_state(TID, SERIAL, mid=MID, model=MODEL)
        state.comm.host, state.comm.port = self.address
        state.comm.connect_timeout_s, state.comm.receive_timeout_s = 2.0, 3.0
        return PaymentApp(state, Device(SERIAL, MODEL, device_key=files.device_key(TID)), link=TcpLink(),
                          persist=files.save)

    async def ready(self) -> PaymentApp:
        app = self.terminal()
        app.inject_transport_key(self.sheet.tk)
        assert all(o.ok for o in await app.initialise())
        app.state.comm.receive_timeout_s = 3.0
        assert (await app.sign_in()).ok
        return app

    def refusal(self) -> str:
        """The reason of the refusing step of the newest inbound message."""
        entry = [e for e in self.store.journal(TID, limit=5) if e.direction == "in"][-1]
        refused = [s for s in entry.steps if s["verdict"] == "refused"]
        assert refused, entry.steps
        return f"{refused[0]['step']}: {refused[0]['reason']}"


SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
"""The freeze/payout flow runs on both backends; the other wire tests on SQLite only."""


@pytest.fixture
async def live(store: Store, db_url: str, home: Path, lmk: bytes) -> AsyncIterator[Live]:
    hsm = SoftHSM(lmk)
    store.add_merchant(MID, "状态商户", mcc="5411")
    sheet = provision_terminal(store, hsm, TID, MID, SERIAL, MODEL)
    provision_card(store, hsm, PAN, PIN, 1_000_000, expiry="3012")
    host = HostServer(store, hsm, CONFIG)
    address = await host.start()
    try:
        yield Live(store, host, sheet, db_url, home, address)
    finally:
        await host.stop()


async def test_freeze_is_03_at_once_unfreeze_is_00_and_payouts_wait(live: Live) -> None:
    app = await live.ready()
    assert (await app.sale(CARD, 1_000, PIN)).ok
    live.admin("merchant", "account", MID, "--number", "6222021234567890", "--bank", "工商银行")
    live.admin("merchant", "freeze", MID, "--reason", "risk review")
    await live.applied()
    refused = await app.sale(CARD, 2_000, PIN)
    assert (refused.ok, refused.response_code) == (False, "03")
    assert live.refusal() == f"CheckStatus: merchant {MID} frozen: risk review"
    live.admin("merchant", "unfreeze", MID)
    await live.applied()
    assert (await app.sale(CARD, 3_000, PIN)).response_code == "00"
    settled = await app.settle()
    assert settled.ok, settled.text

    live.admin("merchant", "freeze", MID, "--reason", "chargeback spike")
    now = datetime.now(UTC)
    assert payout_tick(live.store, now) == {"scheduled": 1, "held": 1, "released": 0, "paid": 0}
    why = live.admin("payout", "why", MID)
    assert why["payouts"][0]["amount"] == 4_000 and why["payouts"][0]["status"] == "held"
    assert any("商户已冻结(chargeback spike)" in line for line in why["zh"])
    live.admin("merchant", "unfreeze", MID)
    assert payout_tick(live.store, now + timedelta(days=2))["paid"] == 1
    shown = live.admin("merchant", "show", MID)
    assert [p["status"] for p in shown["payouts"]] == ["paid"]
    assert [h["new"] for h in shown["history"]] == ["frozen", "active", "frozen", "active"]


@SQLITE_ONLY
async def test_disable_is_97_with_its_reason_and_enable_restores(live: Live) -> None:
    app = await live.ready()
    live.admin("terminal", "disable", TID, "--reason", "lost device")
    await live.applied()
    refused = await app.sale(CARD, 100, PIN)
    assert refused.response_code == "97"
    assert live.refusal() == f"CheckStatus: terminal {TID} disabled: lost device"
    bad = runner.invoke(cli, ["terminal", "suspend", TID, "--reason", "x", "--db", live.db_url])
    assert bad.exit_code == 2 and "cannot become suspended" in bad.stderr  # disabled -> suspended is illegal
    live.admin("terminal", "enable", TID)
    await live.applied()
    assert (await app.sale(CARD, 100, PIN)).response_code == "00"


@SQLITE_ONLY
async def test_transaction_type_policies_answer_58(live: Live) -> None:
    app = await live.ready()
    sale = await app.sale(CARD, 500, PIN)
    assert sale.ok and sale.txn is not None
    live.admin("policy", "set", "mcc.5411", "sale,balance", "--reason", "grocery: no voids")
    await live.applied()
    void = await app.void(sale.txn.stan)
    assert void.response_code == "58"
    assert live.refusal() == "CheckStatus: void not allowed for merchant category 5411 (policy mcc.5411: sale,balance)"
    live.admin("policy", "set", "mcc.5411", "none")
    live.admin("terminal", "allow", TID, "--types", "sale")
    await live.applied()
    balance = await app.balance(CARD, PIN)
    assert balance.response_code == "58"
    assert live.refusal() == f"CheckStatus: balance not allowed on terminal {TID} (allowed types: sale)"
    assert (await app.void(sale.txn.stan)).response_code == "58"
    live.admin("terminal", "allow", TID, "--types", "all")
    await live.applied()
    assert (await app.void(sale.txn.stan)).response_code == "00"


@SQLITE_ONLY
async def test_min_app_version_refuses_sign_in_with_07(live: Live) -> None:
    app = await live.ready()
    assert live.store.get_terminal(TID).app_version == "010000"  # reported in sign-in field 62
    live.admin("policy", "set", "min_app_version", "1.2.0")
    await live.applied()
    refused = await app.sign_in()
    assert (refused.ok, refused.response_code) == (False, "07")
    assert live.refusal() == "CheckDevice: app version 010000 (field 62 AV) below minimum 1.2.0 (policy min_app_version)"
    app.state.app_version = "010200"  # upgraded
    assert (await app.sign_in()).ok
    assert live.store.get_terminal(TID).app_version == "010200"
    live.admin("policy", "set", "min_app_version", "1.3")
    await live.applied()
    app.state.settings.signin_device_info = False  # no 62: the last reported version counts
    assert (await app.sign_in()).response_code == "07"
    assert live.refusal().endswith("app version 010200 (last reported) below minimum 1.3 (policy min_app_version)")


@SQLITE_ONLY
async def test_stale_parameters_are_asked_for_and_downloaded(live: Live) -> None:
    app = await live.ready()
    assert not (await app.echo()).follow_ups
    set_ = live.admin("params", "set", "receive_timeout", "30")
    await live.applied()
    echo = await app.echo()
    assert echo.ok and [f.operation for f in echo.follow_ups] == ["param_download"]
    assert echo.follow_ups[0].ok and app.state.params["12"] == "30"
    assert live.store.get_terminal(TID).params_version == set_["version"]
    assert not (await app.echo()).follow_ups  # up to date now
    shown = live.admin("params", "show", TID)
    assert (shown["version"], shown["downloaded_version"], shown["stale"]) == (set_["version"], set_["version"], False)
    live.admin("params", "set", "tip", "1", "--tid", TID)
    await live.applied()
    again = await app.echo()
    assert [f.operation for f in again.follow_ups] == ["param_download"] and app.state.params["18"] == "1"


@SQLITE_ONLY
async def test_device_checks_at_tmk_download_and_sign_in(live: Live) -> None:
    app = await live.ready()
    app.state.settings.signin_device_info = False
    assert (await app.sign_in()).ok  # no serial sent: accepted by default
    live.admin("policy", "set", "signin_requires_serial", "true")
    await live.applied()
    assert (await app.sign_in()).response_code == "08"
    assert "policy signin_requires_serial" in live.refusal()
    app.state.settings.signin_device_info = True
    assert (await app.sign_in()).ok
    app.state.serial = "SN-OTHER"  # the same TID used from another device
    assert (await app.sign_in()).response_code == "08"
    assert (await app.download_tmk()).response_code == "08"
    assert "is not the one bound to TID" in live.refusal()
    app.state.serial = SERIAL
    live.store.change_device_status(SERIAL, "lost", reason="stolen", actor="ops")
    await live.applied()
    assert (await app.sign_in()).response_code == "08"
    assert live.refusal() == f"CheckDevice: device {SERIAL} is lost in the asset list"


@SQLITE_ONLY
async def test_feed_rows_from_other_writers_require_sign_in_and_set_pending(live: Live) -> None:
    app = await live.ready()
    live.store.notify_host("require_sign_in", tid=TID)
    await live.applied()
    outcome = await app.sale(CARD, 100, PIN)
    assert outcome.response_code == "77"
    assert [f.operation for f in outcome.follow_ups] == ["sign_in"] and outcome.follow_ups[0].ok
    live.store.notify_host("pending", tid=TID, value="1")
    await live.applied()
    assert [f.operation for f in (await app.echo()).follow_ups] == ["param_download"]


@SQLITE_ONLY
async def test_status_upload_reports_the_app_version(live: Live) -> None:
    app = await live.ready()
    app.state.app_version = "010500"
    assert (await app.upload_status()).ok
    assert live.store.get_terminal(TID).app_version == "010500"
    shown = live.admin("terminal", "show", TID)
    assert (shown["app_version"], shown["status"]) == ("010500", "active")


LISTENING = re.compile(rb"listening on ([0-9.]+):(\d+)")


async def test_changes_reach_a_host_in_another_process(home: Path, tmp_path: Path) -> None:
    """`posdoctor serve` as its own process; the CLI here disables and enables the terminal:
    the served answers follow within the feed's poll interval (0.5 s)."""
    def admin_here(*args: str) -> None:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, result.output

    admin_here("merchant", "add", MID, "--name", "跨进程商户")
    admin_here("terminal", "add", TID, "--mid", MID, "--serial", SERIAL, "--model", MODEL,
               "--tk-out", str(tmp_path / "tk.hex"))
    env = {**os.environ, "POSDOCTOR_HOME": str(home), "COLUMNS": "200"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "posdoctor.cli.main", "serve", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 30)  # type: ignore[union-attr]
        host, port = LISTENING.search(line).groups()  # type: ignore[union-attr]
        files = TerminalFiles(home)
        state = new_state(TID, SERIAL, mid=MID, model=MODEL)
        state.comm.host, state.comm.port = host.decode(), int(port)
        app = PaymentApp(state, Device(SERIAL, MODEL, device_key=files.device_key(TID)), link=TcpLink())
        app.inject_transport_key(bytes.fromhex((tmp_path / "tk.hex").read_text().strip()))
        assert all(o.ok for o in await app.initialise())
        app.state.comm.receive_timeout_s = 3.0
        assert (await app.sign_in()).ok

        async def answers_until(code: str) -> float:
            started = time.monotonic()
            while time.monotonic() - started < 5:
                if (await app.echo()).response_code == code:
                    return time.monotonic() - started
                await asyncio.sleep(0.05)
            raise AssertionError(f"no {code} within 5 s")

        admin_here("terminal", "disable", TID, "--reason", "lost device")
        assert await answers_until("97") < 1.5
        admin_here("terminal", "enable", TID)
        assert await answers_until("00") < 1.5
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
