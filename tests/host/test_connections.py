"""Connections: persistent and short, idle timeout, oversize and garbage frames."""

import asyncio

from hostclient import Connection
from hostsite import HOST_CONFIG, PAN, PIN
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posdoctor.iso8583.codec import decode_message, encode_message
from posdoctor.iso8583.framing import DEFAULT_TPDU, Frame, FrameConfig, Header, decode_frame, encode_frame

HEADER = Header().encode()


async def send_and_watch(address, data: bytes, *, eof: bool = True) -> str | None:
    """Send raw bytes; the answer's field 39, or None when the host closed without one."""
    conn = await Connection.open(address)
    try:
        await conn.send_raw(data)
        if eof:
            conn.writer.write_eof()
        payload = await conn.read_payload(timeout=5)
        if payload is None:
            return None
        return decode_message(decode_frame(payload, FrameConfig()).body)["39"]
    finally:
        await conn.close()


async def events_of(site, kind):
    await site.host.ledger.submit([])  # everything queued before is committed
    return site.store.events(kind=kind)


async def test_persistent_connection_carries_many_messages(site, signed_in):
    signed_in.persistent = await Connection.open(site.address)
    try:
        for amount in (10, 20, 30):
            assert (await signed_in.sale(PAN, amount, PIN)).rc == "00"
        assert (await signed_in.management("0820", "301")).rc == "00"
    finally:
        await signed_in.persistent.close()
    assert site.host.stats["00"] >= 6


async def test_short_connections_are_closed_by_the_host_when_configured(make_site):
    site = await make_site(HOST_CONFIG.model_copy(update={"persistent": False}))
    terminal = site.terminal()
    conn = await Connection.open(site.address)
    await conn.send_raw(terminal.frame(terminal.base("0820", "00", "301")))
    assert await conn.read_payload() is not None
    assert await conn.closed_by_host()
    await conn.close()


async def test_idle_connections_are_closed_with_an_event(make_site):
    site = await make_site(HOST_CONFIG.model_copy(update={"idle_timeout_s": 0.1}))
    conn = await Connection.open(site.address)
    assert await conn.closed_by_host(timeout=2)
    await conn.close()
    [event] = await events_of(site, "idle_timeout")
    assert event.detail["messages"] == 0


async def test_oversize_frame_is_refused_before_it_is_read(site):
    assert await send_and_watch(site.address, (9000).to_bytes(2, "big") + b"\x60" * 100, eof=False) is None
    [event] = await events_of(site, "frame_error")
    assert event.detail["reason"] == "length prefix announces 9000 bytes, larger than the maximum 8192"


async def test_frames_already_received_are_answered_before_a_bad_prefix_or_eof_closes(site):
    terminal = site.terminal()
    echo = terminal.frame(terminal.base("0820", "00", "301"))
    # one write: a whole frame, then its end of input; then a frame followed by a bad prefix
    assert await send_and_watch(site.address, echo, eof=True) == "00"
    assert await send_and_watch(site.address, echo + (9000).to_bytes(2, "big"), eof=False) == "00"
    [event] = await events_of(site, "frame_error")
    assert event.detail["reason"] == "length prefix announces 9000 bytes, larger than the maximum 8192"


async def test_truncated_and_stalled_frames(make_site):
    site = await make_site(HOST_CONFIG.model_copy(update={"frame_timeout_s": 0.1}))
    assert await send_and_watch(site.address, (50).to_bytes(2, "big") + b"\x60\x00", eof=True) is None
    assert await send_and_watch(site.address, (50).to_bytes(2, "big") + b"\x60\x00", eof=False) is None
    reasons = sorted(e.detail["reason"] for e in await events_of(site, "frame_error"))
    assert reasons == ["50-byte frame not complete within 0.1s", "connection closed after 2 of 50 announced bytes"]


async def test_undecodable_body_with_a_readable_mti_gets_30(site, signed_in):
    body = encode_message({"t": "0820", "11": "000777", "41": "10000001"})[:-3]  # cut inside field 41
    rc = await send_and_watch(site.address, encode_frame(Frame(DEFAULT_TPDU, Header(), body)), eof=False)
    assert rc == "30"
    [event] = await events_of(site, "decode_error")
    assert event.detail["field"] == "41"


async def test_tpdu_for_another_host_is_dropped(make_site):
    site = await make_site(HOST_CONFIG.model_copy(update={"accepted_tpdu_destinations": ("0003",)}))
    terminal = site.terminal(tpdu=bytes.fromhex("6000050000"))
    data = terminal.frame(terminal.base("0820", "00", "301"))
    assert await send_and_watch(site.address, data, eof=False) is None
    [event] = await events_of(site, "tpdu_rejected")
    assert event.detail["destination"] == "0005"
    ok = site.terminal()
    assert (await ok.management("0820", "301")).rc == "00"


async def test_host_without_header_and_terminal_with_one(make_site):
    site = await make_site(HOST_CONFIG.model_copy(update={"header": False}))
    headerless = site.terminal(header=False)
    assert (await headerless.management("0820", "301")).rc == "00"
    with_header = site.terminal()
    assert await send_and_watch(site.address, with_header.frame(with_header.base("0820", "00", "301")),
                                eof=False) in ("30", None)


def framed(payload: bytes) -> bytes:
    return len(payload).to_bytes(2, "big") + payload


garbage = st.one_of(
    st.binary(max_size=300),  # anything at all, length prefix included
    st.binary(min_size=1, max_size=300).map(framed),  # a right length, random content
    st.binary(max_size=200).map(lambda b: framed(DEFAULT_TPDU + HEADER + b)),  # valid TPDU and header
    st.tuples(st.sampled_from(["0200", "0800", "0820", "0400", "0500", "0320", "0100"]), st.binary(max_size=120))
    .map(lambda t: framed(DEFAULT_TPDU + HEADER + bytes.fromhex(t[0]) + t[1])),  # real MTI, random bitmap/fields
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=garbage)
async def test_garbage_gets_a_clean_close_or_30_and_harms_nobody_else(site, signed_in, data):
    healthy = await Connection.open(site.address)
    signed_in.persistent = healthy
    try:
        outcome, answer = await asyncio.gather(send_and_watch(site.address, data),
                                               signed_in.management("0820", "301"))
        assert outcome in (None, "30")
        assert answer.rc == "00"
        assert (await signed_in.sale(PAN, 1)).rc == "00"
    finally:
        signed_in.persistent = None
        await healthy.close()


async def test_garbage_leaves_events(site):
    for data in (b"\x00", framed(b"\x61" * 20), framed(DEFAULT_TPDU + HEADER + b"\x02\x00\xff")):
        assert await send_and_watch(site.address, data) in (None, "30")
    kinds = {e.kind for e in await events_of(site, None)}
    assert {"frame_error", "decode_error"} <= kinds


async def test_connections_beyond_the_limit_are_closed(make_site):
    site = await make_site(HOST_CONFIG.model_copy(update={"max_connections": 1}))
    first = await Connection.open(site.address)
    terminal = site.terminal(persistent=first)
    assert (await terminal.management("0820", "301")).rc == "00"
    second = await Connection.open(site.address)
    assert await second.closed_by_host()
    await second.close()
    assert (await terminal.management("0820", "301")).rc == "00"
    await first.close()
    [event] = await events_of(site, "connection_refused")
    assert event.detail["reason"] == "too many connections"
