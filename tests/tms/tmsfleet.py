"""Helpers of the TMS tests: a fake clock and a small registered fleet."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from posdoctor.store import Store
from posdoctor.tms.firmware import add_package, build_package
from posdoctor.tms.reports import Report, record_reports

MID = "898100000000001"
MID2 = "898100000000002"
START = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Fleet:
    store: Store
    home: Path
    tids: list[str] = field(default_factory=list)

    def add(self, count: int, *, model: str = "P1", version: str = "1.0.0", mid: str = MID,
            first: int = 0) -> list[str]:
        tids = [f"{10000000 + first + i:08d}" for i in range(count)]
        for tid in tids:
            self.store.add_terminal(tid, mid, f"SN{tid}", model=model)
        record_reports(self.store, [Report(tid, "heartbeat", {"app_version": version, "model": model},
                                           START) for tid in tids])
        self.tids.extend(tids)
        return tids

    def package(self, version: str = "2.0.0", models: tuple[str, ...] = ("P1",), **options: object):
        return add_package(self.store, self.home, build_package(version, list(models), **options),
                           version=version)
