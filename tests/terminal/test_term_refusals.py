"""Local refusals: nothing goes on the wire, the merchant sees the CUP text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from termhost import PAN, PIN, Reply, ScriptedHost, Script, answer, make_app

from posdoctor.terminal import Card
from posdoctor.terminal.state import TxnRecord

Start = Callable[[Script], Awaitable[ScriptedHost]]
CARD = Card(PAN)
CHIP = Card(PAN, chip=True)


async def test_not_signed_in(scripted: Start) -> None:
    host = await scripted()
    app = make_app(host.port, signed_in=False)
    for outcome in (await app.sale(CARD, 100, PIN), await app.balance(CARD, PIN), await app.settle(),
                    await app.refund(CARD, 100, "000000000001", PIN), await app.void("000001")):
        assert (outcome.ok, outcome.code, outcome.message_zh) == (False, "local.not_signed_in", "请签到后再做交易")
    assert host.connections == 0


async def test_no_tmk(scripted: Start) -> None:
    host = await scripted()
    app = make_app(host.port, signed_in=False)
    del app.state.keys["TMK"]
    assert (await app.sign_in()).message_zh == "请下载主密钥"
    assert (await app.sale(CARD, 100, PIN)).message_zh == "请下载主密钥"
    assert host.connections == 0


async def test_no_transport_key_for_tmk_download(scripted: Start) -> None:
    host = await scripted()
    outcome = await make_app(host.port).download_tmk()
    assert outcome.code == "keys.no_transport_key" and host.connections == 0


async def test_batch_full(scripted: Start) -> None:
    host = await scripted(lambda request: Reply(answer(request)))
    app = make_app(host.port)
    app.state.settings.batch_capacity = 2
    assert (await app.sale(CARD, 100, PIN)).ok
    assert (await app.sale(CARD, 100, PIN)).ok
    outcome = await app.sale(CARD, 100, PIN)
    assert (outcome.message_zh, outcome.message_en) == ("交易已满,请结算", "Transaction log is full, please settle")
    assert len(host.requests) == 2


async def test_chip_card_needs_emv_parameters(scripted: Start) -> None:
    host = await scripted(lambda request: Reply(answer(request)))
    app = make_app(host.port)
    assert (await app.sale(CHIP, 100, PIN)).message_zh == "请先下载EMV参数"
    app.state.emv.aid_complete = True
    assert (await app.sale(CHIP, 100, PIN)).message_zh == "请先下载CAPK参数"
    app.state.emv.capk_complete = True
    outcome = await app.sale(CHIP, 100, PIN)
    assert outcome.ok and host.requests[0]["22"] == "051" and "55" in host.requests[0]
    assert (await app.sale(CARD, 100, PIN)).ok  # a magnetic stripe never needed them


async def test_sign_off_refused_while_unsettled(scripted: Start) -> None:
    host = await scripted(lambda request: Reply(answer(request)))
    app = make_app(host.port)
    assert (await app.sale(CARD, 100, PIN)).ok
    outcome = await app.sign_off()
    assert (outcome.ok, outcome.message_zh) == (False, "有未结算交易,请先结算")
    assert outcome.detail == {"unsettled": 1, "cause_hint": "op.settle_required"}
    assert host.mtis() == ["0200"]


async def test_void_of_unknown_or_voided_sale(scripted: Start) -> None:
    host = await scripted(lambda request: Reply(answer(request)))
    app = make_app(host.port)
    assert (await app.void("000123")).message_zh == "原交易不存在"
    sale = await app.sale(CARD, 100, PIN)
    assert sale.txn is not None
    assert (await app.void(sale.txn.stan)).ok
    assert (await app.void(sale.txn.stan)).message_zh == "原交易不能撤销"
    assert app.state.txn_log[0].status == "voided"


@pytest.mark.parametrize("amount", [0, -1, 10**12])
async def test_invalid_amount(scripted: Start, amount: int) -> None:
    host = await scripted()
    outcome = await make_app(host.port).sale(CARD, amount, PIN)
    assert outcome.message_zh == "金额无效" and host.connections == 0


async def test_bad_pin_length(scripted: Start) -> None:
    host = await scripted()
    outcome = await make_app(host.port).sale(CARD, 100, "12")
    assert outcome.code == "local.invalid_pin" and host.connections == 0


def test_default_operators_and_lock_after_wrong_passwords() -> None:
    app = make_app(9)
    assert app.login("01", "0000").ok and app.state.operator == "01"
    wrong = [app.login("01", "9999") for _ in range(3)]
    assert [o.code for o in wrong] == ["local.wrong_password", "local.wrong_password", "local.operator_locked"]
    assert wrong[0].detail["remaining"] == 2
    locked = app.login("01", "0000")
    assert (locked.ok, locked.message_zh) == (False, "操作员已被锁定,请联系主管")
    assert app.login("77", "0000").code == "local.unknown_operator"
    assert app.login("00", "123456").ok


def test_successful_login_resets_failures() -> None:
    app = make_app(9)
    app.login("01", "1111")
    app.login("01", "0000")
    assert app.state.operators["01"].failures == 0


async def test_operator_number_goes_into_sign_in(scripted: Start) -> None:
    host = await scripted()
    app = make_app(host.port, signed_in=False)
    app.login("00", "123456")
    assert (await app.sign_in()).ok
    assert host.requests[0]["63"] == "000"


def test_txn_log_does_not_keep_clear_pan() -> None:
    app = make_app(9)
    record = TxnRecord(kind="sale", stan="000001", batch=1, amount=1, pan_masked="x", pan_sealed=app.seal_pan(PAN),
                       at=app.clock())
    assert PAN not in record.model_dump_json()


def test_default_operators_are_independent_per_terminal() -> None:
    first, second = make_app(9), make_app(9)
    for _ in range(3):
        first.login("01", "9999")
    assert first.state.operators["01"].locked and not second.state.operators["01"].locked
    assert second.login("01", "0000").ok
