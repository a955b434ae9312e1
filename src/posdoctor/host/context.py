"""Per-message `Context` and per-connection `Session` that the pipeline steps share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from posdoctor.host.ledger import WriteSet
from posdoctor.host.results import Result
from posdoctor.iso8583.codec import Layout
from posdoctor.iso8583.framing import Frame, ProcessingRequirement

if TYPE_CHECKING:
    from posdoctor.host.records import CardRecord, MerchantRecord, SignOn, TerminalRecord, TxnState
    from posdoctor.host.route import Route

class AnswerWriter(Protocol):
    """Where a session's answers go: a `host.connection.HostConnection` (or a StreamWriter)."""

    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...


@dataclass(slots=True)
class Session:
    """What one TCP connection has seen so far."""

    peer: str
    writer: AnswerWriter | None = None
    messages: int = 0
    tid: str | None = None
    """The last terminal that spoke on this connection."""
    closing: bool = False
    busy: bool = False
    """A message is being handled (stop() lets it finish)."""
    sent: list[bytes] = field(default_factory=list)
    """Answers, when the session has no socket (in-process use)."""

    async def send(self, data: bytes) -> None:
        if self.writer is None:
            self.sent.append(data)
            return
        self.writer.write(data)
        await self.writer.drain()


class StepVerdict(NamedTuple):
    """One step's verdict on one message (immutable: a step's plain pass is one shared
    object, `Step.passed`, and so is its journal form)."""

    step: str
    verdict: str
    """"ok", "refused" or "error"."""
    reason: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"step": self.step, "verdict": self.verdict, "reason": self.reason}


@dataclass(slots=True)
class Context:
    """One message on its way through the pipeline."""

    payload: bytes
    """What followed the length prefix (TPDU, header, body)."""
    session: Session
    now: datetime
    started: float
    """perf_counter() when the payload was complete (for latency)."""

    frame: Frame | None = None
    request: dict[str, str] | None = None
    request_layout: Layout | None = None
    """Where each request field lies in `frame.body` (masking without a second decode)."""
    route_key: str = ""
    route: Route | None = None

    terminal: TerminalRecord | None = None
    merchant: MerchantRecord | None = None
    signon: SignOn | None = None
    pan: str | None = None
    card: CardRecord | None = None
    amount: int = 0
    txn: TxnState | None = None
    original: TxnState | None = None

    result: Result = Result.OK
    reason: str = ""
    forced_code: str | None = None
    verdicts: list[StepVerdict] = field(default_factory=list)

    answer_fields: dict[str, str] = field(default_factory=dict)
    """Fields a step wants in the answer (54, 62, 48, 38...)."""
    processing: ProcessingRequirement = ProcessingRequirement.NONE
    partial: dict[str, str] = field(default_factory=dict)
    """Fields decoded before a DecodeError (used only to address a 30 answer)."""
    answer: dict[str, str] | None = None
    answer_frame: Frame | None = None
    """The answer to send, or None: close without answering."""
    answer_layout: Layout | None = None
    committed: bool = False
    """The message's writes are durable; only then is the answer sent."""
    no_answer: bool = False
    """Set by a step that wants the connection closed instead of answered."""
    redact: dict[str, str] = field(default_factory=dict)
    """Journal replacements for request fields `mask_fields` does not know about."""
    events: list[dict[str, Any]] = field(default_factory=list)
    writes: WriteSet = field(default_factory=WriteSet)

    @property
    def tid(self) -> str | None:
        if self.terminal is not None:
            return self.terminal.tid
        return (self.request or {}).get("41")

    @property
    def mid(self) -> str | None:
        if self.terminal is not None:
            return self.terminal.mid
        return (self.request or {}).get("42")

    def get(self, number: str) -> str | None:
        """A request field, or None."""
        return None if self.request is None else self.request.get(number)

    def add_event(self, kind: str, code: str | None = None, **detail: Any) -> None:
        self.events.append({"kind": kind, "code": code, "detail": detail})
