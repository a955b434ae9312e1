"""Heartbeat, self-check and log payloads (evidence contract) and their sending."""

from __future__ import annotations

from pathlib import Path

from termhost import CLOSE, PAN, PIN
from upgradekit import ShelfTms, make_terminal, package

from posdoctor.terminal import Card, Peripheral
from posdoctor.terminal.telemetry import Telemetry, heartbeat_payload, self_check_payload
from posdoctor.terminal.upgrade import UpgradeAgent

HEARTBEAT_KEYS = {"tid", "app_version", "firmware_version", "model", "serial", "peripherals", "battery_pct",
                  "power_source", "voltage", "signal_dbm", "network", "error_counters", "last_errors", "comm",
                  "params_version", "installed_apps", "uptime_s", "bt_paired"}
SECRET_WORDS = ("blob", "pan_sealed", "6222021234567890123", "123456")


async def test_heartbeat_has_the_contract_fields_and_no_secrets(scripted, tmp_path: Path) -> None:
    host = await scripted()
    app = make_terminal(tmp_path, host.port)
    assert (await app.sale(Card(PAN, "3012"), 100, pin=PIN)).ok
    app.device.set_fault(Peripheral.PRINTER, "paper_out")
    app.device.set_fault(Peripheral.CARD_READER, "dirty_head")
    app.device.battery_pct, app.device.power_source, app.device.signal_dbm = 12, "battery", -101
    body = heartbeat_payload(app.state, app.device)
    assert set(body) == HEARTBEAT_KEYS
    assert "at" in await_heartbeat_keys(app)
    assert body["peripherals"] == {"printer": "paper_out", "card_reader": "fault", "keypad": "ok", "storage": "ok",
                                   "power": "ok"}
    assert (body["battery_pct"], body["power_source"], body["signal_dbm"]) == (12, "battery", -101)
    assert body["comm"] == {"host": "127.0.0.1", "port": host.port, "tpdu": "6000030000"}
    assert body["installed_apps"] == ["cup_payment"] and body["app_version"] == "010000"
    assert {"connect_timeout", "connect_refused", "card_read", "reboot", "crash", "watchdog",
            "mac_fail"} <= set(body["error_counters"])
    text = repr(body)
    assert not any(word in text for word in SECRET_WORDS)


def await_heartbeat_keys(app) -> set[str]:
    from datetime import datetime, timezone
    return set(heartbeat_payload(app.state, app.device, datetime(2026, 1, 1, tzinfo=timezone.utc)))


async def test_error_events_count_into_persistent_counters(scripted, tmp_path: Path) -> None:
    host = await scripted(lambda request: CLOSE)
    app = make_terminal(tmp_path, host.port)
    tms = ShelfTms(package())
    telemetry = Telemetry(app.state, app.device, app.events, app.persist)
    app.device.set_fault(Peripheral.CARD_READER, "failed")
    await app.sale(Card(PAN, "3012"), 100, pin=PIN)
    app.device.clear_all_faults()
    await app.echo()  # the host closes: receive failed
    assert await telemetry.send_heartbeat(tms) == {"upgrade": False}
    sent = tms.heartbeats[-1]
    assert sent["error_counters"]["card_read"] == 1 and sent["error_counters"]["receive_timeout"] == 1
    assert sent["last_errors"][-2:] == ["device.card_reader", "comm.receive_failed"]
    assert "slots" not in sent


async def test_heartbeat_carries_the_slots_when_asked(scripted, tmp_path: Path) -> None:
    host = await scripted()
    app = make_terminal(tmp_path, host.port)
    tms = ShelfTms(package())
    agent = UpgradeAgent(app, app.device, tms, home=tmp_path)
    assert (await agent.poll()).status == "upgraded"
    telemetry = Telemetry(app.state, app.device, app.events, slots=agent.slots)
    await telemetry.send_heartbeat(tms)
    beat = tms.heartbeats[-1]
    assert beat["slots"] == {"active": "B", "trial": False, "versions": {"A": "010000", "B": "010100"}}
    assert beat["app_version"] == "010100" and beat["installed_apps"] == ["cup_payment:010100"]
    assert beat["error_counters"]["reboot"] == 1


async def test_self_check_payload_reports_keys_and_params(scripted, tmp_path: Path) -> None:
    host = await scripted()
    app = make_terminal(tmp_path, host.port)
    body = self_check_payload(app.state, app.device)
    assert (body["keys"], body["params"], body["ok"]) == ("ok", "inconsistent", False)
    app.state.params, app.state.params_complete = {"14": "60"}, True
    assert self_check_payload(app.state, app.device)["ok"] is True
    app.state.params_complete = False
    assert self_check_payload(app.state, app.device)["params"] == "inconsistent"
    app.state.keys["MAK"] = app.state.keys["MAK"].model_copy(update={"blob": "00" * 40})
    assert self_check_payload(app.state, app.device)["keys"] == "unreadable"
    app.state.keys.clear()
    assert self_check_payload(app.state, app.device)["keys"] == "missing"
    tms = ShelfTms(package())
    assert await Telemetry(app.state, app.device).upload_self_check(tms) == {"accepted": 1}
    assert tms.statuses[0]["keys"] == "missing"


async def test_logs_upload_sends_each_event_once(scripted, tmp_path: Path) -> None:
    host = await scripted()
    app = make_terminal(tmp_path, host.port)
    tms = ShelfTms(package())
    telemetry = Telemetry(app.state, app.device, app.events, app.persist)
    await app.echo()
    first = await telemetry.upload_logs(tms)
    assert first == len(app.state.events) and first >= 1
    assert await telemetry.upload_logs(tms) == 0
    await app.echo()
    assert await telemetry.upload_logs(tms) == 1
    assert [e["code"] for e in tms.logs][-1] == "ok.echo"
    assert all(set(e) == {"at", "tid", "kind", "code", "message_zh", "message_en", "detail"} for e in tms.logs)
    tms.down = True
    await app.echo()
    assert await telemetry.upload_logs(tms) is None
    assert app.state.counters["tms_unreachable"] == 1
    tms.down = False
    assert await telemetry.upload_logs(tms) == 2  # the echo and the failure event
