"""Reversal: saved right after sending, reason by failure, delivered first, retried, given up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from termhost import CLOSE, PAN, PIN, SILENT, Raw, Reply, ScriptedHost, Script, answer, make_app

from posdoctor.terminal import Card, TerminalState

Start = Callable[[Script], Awaitable[ScriptedHost]]
CARD = Card(PAN)


def sequence(*replies: Any) -> Script:
    """Answer the n-th request with replies[n] (a callable or a fixed reply)."""
    queue = list(replies)

    def script(request: dict[str, str]) -> Any:
        reply = queue.pop(0) if queue else Reply(answer(request))
        return reply(request) if callable(reply) else reply

    return script


def ok(request: dict[str, str]) -> Reply:
    return Reply(answer(request))


def wrong_stan(request: dict[str, str]) -> Reply:
    return Reply(answer(request, **{"11": "999999"}))


def bad_mac(request: dict[str, str]) -> Reply:
    return Reply(answer(request), mac_key=bytes(16))


def declined(code: str) -> Callable[[dict[str, str]], Reply]:
    return lambda request: Reply(answer(request, code))


class RecordingLink:
    """Wraps a link and notes sends and receives in a shared timeline."""

    def __init__(self, inner: Any, timeline: list[str]) -> None:
        self.inner, self.timeline = inner, timeline

    async def connect(self, host: str, port: int) -> Any:
        conn = await self.inner.connect(host, port)
        timeline = self.timeline

        class Recording:
            async def send_frame(self, frame: bytes) -> None:
                await conn.send_frame(frame)
                timeline.append("sent")

            async def receive_frame(self, max_frame: int, timeout: float) -> bytes:
                payload = await conn.receive_frame(max_frame, timeout)
                timeline.append("received")
                return payload

            async def close(self) -> None:
                await conn.close()

        return Recording()


async def test_reversal_is_saved_after_sending_and_before_the_answer(scripted: Start) -> None:
    timeline: list[str] = []

    def persist(state: TerminalState) -> None:
        pending = state.pending_reversal
        timeline.append(f"saved reversal {pending.reason}" if pending else f"saved log {len(state.txn_log)}")

    host = await scripted(sequence(ok))
    app = make_app(host.port, persist=persist)
    app.link = RecordingLink(app.link, timeline)
    outcome = await app.sale(CARD, 1000, PIN)
    assert outcome.ok
    assert timeline[:4] == ["sent", "saved reversal 98", "received", "saved log 1"]


async def test_unanswered_sale_leaves_a_saved_reversal(scripted: Start) -> None:
    host = await scripted(sequence(SILENT))
    app = make_app(host.port)
    outcome = await app.sale(CARD, 1000, PIN)
    assert (outcome.ok, outcome.message_zh, outcome.response_code) == (False, "接收数据失败", None)
    pending = app.state.pending_reversal
    assert pending is not None and pending.stan == host.requests[0]["11"] and pending.amount == 1000
    assert pending.reason == "98" and pending.attempts == 0
    assert PAN not in pending.model_dump_json()


async def test_reasons_follow_the_failure(scripted: Start) -> None:
    for reply, reason in ((SILENT, "98"), (CLOSE, "98"), (wrong_stan, "06"), (bad_mac, "A0"),
                          (Raw(b"\x00\x0b" + b"\x60" * 11), "06")):
        host = await scripted(sequence(reply))
        app = make_app(host.port)
        outcome = await app.sale(CARD, 1000, PIN)
        assert not outcome.ok
        assert app.state.pending_reversal is not None, reply
        assert app.state.pending_reversal.reason == reason, reply


async def test_mac_failure_event_and_text(scripted: Start) -> None:
    host = await scripted(sequence(bad_mac))
    outcome = await make_app(host.port).sale(CARD, 1000, PIN)
    assert (outcome.code, outcome.message_zh) == ("check.mac", "MAC校验失败")


async def test_decline_needs_no_reversal(scripted: Start) -> None:
    host = await scripted(sequence(declined("51")))
    app = make_app(host.port)
    outcome = await app.sale(CARD, 1000, PIN)
    assert (outcome.ok, outcome.response_code, outcome.message_zh) == (False, "51", "余额不足")
    assert app.state.pending_reversal is None and app.state.txn_log == []


async def test_reversal_goes_first_and_then_the_sale(scripted: Start) -> None:
    host = await scripted(sequence(SILENT, ok, ok))
    app = make_app(host.port)
    await app.sale(CARD, 1000, PIN)
    outcome = await app.sale(CARD, 2000, PIN)
    assert outcome.ok
    assert host.mtis() == ["0200", "0400", "0200"]
    original, reversal, second = host.requests
    assert reversal["11"] == original["11"] and reversal["4"] == original["4"] and reversal["39"] == "98"
    assert reversal["2"] == PAN and reversal["60"] == original["60"]
    for gone in ("35", "52", "53", "26"):
        assert gone not in reversal
    assert second["11"] != original["11"]
    assert app.state.pending_reversal is None
    codes = [e.code for e in outcome.events]
    assert codes.index("reversal.in_progress") < codes.index("reversal.done") < codes.index("ok.approved")


async def test_reversal_request_is_maced_with_the_mak(scripted: Start) -> None:
    host = await scripted(sequence(SILENT, ok))
    app = make_app(host.port)
    await app.sale(CARD, 1000, PIN)
    await app.echo()  # not an online transaction: no reversal
    assert host.mtis() == ["0200", "0820"]
    await app.balance(CARD, PIN)
    assert host.mtis()[2] == "0400"
    assert "64" in host.requests[2]


async def test_reversal_with_bad_answer_mac_stays_pending(scripted: Start) -> None:
    host = await scripted(sequence(SILENT, bad_mac, ok, ok))
    app = make_app(host.port)
    await app.sale(CARD, 1000, PIN)
    outcome = await app.sale(CARD, 2000, PIN)
    assert outcome.ok
    assert host.mtis() == ["0200", "0400", "0400", "0200"]
    assert [e.code for e in outcome.events][:4] == ["reversal.in_progress", "check.mac", "reversal.in_progress",
                                                     "reversal.done"]


async def test_retries_exhausted_gives_up_and_drops_the_sale(scripted: Start) -> None:
    host = await scripted(sequence(SILENT, declined("96"), CLOSE, declined("96")))
    app = make_app(host.port)
    await app.sale(CARD, 1000, PIN)
    outcome = await app.sale(CARD, 2000, PIN)
    assert (outcome.ok, outcome.message_zh) == (False, "冲正不成功,请与客服联系")
    assert host.mtis() == ["0200", "0400", "0400", "0400"]  # 3 attempts, and no second sale
    assert outcome.detail["attempts"] == 3
    assert app.state.pending_reversal is None
    assert (await app.sale(CARD, 3000, PIN)).ok
    assert host.mtis()[-1] == "0200"


async def test_retries_count_is_configurable(scripted: Start) -> None:
    host = await scripted(sequence(SILENT, CLOSE))
    app = make_app(host.port)
    app.state.settings.reversal_retries = 1
    await app.sale(CARD, 1000, PIN)
    outcome = await app.sale(CARD, 2000, PIN)
    assert outcome.message_zh == "冲正不成功,请与客服联系" and host.mtis() == ["0200", "0400"]


async def test_void_is_reversible_and_refund_is_not(scripted: Start) -> None:
    host = await scripted(sequence(ok, SILENT, SILENT))
    app = make_app(host.port)
    sale = await app.sale(CARD, 1000, PIN)
    assert sale.ok and sale.txn is not None
    await app.void(sale.txn.stan)
    assert app.state.pending_reversal is not None and app.state.pending_reversal.kind == "void"
    assert app.state.txn_log[0].status == "approved"  # the void never completed
    app.state.pending_reversal = None
    await app.refund(CARD, 500, "000000000001", PIN)
    assert app.state.pending_reversal is None


async def test_storage_fault_after_approval_reverses_with_96(scripted: Start) -> None:
    host = await scripted(sequence(ok, ok, ok))
    app = make_app(host.port)
    original_exchange = app.exchange

    async def exchange(*args: Any, **kw: Any) -> Any:  # storage breaks while the answer travels
        result = await original_exchange(*args, **kw)
        if kw.get("kind") == "sale":
            app.device.set_fault("storage")
        return result

    app.exchange = exchange  # type: ignore[method-assign]
    outcome = await app.sale(CARD, 1000, PIN)
    assert (outcome.ok, outcome.message_zh) == (False, "存储器故障")
    assert app.state.txn_log == []
    assert app.state.pending_reversal is not None and app.state.pending_reversal.reason == "96"
    app.device.clear_fault("storage")
    app.exchange = original_exchange  # type: ignore[method-assign]
    assert (await app.sale(CARD, 500, PIN)).ok
    assert host.mtis() == ["0200", "0400", "0200"] and host.requests[1]["39"] == "96"
