"""Terminal reports reaching the TMS in the simulated world.

Each terminal talks to the TMS through a `SimTmsClient` (the `TmsClient` protocol of
`posdoctor.terminal.tmsclient`): when the terminal has power and a network link the
report is accepted, else the call fails as it would on the street (`TmsUnreachable`)
and the terminal keeps its logs for later. Accepted reports are written in bulk by the
`ReportSink` through the TMS's own `posdoctor.tms.reports.record_reports` (the same code
the HTTP handlers use), in the background, so 10,000 terminals do not wait on the
database. Upgrade offers and downloads go to the in-process `TmsService` when the TMS
has one (`LocalTmsClient`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.exc import OperationalError

from posdoctor.store import Store

log = logging.getLogger(__name__)

__all__ = ["ReportSink", "SimTmsClient"]

FLUSH_EVERY = 500
RETRIES = 5
"""Attempts at a batch the database turned away for a while (locked, connection lost)."""
RETRY_PAUSE_S = 0.5


class ReportSink:
    """Buffers reports and writes them in one transaction per batch (a writer task)."""

    def __init__(self, store: Store, now: Callable[[], datetime]) -> None:
        from posdoctor.tms.reports import Report, record_reports  # the TMS's report writer

        self._report = Report
        self._record = record_reports
        self.store = store
        self.now = now
        self.buffer: list[Any] = []
        self.written = 0
        self.reports = 0
        self.errors = 0
        self.retries = 0
        self._flushing: asyncio.Task[None] | None = None

    def add(self, tid: str, kind: str, payload: dict[str, Any]) -> None:
        self.buffer.append(self._report(tid, kind, payload, self.now()))
        self.reports += 1
        if len(self.buffer) >= FLUSH_EVERY and (self._flushing is None or self._flushing.done()):
            self._flushing = asyncio.get_running_loop().create_task(self._flush_in_thread())

    async def _flush_in_thread(self) -> None:
        failed = 0
        while self.buffer:
            batch, self.buffer = self.buffer, []
            try:
                self.written += await asyncio.to_thread(self._record, self.store, batch)
                failed = 0
            except OperationalError:  # the database, not the reports: try the batch again
                failed += 1
                if failed >= RETRIES:
                    log.exception("writing %d terminal reports failed %d times; dropped", len(batch), failed)
                    self.errors += len(batch)
                    failed = 0
                    continue
                log.warning("writing %d terminal reports failed (attempt %d of %d); retrying",
                            len(batch), failed, RETRIES, exc_info=True)
                self.retries += 1
                self.buffer = batch + self.buffer
                await asyncio.sleep(RETRY_PAUSE_S * 2 ** (failed - 1))
            except Exception:  # a report the TMS refuses: count it, keep the day going
                log.exception("writing %d terminal reports failed", len(batch))
                self.errors += len(batch)

    async def drain(self) -> None:
        if self._flushing is not None:
            await self._flushing
        await self._flush_in_thread()


class SimTmsClient:
    """One terminal's way to the TMS, subject to its power and network link."""

    __slots__ = ("sink", "term", "service_client")

    def __init__(self, sink: ReportSink, term: Any, service_client: Any = None) -> None:
        self.sink = sink
        self.term = term
        self.service_client = service_client

    def _reachable(self) -> None:
        from posdoctor.terminal.tmsclient import TmsUnreachable

        term = self.term
        if not term.powered or not term.tms_online:
            raise TmsUnreachable("no network link to the TMS")

    async def aclose(self) -> None:
        return None

    async def heartbeat(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._reachable()
        payload = {**payload, "at": self.term.app.clock().isoformat()}
        self.sink.add(self.term.tid, "heartbeat", payload)
        if self.service_client is not None and hasattr(self.service_client, "heartbeat_answer"):
            return await self.service_client.heartbeat_answer(payload)
        return {"server_time": self.sink.now().isoformat(), "upgrade": False}

    async def upload_status(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._reachable()
        self.sink.add(self.term.tid, "self_check", {**payload, "at": self.term.app.clock().isoformat()})
        return {"accepted": 1}

    async def upload_logs(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        self._reachable()
        self.sink.add(self.term.tid, "logs", {"events": events})
        return {"accepted": len(events)}

    async def check_upgrade(self, version: str, model: str) -> dict[str, Any] | None:
        self._reachable()
        if self.service_client is None:
            return None
        return await self.service_client.check_upgrade(version, model)

    async def download(self, package: dict[str, Any], start: int, end: int) -> bytes:
        self._reachable()
        return await self.service_client.download(package, start, end)

    async def report_upgrade(self, report: dict[str, Any]) -> dict[str, Any]:
        self._reachable()
        return await self.service_client.report_upgrade(report)
