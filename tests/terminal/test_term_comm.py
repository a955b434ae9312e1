"""Network and framing failures map to the section 8 strings (and reversal reasons)."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

import pytest
from termhost import CLOSE, PAN, PIN, SILENT, Raw, Reply, ScriptedHost, Script, answer, make_app

from posdoctor.iso8583.codec import encode_message
from posdoctor.iso8583.framing import Frame, encode_frame
from posdoctor.terminal import Card
from posdoctor.terminal.link import Connection, LinkConditions

Start = Callable[[Script], Awaitable[ScriptedHost]]
CARD = Card(PAN)


class FailingLink:
    """A link whose connect raises what the OS would raise."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def connect(self, host: str, port: int) -> Connection:
        raise self.error


@pytest.mark.parametrize(
    ("error", "zh", "code"),
    [
        (socket.gaierror(-2, "Name or service not known"), "未知主机异常", "comm.unknown_host"),
        (ConnectionRefusedError(111, "refused"), "连接主机异常", "comm.connect_failed"),
        (OSError(113, "No route to host"), "连接主机异常", "comm.connect_failed"),
    ],
)
async def test_connect_errors(error: BaseException, zh: str, code: str) -> None:
    app = make_app(9)
    app.link = FailingLink(error)
    outcome = await app.echo()
    assert (outcome.ok, outcome.message_zh, outcome.code) == (False, zh, code)
    assert outcome.events[-1].message_zh == zh and outcome.events[-1].detail["stage"] == "connect"


async def test_refused_port_on_loopback() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = await make_app(port).echo()
    assert outcome.message_zh == "连接主机异常"


async def test_unresolvable_name() -> None:
    app = make_app(5800)
    app.state.comm.host = "no-such-host.invalid"
    outcome = await app.echo()
    assert outcome.message_zh == "未知主机异常"


async def test_connect_timeout_when_packets_are_dropped() -> None:
    app = make_app(9, conditions=LinkConditions(blackhole=True))
    app.state.comm.connect_timeout_s = 0.05
    outcome = await app.echo()
    assert (outcome.message_zh, outcome.message_en) == ("连接超时", "Connection to the host timed out")


async def test_link_down() -> None:
    outcome = await make_app(9, conditions=LinkConditions(down=True)).echo()
    assert (outcome.code, outcome.message_zh) == ("comm.link_down", "网络未连接")


@pytest.mark.parametrize(
    ("reply", "zh"),
    [
        (SILENT, "接收数据失败"),
        (CLOSE, "接收数据失败"),
        (Raw(b"\x00\x40" + b"\x60" * 10), "接收数据错误"),
        (Raw(b"\x00"), "接收数据错误"),
        (Raw(b"\x00\x00"), "接收数据错误"),
        (Raw(b"\x00\x0c" + bytes.fromhex("6000000003") + b"\x60\x31\x00\x00\x00\x00" + b"\x99"), "解包异常"),
        (Raw(b"\x00\x0b" + bytes.fromhex("7000000003") + b"\x60\x31\x00\x00\x00\x00"), "解包异常"),
    ],
)
async def test_answer_failures(scripted: Start, reply: object, zh: str) -> None:
    host = await scripted(lambda request: reply)
    outcome = await make_app(host.port).echo()
    assert (outcome.ok, outcome.message_zh) == (False, zh)


async def test_answer_without_header_when_header_expected(scripted: Start) -> None:
    def headerless(request: dict[str, str]) -> Raw:
        body = encode_message(answer(request))
        return Raw(encode_frame(Frame(bytes.fromhex("6000000003"), None, body)))

    host = await scripted(headerless)
    outcome = await make_app(host.port).echo()
    assert outcome.message_zh == "解包异常"


async def test_headerless_terminal_talks_to_headerless_host(scripted: Start) -> None:
    host = await scripted(lambda request: Reply(answer(request)), header=False)
    app = make_app(host.port)
    app.state.comm.header = False
    assert (await app.echo()).ok
    assert host.requests[0]["60"][8:] == "301"


async def test_tpdu_is_sent_as_configured(scripted: Start) -> None:
    host = await scripted(lambda request: Reply(answer(request)))
    app = make_app(host.port)
    app.state.comm.tpdu = "6000050000"
    assert (await app.echo()).ok
    assert host.tpdus == [bytes.fromhex("6000050000")]


async def test_answers_lost_on_the_way_back_look_like_silence(scripted: Start) -> None:
    host = await scripted(lambda request: Reply(answer(request)))
    conditions = LinkConditions(drop_answers=1)
    app = make_app(host.port, conditions=conditions)
    first = await app.echo()
    assert first.message_zh == "接收数据失败" and host.requests  # the host did answer
    assert (await app.echo()).ok


async def test_balance_over_a_good_link(scripted: Start) -> None:
    host = await scripted(lambda request: Reply(answer(request, **{"54": "1002156C000000012345"})))
    outcome = await make_app(host.port).balance(CARD, PIN)
    assert outcome.ok and outcome.balance == 12345
    request = host.requests[0]
    assert request["t"] == "0200" and request["3"] == "310000" and len(request["52"]) == 16


LONG_S = 60.0  # a timer these tests would notice sitting out (the test run would stall)


@pytest.mark.parametrize("at_once", [True, False])
async def test_certain_timeouts_can_end_at_once(scripted: Start, at_once: bool) -> None:
    """The simulator's links end a wait that can only time out at once; the terminal
    reports exactly what it reports after sitting out the timer."""
    import asyncio

    host = await scripted(lambda request: Reply(answer(request)))
    outcomes = []
    for conditions in (LinkConditions(loss=1.0), LinkConditions(drop_answers=1), LinkConditions(blackhole=True)):
        conditions.certain_timeouts_at_once = at_once
        app = make_app(host.port, conditions=conditions)
        app.state.comm.receive_timeout_s = app.state.comm.connect_timeout_s = LONG_S if at_once else 0.05
        async with asyncio.timeout(LONG_S / 2):
            outcome = await app.echo()
        outcomes.append((outcome.code, outcome.events[-1].detail.get("timeout_s") == (LONG_S if at_once else 0.05)))
    assert outcomes == [("comm.receive_failed", True), ("comm.receive_failed", True), ("comm.connect_timeout", True)]
    assert len(host.requests) == 1  # the lost request never arrived; the dropped answer's request did
