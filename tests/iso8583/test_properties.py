"""Hypothesis: random valid messages and sub-structures round-trip exactly."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posdoctor.iso8583.codec import decode_message, encode_message, mac_input
from posdoctor.iso8583.fields import (
    STATUS_TAGS,
    BatchItem,
    BatchKind,
    Field60,
    ReconFlag,
    SecurityControl,
    SettlementTotals,
    decode_balance,
    decode_batch_items,
    decode_device_info,
    decode_key_block,
    decode_param_tags,
    decode_tlv,
    encode_balance,
    encode_batch_items,
    encode_device_info,
    encode_key_block,
    encode_param_tags,
    encode_tlv,
)
from posdoctor.iso8583.fields.params import PARAM_TAGS
from posdoctor.iso8583.framing import Frame, FrameConfig, Header, decode_frame, encode_frame
from posdoctor.iso8583.spec import CUP_SPEC

from iso8583_strategies import FIELD_VALUES, PRINTABLE, digits, merchant_name, messages, no_trailing_space

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_strategy_covers_every_defined_field() -> None:
    assert set(FIELD_VALUES) == {k for k in CUP_SPEC if k.isdigit()}


@FAST
@given(messages())
def test_message_round_trip(msg: dict[str, str]) -> None:
    body = encode_message(msg)
    assert decode_message(body) == msg
    assert encode_message(decode_message(body)) == body
    assert mac_input(body) == (body[:-8] if "64" in msg else body)


@FAST
@given(st.binary(min_size=5, max_size=5).map(lambda b: b"\x60" + b[1:]), st.booleans(),
       st.binary(min_size=1, max_size=200), st.sampled_from("0123456"), digits(6))
def test_frame_round_trip(tpdu: bytes, with_header: bool, body: bytes, processing: str, sub: str) -> None:
    frame = Frame(tpdu, Header(processing=processing, sub_version=sub) if with_header else None, body)
    wire = encode_frame(frame)
    assert int.from_bytes(wire[:2], "big") == len(wire) - 2
    assert decode_frame(wire[2:], FrameConfig(header=with_header)) == frame


@FAST
@given(digits(2), digits(6), digits(3), st.sampled_from(["", "5", "50", "501", "50123"]))
def test_field60_round_trip(txn: str, batch: str, nmi: str, tail: str) -> None:
    value = txn + batch + nmi + tail
    decoded = Field60.decode(value)
    assert decoded.encode() == value
    assert (decoded.txn_type, decoded.batch, decoded.nmi) == (txn, batch, nmi)


@FAST
@given(digits(1), digits(1), digits(1), digits(13))
def test_security_control_round_trip(a: str, b: str, c: str, rest: str) -> None:
    value = SecurityControl(a, b, c, rest)
    assert SecurityControl.decode(value.encode()) == value


@FAST
@given(st.integers(-(10**12) + 1, 10**12 - 1), digits(3))
def test_balance_round_trip(amount: int, currency: str) -> None:
    assert decode_balance(encode_balance(amount, currency)) == amount


AMOUNT = st.integers(0, 10**12 - 1)
COUNT = st.integers(0, 999)
FLAG = st.sampled_from(list(ReconFlag))


@FAST
@given(st.builds(SettlementTotals, AMOUNT, COUNT, AMOUNT, COUNT, FLAG, AMOUNT, COUNT, AMOUNT, COUNT, FLAG))
def test_settlement_round_trip(totals: SettlementTotals) -> None:
    assert SettlementTotals.decode(totals.encode()) == totals


ITEM = st.builds(BatchItem, digits(12, 19), digits(6), AMOUNT, st.sampled_from(list(BatchKind)))


@FAST
@given(st.lists(ITEM, min_size=1, max_size=8))
def test_batch_items_round_trip(items: list[BatchItem]) -> None:
    value = encode_batch_items(items)
    assert decode_batch_items(value) == items
    assert decode_message(encode_message({"t": "0320", "48": value}))["48"] == value


@FAST
@given(st.sampled_from(["001", "003", "004", "006"]), st.data())
def test_key_block_round_trip(nmi: str, data: st.DataObject) -> None:
    length, counts = {"001": (8, [2, 3]), "003": (16, [2]), "004": (16, [3]), "006": (16, [2, 3])}[nmi]
    count = data.draw(st.sampled_from(counts))
    keys = [(data.draw(st.binary(min_size=length, max_size=length)), data.draw(st.binary(min_size=4, max_size=4)))
            for _ in range(count)]
    block = decode_key_block(nmi, encode_key_block(keys))
    assert (block.pik, block.pik_cv, block.mak_cv) == (keys[0][0], keys[0][1], keys[1][1])
    if nmi in ("003", "004") and keys[1][0][8:] == bytes(8):
        assert block.mak == keys[1][0][:8]
    else:
        assert block.mak == keys[1][0]
    assert (block.tdk, block.tdk_cv) == (keys[2] if count == 3 else (None, None))


def _param_value(table: dict, tag: str) -> st.SearchStrategy[str]:
    spec = table[tag]
    if spec.kind == "n":
        return digits(spec.length)
    if spec.kind == "gbk":
        return merchant_name()
    return no_trailing_space(PRINTABLE, spec.length)


@FAST
@given(st.sampled_from([PARAM_TAGS, STATUS_TAGS]), st.data())
def test_param_tags_round_trip(table: dict, data: st.DataObject) -> None:
    tags = data.draw(st.lists(st.sampled_from(sorted(table)), unique=True))
    values = {tag: data.draw(_param_value(table, tag)) for tag in tags}
    assert decode_param_tags(encode_param_tags(values, table), table) == values


@FAST
@given(st.dictionaries(st.text(string.ascii_uppercase, min_size=2, max_size=2),
                       st.text(PRINTABLE, max_size=99), max_size=6))
def test_device_info_round_trip(info: dict[str, str]) -> None:
    assert decode_device_info(encode_device_info(info)) == info


def _ber_tag() -> st.SearchStrategy[str]:
    single = st.integers(0, 255).filter(lambda b: b & 0x1F != 0x1F).map(lambda b: bytes([b]))
    first = st.integers(0, 255).map(lambda b: b | 0x1F)
    middle = st.lists(st.integers(0x80, 0xFF), max_size=2)
    last = st.integers(0, 0x7F)
    multi = st.tuples(first, middle, last).map(lambda t: bytes([t[0], *t[1], t[2]]))
    return st.one_of(single, multi).map(lambda b: b.hex().upper())


@FAST
@given(st.lists(st.tuples(_ber_tag(), st.binary(max_size=300)), max_size=6))
def test_tlv_round_trip(items: list[tuple[str, bytes]]) -> None:
    assert decode_tlv(encode_tlv(items)) == items
