"""The device model: self-check, faults and what they stop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from termhost import PAN, PIN, Reply, ScriptedHost, Script, answer, make_app

from posdoctor.terminal import Card, Device, HardwareFault, Peripheral

Start = Callable[[Script], Awaitable[ScriptedHost]]


def test_healthy_device_passes_self_check() -> None:
    app = make_app(9)
    outcome = app.self_check()
    assert outcome.ok and outcome.code == "device.self_check_ok"
    assert outcome.events[-1].detail["results"] == {p.value: "ok" for p in Peripheral}
    assert app.state.events[-1] == outcome.events[-1]


@pytest.mark.parametrize(
    ("peripheral", "fault", "zh"),
    [
        (Peripheral.PRINTER, "paper_out", "打印机故障或缺纸"),
        (Peripheral.CARD_READER, "no_response", "读卡失败,请检查读卡器"),
        (Peripheral.KEYPAD, "stuck_key", "键盘故障"),
        (Peripheral.STORAGE, "write_error", "存储器故障"),
        (Peripheral.POWER, "brownout", "电源异常"),
    ],
)
def test_faulty_peripheral_fails_self_check(peripheral: Peripheral, fault: str, zh: str) -> None:
    app = make_app(9)
    app.device.set_fault(peripheral, fault)
    outcome = app.self_check()
    assert not outcome.ok and outcome.detail["failed"] == [peripheral.value]
    finding = outcome.events[0]
    assert (finding.kind, finding.message_zh, finding.detail) == (
        "self_check", zh, {"peripheral": peripheral.value, "fault": fault})
    assert outcome.events[-1].code == "device.self_check_failed"


def test_low_battery_is_reported_but_not_blocking() -> None:
    app = make_app(9)
    app.device.set_fault(Peripheral.POWER, "low_battery")
    outcome = app.self_check()
    assert outcome.ok and outcome.events[0].message_zh == "电源异常"
    app.device.read_card(Card(PAN))


def test_require_raises_typed_fault() -> None:
    device = Device("S1")
    device.set_fault("keypad")
    with pytest.raises(HardwareFault) as caught:
        device.enter_pin(PIN)
    assert caught.value.peripheral is Peripheral.KEYPAD and caught.value.message.zh == "键盘故障"
    device.clear_all_faults()
    assert device.enter_pin(PIN) == PIN


async def test_card_reader_fault_stops_before_any_message(scripted: Start) -> None:
    host = await scripted(lambda request: Reply(answer(request)))
    app = make_app(host.port)
    app.device.set_fault(Peripheral.CARD_READER)
    outcome = await app.sale(Card(PAN), 100, PIN)
    assert (outcome.ok, outcome.code) == (False, "device.card_reader") and host.connections == 0


async def test_printer_fault_after_approval_keeps_the_sale(scripted: Start) -> None:
    host = await scripted(lambda request: Reply(answer(request)))
    app = make_app(host.port)
    app.device.set_fault(Peripheral.PRINTER, "paper_out")
    outcome = await app.sale(Card(PAN), 100, PIN)
    assert outcome.ok and len(app.state.txn_log) == 1
    assert [e.code for e in outcome.events] == ["device.printer", "ok.approved"]
    assert app.device.receipts_printed == 0


def test_storage_fault_is_an_event_when_saving_at_the_end() -> None:
    app = make_app(9)
    app.device.set_fault(Peripheral.STORAGE)
    outcome = app.login("01", "0000")
    assert outcome.ok
    assert [e.code for e in app.state.events[-2:]] == ["ok.operator_login", "device.storage"]


def test_card_repr_never_shows_the_pan() -> None:
    assert PAN not in repr(Card(PAN)) and "622202" in repr(Card(PAN))


async def test_tamper_wipes_keys_and_locks(scripted: Start) -> None:
    host = await scripted(lambda request: Reply(answer(request)))
    app = make_app(host.port)
    app.device.trigger_tamper()
    outcome = await app.sale(Card(PAN), 100, PIN)
    assert (outcome.ok, outcome.message_zh) == (False, "安全模块触发,终端已锁定")
    assert app.state.keys == {} and not app.state.signed_in and host.connections == 0
    check = app.self_check()
    assert not check.ok and "tamper" in check.detail["failed"]
