"""Hypothesis: untrusted bytes raise only Iso8583Error subclasses, never anything else."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posdoctor.iso8583.codec import decode_message, encode_message, mac_input
from posdoctor.iso8583.errors import DecodeError, EncodeError, FrameError, Iso8583Error
from posdoctor.iso8583.fields import (
    STATUS_TAGS,
    Field60,
    SecurityControl,
    SettlementTotals,
    decode_balances,
    decode_batch_items,
    decode_device_info,
    decode_emv_list,
    decode_key_block,
    decode_param_tags,
    decode_tlv,
)
from posdoctor.iso8583.framing import FrameConfig, decode_frame, split_frames
from posdoctor.iso8583.mask import mask_body_hex
from posdoctor.iso8583.routing import route_key
from posdoctor.iso8583.spec import DEFINED_FIELDS

from iso8583_strategies import FIELD_VALUES, messages

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decode_all(payload: bytes, config: FrameConfig) -> None:
    frame = decode_frame(payload, config)
    msg = decode_message(frame.body)
    mac_input(frame.body)
    route_key(msg)


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_garbage_frames_raise_only_iso8583_errors(payload: bytes, header: bool) -> None:
    try:
        _decode_all(payload, FrameConfig(header=header, max_frame=256))
    except Iso8583Error:
        pass
    assert len(mask_body_hex(payload)) == 2 * len(payload)


@st.composite
def plausible_bodies(draw: st.DrawFn) -> bytes:
    """MTI + a bitmap of defined fields + random bytes: reaches the field decoders."""
    fields = draw(st.lists(st.sampled_from(sorted(DEFINED_FIELDS)), unique=True, max_size=12))
    bitmap = sum(1 << (64 - n) for n in fields).to_bytes(8, "big")
    mti = draw(st.sampled_from([b"\x02\x00", b"\x08\x00", b"\x08\x10", b"\x0a\x00"]))
    return mti + bitmap + draw(st.binary(max_size=200))


@FUZZ
@given(plausible_bodies())
def test_plausible_bodies_raise_only_decode_errors_or_round_trip(body: bytes) -> None:
    try:
        msg = decode_message(body)
    except DecodeError as exc:
        assert 0 <= exc.pos <= len(body)
        assert exc.field
    else:
        assert encode_message(msg) == body  # whatever decodes is canonical
    assert len(mask_body_hex(body)) == 2 * len(body)


@FUZZ
@given(st.binary(max_size=400))
def test_stream_splitter_raises_only_frame_errors(data: bytes) -> None:
    buffer = bytearray(data)
    try:
        for payload in split_frames(buffer, 512):
            assert len(payload) <= 512
    except FrameError:
        pass


@FUZZ
@given(st.binary(max_size=120), st.sampled_from(["001", "003", "004", "006", "999"]))
def test_binary_subfield_decoders_raise_only_decode_errors(data: bytes, nmi: str) -> None:
    for decode in (decode_tlv, decode_emv_list, decode_device_info, decode_param_tags,
                   lambda d: decode_param_tags(d, STATUS_TAGS), lambda d: decode_key_block(nmi, d)):
        try:
            decode(data)
        except DecodeError as exc:
            assert 0 <= exc.pos <= len(data)


@FUZZ
@given(st.text("0123456789CDx", max_size=100))
def test_text_subfield_decoders_raise_only_decode_errors(value: str) -> None:
    for decode in (Field60.decode, SecurityControl.decode, SettlementTotals.decode, decode_balances,
                   decode_batch_items):
        try:
            decode(value)
        except DecodeError as exc:
            assert 0 <= exc.pos <= len(value)


@FUZZ
@given(messages(), st.data())
def test_mutated_valid_bodies_raise_decode_errors_or_round_trip(msg: dict[str, str], data: st.DataObject) -> None:
    body = bytearray(encode_message(msg))
    index = data.draw(st.integers(0, len(body) - 1))
    body[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(body) + 2))
    mutated = bytes(body[:cut]) + bytes(max(0, cut - len(body)))
    try:
        decoded = decode_message(mutated)
    except DecodeError as exc:
        assert 0 <= exc.pos <= len(mutated)
    else:
        assert encode_message(decoded) == mutated


JUNK_KEYS = st.one_of(st.sampled_from(["t", "p", "1", "5", "65", "70", "129", "200", "x", "²", ""]),
                      st.sampled_from(sorted(FIELD_VALUES)), st.integers(0, 70))
JUNK_VALUES = st.one_of(st.text(max_size=30), st.integers(), st.none(), st.binary(max_size=8),
                        st.text("0123456789=D", max_size=40))


@FUZZ
@given(st.dictionaries(JUNK_KEYS, JUNK_VALUES, max_size=8))
def test_junk_dicts_raise_only_encode_errors(msg: dict) -> None:
    try:
        body = encode_message(msg)
    except EncodeError as exc:
        assert isinstance(exc.field, str) and exc.reason
    else:
        assert decode_message(body)["t"] == msg["t"]
