"""The simulator's report sink: a batch the database turns away is tried again, not lost."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from posdoctor.sim import reports
from posdoctor.sim.reports import ReportSink

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


class FlakyRecorder:
    """`record_reports` stand-in: refuses the first `fail` calls the way SQLite does."""

    def __init__(self, fail: int, error: Exception | None = None) -> None:
        self.fail, self.calls, self.kept = fail, 0, []  # type: ignore[var-annotated]
        self.error = error or OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))

    def __call__(self, store: Any, batch: list[Any]) -> int:
        self.calls += 1
        if self.calls <= self.fail:
            raise self.error
        self.kept.extend(batch)
        return len(batch)


def _sink(recorder: FlakyRecorder) -> ReportSink:
    sink = ReportSink(store=None, now=lambda: NOW)  # type: ignore[arg-type]
    sink._record = recorder  # type: ignore[assignment]
    return sink


async def _fill(sink: ReportSink, n: int) -> None:
    for k in range(n):
        sink.add(f"{10000001 + k:08d}", "heartbeat", {"k": k})
    await sink.drain()


@pytest.fixture(autouse=True)
def _no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reports, "RETRY_PAUSE_S", 0.0)


def test_a_locked_database_delays_reports_but_loses_none() -> None:
    recorder = FlakyRecorder(fail=reports.RETRIES - 1)
    sink = _sink(recorder)
    asyncio.run(_fill(sink, 1200))
    assert [r.payload["k"] for r in recorder.kept] == list(range(1200))  # each once, in order
    assert (sink.written, sink.errors, sink.retries) == (1200, 0, reports.RETRIES - 1)


def test_a_batch_is_dropped_and_counted_only_after_every_attempt() -> None:
    recorder = FlakyRecorder(fail=reports.RETRIES)
    sink = _sink(recorder)
    asyncio.run(_fill(sink, 10))
    assert (sink.written, sink.errors, sink.retries) == (0, 10, reports.RETRIES - 1)
    assert recorder.kept == []


def test_reports_the_tms_refuses_are_not_retried() -> None:
    recorder = FlakyRecorder(fail=1, error=ValueError("bad report"))
    sink = _sink(recorder)
    asyncio.run(_fill(sink, 10))
    assert (sink.written, sink.errors, sink.retries, recorder.calls) == (0, 10, 0, 1)
