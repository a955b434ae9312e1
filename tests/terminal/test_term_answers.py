"""Answers that do not belong to the request, over loopback: the merchant text, the event,
and the reversal they leave behind."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from termhost import PAN, PIN, Reply, ScriptedHost, Script, answer, make_app

from posdoctor.terminal import Card

Start = Callable[[Script], Awaitable[ScriptedHost]]


@pytest.mark.parametrize(
    ("change", "zh", "en"),
    [
        ({"t": "0230"}, "解包消息码不符", "Answer message type does not match the request"),
        ({"3": "200000"}, "处理码不符", "Answer processing code does not match the request"),
        ({"11": "000999"}, "流水号不符", "Answer trace number (STAN) does not match the request"),
        ({"41": "29999999"}, "终端号不符", "Answer terminal ID does not match this terminal"),
        ({"42": "898100000000999"}, "商户号不符", "Answer merchant ID does not match this terminal"),
        ({"4": "000000000099"}, "金额不符", "Answer amount does not match the request"),
    ],
)
async def test_mismatched_answer_to_a_sale(scripted: Start, change: dict[str, str], zh: str, en: str) -> None:
    host = await scripted(lambda request: Reply({**answer(request), **change}))
    app = make_app(host.port)
    outcome = await app.sale(Card(PAN), 100, PIN)
    assert (outcome.ok, outcome.message_zh, outcome.message_en) == (False, zh, en)
    event = outcome.events[-1]
    assert (event.kind, event.message_zh) == ("sale", zh)
    assert event.detail["field"] == next(iter(change))
    assert app.state.txn_log == []
    assert app.state.pending_reversal is not None and app.state.pending_reversal.reason == "06"


async def test_mismatched_answer_to_a_management_message_leaves_no_reversal(scripted: Start) -> None:
    host = await scripted(lambda request: Reply({**answer(request), "11": "000999"}))
    app = make_app(host.port)
    outcome = await app.echo()
    assert outcome.message_zh == "流水号不符" and app.state.pending_reversal is None


async def test_answer_without_mac_to_a_maced_sale(scripted: Start) -> None:
    host = await scripted(lambda request: Reply({k: v for k, v in answer(request).items() if k != "64"}))
    app = make_app(host.port)
    outcome = await app.sale(Card(PAN), 100, PIN)
    assert outcome.message_zh == "MAC校验失败" and app.state.pending_reversal.reason == "A0"  # type: ignore[union-attr]
    app.state.pending_reversal = None
    app.state.settings.require_response_mac = False  # a host that never MACs its answers
    assert (await app.sale(Card(PAN), 100, PIN)).ok
