"""Structured terminal events: every step the terminal takes becomes one `TerminalEvent`.

Events are kept in the terminal state's ring buffer (the TMS uploads them later), handed
to listeners (a fleet simulator, a test) and returned to the caller of each operation.
They never hold a clear key, PIN, PIN block, full PAN or track data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from posdoctor.terminal.messages import Message

__all__ = ["EventKind", "TerminalEvent", "EventLog", "EventListener", "Clock"]

Clock = Callable[[], datetime]


class EventKind(StrEnum):
    SELF_CHECK = "self_check"
    COMM = "comm"
    KEY_INJECTION = "key_injection"
    TMK_DOWNLOAD = "tmk_download"
    PARAM_DOWNLOAD = "param_download"
    CAPK_DOWNLOAD = "capk_download"
    AID_DOWNLOAD = "aid_download"
    SIGN_IN = "sign_in"
    SIGN_OFF = "sign_off"
    ECHO = "echo"
    BALANCE = "balance"
    SALE = "sale"
    VOID = "void"
    REFUND = "refund"
    REVERSAL = "reversal"
    SETTLEMENT = "settlement"
    BATCH_UPLOAD = "batch_upload"
    OPERATOR = "operator"
    HOST_REQUIREMENT = "host_requirement"
    STATUS_UPLOAD = "status_upload"
    CONFIG = "config"


@dataclass(frozen=True, slots=True)
class TerminalEvent:
    """One thing that happened on one terminal; `code` is the `Message` code."""

    at: datetime
    tid: str
    kind: str
    code: str
    message_zh: str
    message_en: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return f"{self.message_zh} / {self.message_en}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


EventListener = Callable[[TerminalEvent], None]


class EventLog:
    """Records events into a ring buffer (a list owned by the terminal state).

    `capture()` collects the events of one operation so it can return them.
    """

    __slots__ = ("tid", "ring", "capacity", "clock", "listeners", "_captures")

    def __init__(self, tid: str, ring: list[TerminalEvent], clock: Clock, *, capacity: int = 100,
                 listeners: tuple[EventListener, ...] = ()) -> None:
        self.tid = tid
        self.ring = ring
        self.capacity = capacity
        self.clock = clock
        self.listeners = list(listeners)
        self._captures: list[list[TerminalEvent]] = []

    def record(self, kind: EventKind | str, message: Message, **detail: Any) -> TerminalEvent:
        event = TerminalEvent(self.clock(), self.tid, str(kind), message.code, message.zh, message.en,
                              {k: v for k, v in detail.items() if v is not None})
        self.ring.append(event)
        overflow = len(self.ring) - self.capacity
        if overflow > 0:
            del self.ring[:overflow]
        for captured in self._captures:
            captured.append(event)
        for listener in self.listeners:
            listener(event)
        return event

    @contextmanager
    def capture(self) -> Iterator[list[TerminalEvent]]:
        captured: list[TerminalEvent] = []
        self._captures.append(captured)
        try:
            yield captured
        finally:
            self._captures.remove(captured)
