"""TCP framing of CUP POS messages: length prefix, TPDU, 6-byte header, body.

On the wire::

    LL LL | 60 DD DD SS SS | AA VV S P XX XX XX | MTI bitmap fields...
    length  TPDU (5 bytes)   header (12 BCD digits)  body

The 2-byte big-endian length counts everything after itself. The TPDU starts with an ID
byte (0x60 by default, configurable), then destination and source (2 bytes each); the
host answers with them swapped. The header is optional (`FrameConfig(header=False)`)
because some apps drop it.
"""

from __future__ import annotations

from collections.abc import MutableSequence
from dataclasses import dataclass, replace
from functools import lru_cache
from enum import IntEnum

from posdoctor.iso8583.errors import FrameError

__all__ = [
    "ProcessingRequirement", "Header", "Frame", "FrameConfig", "encode_frame", "decode_frame",
    "split_length", "split_frames", "decode_length_prefixed", "answer_tpdu", "DEFAULT_TPDU", "TPDU_LEN", "HEADER_LEN", "PREFIX_LEN",
]

PREFIX_LEN = 2
TPDU_LEN = 5
HEADER_LEN = 6
MAX_LENGTH = 0xFFFF
DEFAULT_TPDU = bytes.fromhex("6000030000")


class ProcessingRequirement(IntEnum):
    """Header digit 6, set by the host in answers (reference section 1)."""

    NONE = 0
    PARAMS = 1
    STATUS = 2
    SIGNIN = 3
    CAPK = 4
    AID = 5
    TMS = 6


_HEADER_PARTS = (("app_type", 2), ("version", 2), ("terminal_status", 1), ("processing", 1), ("sub_version", 6))


@dataclass(frozen=True)
class Header:
    """The 12-digit BCD message header that follows the TPDU."""

    app_type: str = "60"
    version: str = "31"
    terminal_status: str = "0"
    processing: str = "0"
    sub_version: str = "000000"

    def encode(self) -> bytes:
        try:
            return _encoded_header(self)
        except TypeError:  # an unhashable, so invalid, value: `_encode` names it
            return self._encode()

    def _encode(self) -> bytes:
        digits = ""
        for name, width in _HEADER_PARTS:
            value = getattr(self, name)
            if not (isinstance(value, str) and len(value) == width and value.isdigit() and value.isascii()):
                raise FrameError(f"header {name} must be {width} decimal digits, got {value!r}")
            digits += value
        return bytes.fromhex(digits)

    @classmethod
    def decode(cls, data: bytes) -> Header:
        if cls is Header and type(data) is bytes:
            return _decoded_header(data)  # a host sees the same few headers all day
        return cls._decode(data)

    @classmethod
    def _decode(cls, data: bytes) -> Header:
        if len(data) != HEADER_LEN:
            raise FrameError(f"header is {len(data)} bytes, expecting {HEADER_LEN}")
        digits = data.hex()
        if not digits.isdigit():
            raise FrameError(f"header {digits.upper()} is not BCD")
        values, pos = {}, 0
        for name, width in _HEADER_PARTS:
            values[name] = digits[pos:pos + width]
            pos += width
        return cls(**values)

    @property
    def requirement(self) -> ProcessingRequirement:
        """Digit 6 as an enum; FrameError for a digit the reference does not define."""
        try:
            return ProcessingRequirement(int(self.processing))
        except ValueError:
            raise FrameError(f"header processing requirement {self.processing!r} is not defined") from None

    def with_requirement(self, requirement: ProcessingRequirement) -> Header:
        return _header_with(self, requirement)



@lru_cache(maxsize=256)
def _decoded_header(data: bytes) -> Header:
    """`Header.decode`, remembered (a bad header raises each time: errors are not cached)."""
    return Header._decode(data)


@lru_cache(maxsize=256)
def _header_with(header: Header, requirement: ProcessingRequirement) -> Header:
    """`Header.with_requirement`, remembered (headers are immutable and few)."""
    return replace(header, processing=str(int(requirement)))


@lru_cache(maxsize=256)
def _encoded_header(header: Header) -> bytes:
    """`Header.encode`, remembered: a host answers with the same few headers all day."""
    return header._encode()

@dataclass(frozen=True)
class Frame:
    tpdu: bytes
    header: Header | None
    body: bytes


