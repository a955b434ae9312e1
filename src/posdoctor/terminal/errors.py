"""Typed failures of the payment application; each carries the merchant-visible message.

Operations catch `TerminalError` at one place (`PaymentApp`), turn it into an event and
an `Outcome`; nothing else is swallowed.
"""

from __future__ import annotations

from typing import Any

from posdoctor.terminal.messages import Message

__all__ = ["TerminalError", "CommError", "ResponseCheckError", "LocalRefusal", "KeyCheckError",
           "ReversalFailed", "HostDeclined"]


class TerminalError(Exception):
    """Base: `message` is what the merchant sees; `detail` goes into the event."""

    def __init__(self, message: Message, **detail: Any) -> None:
        super().__init__(f"{message.code}: {message.zh} / {message.en}")
        self.message = message
        self.detail = {k: v for k, v in detail.items() if v is not None}


class CommError(TerminalError):
    """Network or framing failure (section 8 strings).

    `reversal_reason` is the field 39 a pending reversal takes when this happens after a
    reversible request was sent (98 nothing received, 06 garbage); None when the request
    surely did not reach the host.
    """

    def __init__(self, message: Message, *, stage: str, reversal_reason: str | None = None, **detail: Any) -> None:
        super().__init__(message, stage=stage, **detail)
        self.stage = stage
        self.reversal_reason = reversal_reason


class ResponseCheckError(TerminalError):
    """The answer does not belong to the request (MTI/3/11/41/42/amount) or its MAC is bad."""

    def __init__(self, message: Message, *, field: str, reversal_reason: str, **detail: Any) -> None:
        super().__init__(message, field=field, **detail)
        self.field = field
        self.reversal_reason = reversal_reason


class LocalRefusal(TerminalError):
    """The terminal refuses before going online (not signed in, batch full, no TMK...)."""


class KeyCheckError(TerminalError):
    """A downloaded key's check value does not match."""


class ReversalFailed(TerminalError):
    """A pending reversal could not be delivered; the current transaction does not go."""


class HostDeclined(TerminalError):
    """The host answered with a field 39 other than approval."""

    def __init__(self, message: Message, *, response_code: str, **detail: Any) -> None:
        super().__init__(message, response_code=response_code, **detail)
        self.response_code = response_code
