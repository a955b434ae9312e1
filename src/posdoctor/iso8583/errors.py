"""Typed errors of the ISO 8583 core.

Every failure of the pure core is an `Iso8583Error`, carrying enough structure for the
host to answer 30 and journal *where* a message broke:

- `DecodeError(field, pos, reason)`: bytes that do not parse. `field` is a pyiso8583
  key (``"t"`` MTI, ``"p"`` bitmap, ``"2"``..``"64"``); `pos` is the byte offset in the
  message body (MTI at 0) or, for sub-field decoders, the offset inside the field value.
- `EncodeError(field, reason)`: a message or sub-field that cannot be put on the wire.
- `FrameError(reason)`: length prefix, TPDU or header problems.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Iso8583Error", "DecodeError", "EncodeError", "FrameError"]


class Iso8583Error(Exception):
    """Base class of every error raised by `posdoctor.iso8583`."""


class DecodeError(Iso8583Error):
    """Input bytes (or a sub-field value) that do not decode.

    `partial` holds the fields decoded before the failure (pyiso8583 form, unmasked: never
    log it as is); the host uses it to echo 11/41 in a 30 answer.
    """

    def __init__(self, field: str, pos: int, reason: str, *, partial: dict[str, str] | None = None):
        super().__init__(field, pos, reason)
        self.field = field
        self.pos = pos
        self.reason = reason
        self.partial: dict[str, str] = dict(partial) if partial else {}

    def __str__(self) -> str:
        return f"field {self.field} at byte {self.pos}: {self.reason}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_decode_error, (self.field, self.pos, self.reason, self.partial))


def _rebuild_decode_error(field: str, pos: int, reason: str, partial: dict[str, str]) -> DecodeError:
    return DecodeError(field, pos, reason, partial=partial)


class EncodeError(Iso8583Error):
    """A value that cannot be encoded in the CUP dialect."""

    def __init__(self, field: str, reason: str):
        super().__init__(field, reason)
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return f"field {self.field}: {self.reason}"


class FrameError(Iso8583Error):
    """A TCP frame (length prefix, TPDU, header) that is malformed or too large."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason
