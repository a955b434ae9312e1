"""Known-answer frames and exact FrameErrors for posdoctor.iso8583.framing."""

from __future__ import annotations

import pytest

from posdoctor.iso8583.codec import decode_message, encode_message
from posdoctor.iso8583.errors import FrameError
from posdoctor.iso8583.framing import (
    DEFAULT_TPDU,
    Frame,
    FrameConfig,
    Header,
    ProcessingRequirement,
    answer_tpdu,
    decode_frame,
    decode_length_prefixed,
    encode_frame,
    split_frames,
    split_length,
)

SIGN_IN = {"t": "0800", "11": "000001", "41": "10000001", "42": "123456789012345", "60": "00000001004", "63": "001"}
SIGN_IN_FRAME = bytes.fromhex(
    "003C"  # 60 bytes follow
    "6000030000"  # TPDU
    "603100000000"  # header: 60 app, 31 version, 0 status, 0 processing, 000000
    "0800" "0020000000C00012" "000001" "3130303030303031" "313233343536373839303132333435"
    "0011" "000000010040" "0003" "303031"
)


def test_full_sign_in_frame_known_answer() -> None:
    frame = Frame(bytes.fromhex("6000030000"), Header(), encode_message(SIGN_IN))
    assert encode_frame(frame) == SIGN_IN_FRAME
    decoded = decode_frame(SIGN_IN_FRAME[2:], FrameConfig())
    assert decoded == frame
    assert decode_message(decoded.body) == SIGN_IN


def test_frame_without_header() -> None:
    frame = Frame(DEFAULT_TPDU, None, bytes.fromhex("0800" "0000000000000000"))
    wire = encode_frame(frame)
    assert wire == bytes.fromhex("000F" "6000030000" "0800" "0000000000000000")
    assert decode_frame(wire[2:], FrameConfig(header=False)) == frame


def test_header_fields_and_processing_requirement() -> None:
    header = Header.decode(bytes.fromhex("603113123456"))
    assert header == Header("60", "31", "1", "3", "123456")
    assert header.requirement is ProcessingRequirement.SIGNIN
    assert header.with_requirement(ProcessingRequirement.CAPK).encode() == bytes.fromhex("603114123456")


def test_answer_tpdu_swaps_destination_and_source() -> None:
    assert answer_tpdu(bytes.fromhex("6000031234")) == bytes.fromhex("6012340003")


def test_configurable_tpdu_id() -> None:
    payload = bytes.fromhex("6800030000" "603100000000" "0800" "0000000000000000")
    assert decode_frame(payload, FrameConfig(tpdu_id=0x68)).tpdu == payload[:5]
    with pytest.raises(FrameError, match="^TPDU ID byte is 68, expecting 60$"):
        decode_frame(payload, FrameConfig())


BODY = bytes.fromhex("0800" "0000000000000000")
TPDU_HEADER = bytes.fromhex("6000030000" "603100000000")

DECODE_FRAME_ERRORS = [
    ("empty", b"", FrameConfig(), "TPDU is 0 bytes, expecting 5"),
    ("short TPDU", bytes.fromhex("600003"), FrameConfig(), "TPDU is 3 bytes, expecting 5"),
    ("bad TPDU ID", bytes.fromhex("6100030000") + TPDU_HEADER[5:] + BODY, FrameConfig(),
     "TPDU ID byte is 61, expecting 60"),
    ("header truncated", TPDU_HEADER[:8], FrameConfig(), "frame is 8 bytes, too short for TPDU and header"),
    ("header not BCD", bytes.fromhex("6000030000" "6031000000AB") + BODY, FrameConfig(),
     "header 6031000000AB is not BCD"),
    ("no body", TPDU_HEADER, FrameConfig(), "frame carries no message body"),
    ("no body, no header", bytes.fromhex("6000030000"), FrameConfig(header=False), "frame carries no message body"),
    ("oversize", TPDU_HEADER + bytes(8182), FrameConfig(), "frame is 8193 bytes, larger than the maximum 8192"),
    ("oversize custom", TPDU_HEADER + BODY, FrameConfig(max_frame=20), "frame is 21 bytes, larger than the maximum 20"),
]


