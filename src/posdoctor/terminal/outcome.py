"""What every operation of the payment app returns: result, texts, events, transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from posdoctor.iso8583.codes import describe
from posdoctor.terminal.events import TerminalEvent
from posdoctor.terminal.messages import Message
from posdoctor.terminal.state import TxnRecord

__all__ = ["Outcome", "host_code_message"]


def host_code_message(code: str) -> Message:
    """The merchant text of a field 39 code as a `Message` (code ``host.rc.NN``)."""
    described = describe(code)
    return Message(f"host.rc.{code}", described.zh, described.en)


@dataclass
class Outcome:
    operation: str
    ok: bool
    code: str
    message_zh: str
    message_en: str
    response_code: str | None = None
    events: list[TerminalEvent] = field(default_factory=list)
    txn: TxnRecord | None = None
    balance: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    follow_ups: list[Outcome] = field(default_factory=list)

    @classmethod
    def of(cls, operation: str, ok: bool, message: Message, *, response_code: str | None = None,
           **detail: Any) -> Outcome:
        return cls(operation, ok, message.code, message.zh, message.en, response_code,
                   detail={k: v for k, v in detail.items() if v is not None})

    @property
    def text(self) -> str:
        return f"{self.message_zh} / {self.message_en}"

    @property
    def response_text(self) -> tuple[str, str] | None:
        if self.response_code is None:
            return None
        described = describe(self.response_code)
        return described.zh, described.en

    def txn_summary(self) -> dict[str, Any] | None:
        txn = self.txn
        if txn is None:
            return None
        return {"kind": txn.kind, "stan": txn.stan, "batch": f"{txn.batch:06d}", "amount": txn.amount,
                "pan": txn.pan_masked, "rrn": txn.rrn, "auth_code": txn.auth_code, "status": txn.status}

    def to_json(self) -> dict[str, Any]:
        text = self.response_text
        return {
            "operation": self.operation, "ok": self.ok, "code": self.code,
            "message_zh": self.message_zh, "message_en": self.message_en,
            "response_code": self.response_code,
            "response_zh": text[0] if text else None, "response_en": text[1] if text else None,
            "txn": self.txn_summary(), "balance": self.balance, "detail": self.detail,
            "events": [event.to_json() for event in self.events],
            "follow_ups": [f.to_json() for f in self.follow_ups],
        }