@dataclass
class FrameConfig:
    """How frames look on one link. `max_frame` bounds the length prefix's value."""

    header: bool = True
    max_frame: int = 8192
    tpdu_id: int = 0x60


def encode_frame(frame: Frame) -> bytes:
    """Frame -> length prefix + TPDU + header (if any) + body."""
    _check_tpdu(frame.tpdu, None)
    header = frame.header.encode() if frame.header is not None else b""
    payload = bytes(frame.tpdu) + header + bytes(frame.body)
    if len(payload) > MAX_LENGTH:
        raise FrameError(f"frame is {len(payload)} bytes, more than a 2-byte length can say")
    return len(payload).to_bytes(PREFIX_LEN, "big") + payload


def decode_frame(payload: bytes, config: FrameConfig) -> Frame:
    """What follows the length prefix -> Frame; FrameError on a bad size, TPDU or header."""
    if len(payload) > config.max_frame:
        raise FrameError(f"frame is {len(payload)} bytes, larger than the maximum {config.max_frame}")
    tpdu = bytes(payload[:TPDU_LEN])
    _check_tpdu(tpdu, config.tpdu_id)
    header: Header | None = None
    start = TPDU_LEN
    if config.header:
        if len(payload) < TPDU_LEN + HEADER_LEN:
            raise FrameError(f"frame is {len(payload)} bytes, too short for TPDU and header")
        header = Header.decode(bytes(payload[TPDU_LEN:TPDU_LEN + HEADER_LEN]))
        start += HEADER_LEN
    body = bytes(payload[start:])
    if not body:
        raise FrameError("frame carries no message body")
    return Frame(tpdu, header, body)


def _check_tpdu(tpdu: bytes, tpdu_id: int | None) -> None:
    if len(tpdu) != TPDU_LEN:
        raise FrameError(f"TPDU is {len(tpdu)} bytes, expecting {TPDU_LEN}")
    if tpdu_id is not None and tpdu[0] != tpdu_id:
        raise FrameError(f"TPDU ID byte is {tpdu[0]:02X}, expecting {tpdu_id:02X}")


def split_length(prefix: bytes, max_frame: int | None = None) -> int:
    """The 2-byte big-endian length prefix -> the number of bytes that follow it.

    With `max_frame`, a length above it raises FrameError before anything is read. A
    zero length is always refused (a frame holds at least a TPDU).
    """
    if len(prefix) != PREFIX_LEN:
        raise FrameError(f"length prefix is {len(prefix)} bytes, expecting {PREFIX_LEN}")
    length = int.from_bytes(prefix, "big")
    if length == 0:
        raise FrameError("length prefix is zero")
    if max_frame is not None and length > max_frame:
        raise FrameError(f"length prefix announces {length} bytes, larger than the maximum {max_frame}")
    return length


def split_frames(buffer: bytearray, max_frame: int,
                 into: MutableSequence[bytes] | None = None) -> MutableSequence[bytes]:
    """Remove every complete frame from `buffer` and return their payloads (no prefix).

    For protocol-style readers: incomplete trailing data stays in `buffer`. With `into`,
    payloads are appended to it (and it is returned), so the frames before a length
    prefix that raises FrameError are kept by the caller.
    """
    payloads: MutableSequence[bytes] = [] if into is None else into
    while len(buffer) >= PREFIX_LEN:
        length = split_length(bytes(buffer[:PREFIX_LEN]), max_frame)
        end = PREFIX_LEN + length
        if len(buffer) < end:
            break
        payloads.append(bytes(buffer[PREFIX_LEN:end]))
        del buffer[:end]
    return payloads


def decode_length_prefixed(data: bytes, config: FrameConfig) -> Frame:
    """A whole frame including its length prefix -> Frame; the prefix must match exactly."""
    length = split_length(bytes(data[:PREFIX_LEN]), config.max_frame)
    actual = len(data) - PREFIX_LEN
    if actual != length:
        raise FrameError(f"length prefix says {length} bytes, but {actual} follow")
    return decode_frame(bytes(data[PREFIX_LEN:]), config)


def answer_tpdu(tpdu: bytes) -> bytes:
    """The answer's TPDU: same ID byte, destination and source swapped."""
    _check_tpdu(tpdu, None)
    return bytes(tpdu[:1]) + bytes(tpdu[3:5]) + bytes(tpdu[1:3])
