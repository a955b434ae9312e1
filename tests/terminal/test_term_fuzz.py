"""Whatever a host sends back, the terminal answers with a typed outcome, never a crash."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from termhost import MAK, PAN, PIN, answer, mac_body, make_app

from posdoctor.iso8583.codec import decode_message
from posdoctor.iso8583.errors import EncodeError
from posdoctor.iso8583.framing import PREFIX_LEN, Frame, Header, encode_frame
from posdoctor.terminal import Card
from posdoctor.terminal.link import FrameTruncated
from posdoctor.terminal.messages import MESSAGES

KNOWN_ZH = {m.zh for m in MESSAGES.values()}
TPDU = bytes.fromhex("6000000003")


class MemoryConnection:
    """Hands the terminal one canned answer (whatever bytes the test chose)."""

    def __init__(self, link: MemoryLink) -> None:
        self.link = link

    async def send_frame(self, frame: bytes) -> None:
        self.link.sent.append(decode_message(frame[PREFIX_LEN + 11:]))

    async def receive_frame(self, max_frame: int, timeout: float) -> bytes:
        reply = self.link.reply(self.link.sent[-1])
        length = int.from_bytes(reply[:2], "big") if len(reply) >= 2 else -1
        if length != len(reply) - 2 or not 0 < length <= max_frame:
            raise FrameTruncated(max(length, 0), len(reply))
        return reply[2:]

    async def close(self) -> None:
        return None


class MemoryLink:
    def __init__(self, reply) -> None:  # type: ignore[no-untyped-def]
        self.reply = reply
        self.sent: list[dict[str, str]] = []

    async def connect(self, host: str, port: int) -> MemoryConnection:
        return MemoryConnection(self)


def run_sale(reply) -> object:  # type: ignore[no-untyped-def]
    app = make_app(9)
    app.link = MemoryLink(reply)
    outcome = asyncio.run(app.sale(Card(PAN), 100, PIN))
    return app, outcome


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=80))
def test_random_frames_give_typed_failures(payload: bytes) -> None:
    framed = len(payload).to_bytes(2, "big") + payload
    app, outcome = run_sale(lambda request: framed)
    assert not outcome.ok
    assert outcome.message_zh in KNOWN_ZH
    assert app.state.pending_reversal is not None  # the sale went out: it must be undone
    assert app.state.pending_reversal.reason == "06"


FIELD_VALUES = st.dictionaries(
    st.sampled_from(["3", "4", "11", "37", "38", "39", "41", "42", "54", "60", "62"]),
    st.text(alphabet="0123456789ABZ ", min_size=0, max_size=14), max_size=5)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FIELD_VALUES, st.sampled_from(["0", "1", "3", "9"]))
def test_mangled_answers_never_crash(changes: dict[str, str], processing: str) -> None:
    def reply(request: dict[str, str]) -> bytes:
        msg = {**answer(request), **changes}
        try:
            body = mac_body(msg, MAK)
        except EncodeError:  # a mutation the codec cannot encode: send garbage instead
            body = b"\x02\x10garbage"
        return encode_frame(Frame(TPDU, Header(processing=processing), body))

    app, outcome = run_sale(reply)
    assert outcome.message_zh in KNOWN_ZH or outcome.code.startswith("host.rc.")
    if not changes:
        assert outcome.ok
    if outcome.ok:
        assert len(app.state.txn_log) == 1 and app.state.pending_reversal is None
    elif outcome.response_code not in (None, "00"):
        assert app.state.pending_reversal is None