@pytest.mark.parametrize(("payload", "config", "reason"), [c[1:] for c in DECODE_FRAME_ERRORS],
                         ids=[c[0] for c in DECODE_FRAME_ERRORS])
def test_decode_frame_errors(payload: bytes, config: FrameConfig, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        decode_frame(payload, config)
    assert info.value.reason == reason
    assert str(info.value) == reason


def test_max_frame_is_inclusive() -> None:
    payload = TPDU_HEADER + BODY
    assert decode_frame(payload, FrameConfig(max_frame=len(payload))).body == BODY


LENGTH_ERRORS = [
    ("one byte", lambda: split_length(b"\x00"), "length prefix is 1 bytes, expecting 2"),
    ("three bytes", lambda: split_length(b"\x00\x01\x02"), "length prefix is 3 bytes, expecting 2"),
    ("zero", lambda: split_length(b"\x00\x00"), "length prefix is zero"),
    ("over maximum", lambda: split_length(b"\x20\x01", 8192), "length prefix announces 8193 bytes, larger than the "
     "maximum 8192"),
    ("prefix says more", lambda: decode_length_prefixed(SIGN_IN_FRAME[:-1], FrameConfig()),
     "length prefix says 60 bytes, but 59 follow"),
    ("prefix says less", lambda: decode_length_prefixed(SIGN_IN_FRAME + b"\x00", FrameConfig()),
     "length prefix says 60 bytes, but 61 follow"),
    ("encode bad TPDU", lambda: encode_frame(Frame(b"\x60\x00", None, BODY)), "TPDU is 2 bytes, expecting 5"),
    ("encode huge", lambda: encode_frame(Frame(DEFAULT_TPDU, None, bytes(65531))),
     "frame is 65536 bytes, more than a 2-byte length can say"),
    ("encode bad header", lambda: Header(version="3").encode(), "header version must be 2 decimal digits, got '3'"),
    ("decode short header", lambda: Header.decode(b"\x60\x31"), "header is 2 bytes, expecting 6"),
    ("undefined requirement", lambda: Header(processing="9").requirement,
     "header processing requirement '9' is not defined"),
    ("answer short TPDU", lambda: answer_tpdu(b"\x60"), "TPDU is 1 bytes, expecting 5"),
]


@pytest.mark.parametrize(("call", "reason"), [c[1:] for c in LENGTH_ERRORS], ids=[c[0] for c in LENGTH_ERRORS])
def test_length_and_encode_errors(call, reason: str) -> None:  # noqa: ANN001
    with pytest.raises(FrameError) as info:
        call()
    assert info.value.reason == reason


def test_split_length_and_prefixed_decode() -> None:
    assert split_length(SIGN_IN_FRAME[:2]) == 60
    assert split_length(b"\x20\x00", 8192) == 8192
    assert decode_length_prefixed(SIGN_IN_FRAME, FrameConfig()).body == SIGN_IN_FRAME[13:]


def test_split_frames_keeps_incomplete_tail() -> None:
    second = encode_frame(Frame(DEFAULT_TPDU, None, BODY))
    buffer = bytearray(SIGN_IN_FRAME + second + second[:5])
    assert split_frames(buffer, 8192) == [SIGN_IN_FRAME[2:], second[2:]]
    assert buffer == bytearray(second[:5])
    assert split_frames(buffer, 8192) == []
    buffer += second[5:]
    assert split_frames(buffer, 8192) == [second[2:]]
    assert buffer == bytearray()


def test_split_frames_refuses_oversize_announcement() -> None:
    with pytest.raises(FrameError, match="larger than the maximum 100"):
        split_frames(bytearray(b"\x00\x65"), 100)


def test_split_frames_into_keeps_the_frames_before_a_bad_prefix() -> None:
    got: list[bytes] = []
    buffer = bytearray(SIGN_IN_FRAME + b"\x00\x65")
    with pytest.raises(FrameError, match="larger than the maximum 100"):
        split_frames(buffer, 100, into=got)
    assert got == [SIGN_IN_FRAME[2:]]
