"""The doctor's value types: evidence rows as read, evidence lines, findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

__all__ = ["JournalRow", "EventRow", "Line", "Finding", "stamp", "line"]


@dataclass(slots=True)
class JournalRow:
    """One request the host received (the `in` journal row) with its answer code."""

    at: datetime
    tid: str | None
    mid: str | None
    route: str | None
    mti: str | None
    stan: str | None
    rc: str | None
    steps: list[dict[str, Any]]
    latency_ms: float | None

    def refused(self) -> tuple[str, str] | None:
        """(step, reason) of the step that refused or failed, if any."""
        for verdict in self.steps:
            if verdict.get("verdict") in ("refused", "error"):
                return str(verdict.get("step")), str(verdict.get("reason") or "")
        return None

    def refusal_reason(self) -> str:
        refused = self.refused()
        return f"{refused[0]}: {refused[1]}" if refused else ""


@dataclass(slots=True)
class EventRow:
    at: datetime
    source: str
    kind: str
    tid: str | None
    code: str | None
    detail: dict[str, Any]

    @property
    def operation(self) -> str:
        return str(self.detail.get("operation") or self.detail.get("kind") or "")


# Evidence is shown in China Standard Time, where the merchants and operators are.
CST = timezone(timedelta(hours=8), "CST")


def local(at: datetime) -> datetime:
    """``at`` in China time (a naive time is taken as UTC, as the store keeps it)."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(CST)


def stamp(at: datetime | None) -> str:
    return f"{local(at):%Y-%m-%d %H:%M:%S}+08" if at is not None else ""


def hm(at: datetime) -> str:
    """Hours and minutes in China time, for spans inside an evidence line."""
    return f"{local(at):%H:%M}"


@dataclass(frozen=True, slots=True)
class Line:
    """One piece of evidence: when, and what, in English (with codes) and Chinese."""

    at: datetime | None
    en: str
    zh: str

    def text(self, lang: str = "en") -> str:
        body = self.zh if lang == "zh" else self.en
        return f"{stamp(self.at)} {body}".strip()

    def both(self) -> str:
        return f"{stamp(self.at)} {self.en} / {self.zh}".strip()


def line(at: datetime | None, en: str, zh: str) -> Line:
    return Line(at, en, zh)


@dataclass(slots=True)
class Finding:
    """A cause the evidence points to, how sure, and the evidence used.

    `signals` name the observations the finding rests on (``comm.connect_timeout``,
    ``rc.96``...): the ranker lets a fleet-wide finding absorb a terminal finding whose
    signals it covers. `specificity` breaks ties (a precise registry match beats a
    generic code reading)."""

    cause: str
    confidence: float
    evidence: list[Line]
    symptoms: list[str] = field(default_factory=list)
    signals: frozenset[str] = frozenset()
    specificity: float = 0.5
    fleet: bool = False
    at: datetime | None = None
    collect: list[Line] = field(default_factory=list)
    resolved: bool = False
    """What it explains was put right since (the merchant signed in and paid): named when
    asked about the terminal, not counted as failing."""

    def latest(self) -> datetime | None:
        times = [ln.at for ln in self.evidence if ln.at is not None]
        return self.at or (max(times) if times else None)
