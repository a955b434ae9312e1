"""Terminal reports (heartbeat, self-check, log upload) into evidence.

Every report is validated with pydantic and written as ``Event`` rows exactly per the
evidence contract (docs/architecture.md): source ``terminal``, kinds ``heartbeat``
(code ``ok``/``degraded``), ``self_check`` (``ok``/``failed``) and ``terminal_event``
(code = the event's code). The latest heartbeat of each terminal is also kept in the
``telemetry`` table (``store.latest_heartbeats()``), and a heartbeat's ``app_version``
updates the registry's ``terminals.app_version`` when that column exists.
Timestamps are the terminal's clock (``at`` in the payload; naive times are taken as UTC);
without one, the TMS time ``now``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from posdoctor.store import Store
from posdoctor.store.models import Event, Terminal
from posdoctor.store.models_registry import HostChange
from posdoctor.store.models_tms import Telemetry

REPORT_KINDS = ("heartbeat", "self_check", "logs")
MAX_EVENTS_PER_UPLOAD = 1000


class ReportError(ValueError):
    """A report that does not validate; ``zh``/``en`` say which field and why."""

    def __init__(self, zh: str, en: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(f"{zh} / {en}")
        self.zh, self.en, self.errors = zh, en, errors or []


class _Report(BaseModel):
    model_config = ConfigDict(extra="allow")

    tid: str | None = Field(default=None, min_length=8, max_length=8)
    at: datetime | None = None


class Heartbeat(_Report):
    app_version: str | None = Field(default=None, max_length=32)
    firmware_version: str | None = Field(default=None, max_length=32)
    model: str | None = None
    serial: str | None = None
    peripherals: dict[str, str] = Field(default_factory=dict)
    battery_pct: int | None = Field(default=None, ge=0, le=100)
    power_source: Literal["mains", "battery"] | None = None
    voltage: float | None = None
    signal_dbm: int | None = Field(default=None, ge=-150, le=0)
    network: str | None = None
    error_counters: dict[str, int] = Field(default_factory=dict)
    last_errors: list[str] = Field(default_factory=list, max_length=100)
    comm: dict[str, Any] | None = None
    params_version: str | None = None
    installed_apps: list[str] = Field(default_factory=list)
    uptime_s: int | None = Field(default=None, ge=0)
    bt_paired: bool | None = None

    def code(self) -> str:
        return "ok" if all(value == "ok" for value in self.peripherals.values()) else "degraded"


class SelfCheck(_Report):
    peripherals: dict[str, str] = Field(default_factory=dict)
    params: Literal["ok", "unreadable", "inconsistent"] = "ok"
    keys: Literal["ok", "missing", "unreadable"] = "ok"

    def code(self) -> str:
        fine = self.params == "ok" and self.keys == "ok"
        return "ok" if fine and all(v == "ok" for v in self.peripherals.values()) else "failed"


class UploadedEvent(BaseModel):
    """One ``TerminalEvent.to_json()``."""

    model_config = ConfigDict(extra="ignore")

    at: datetime
    tid: str | None = None
    kind: str = Field(max_length=48)
    code: str = Field(max_length=32)
    message_zh: str = ""
    message_en: str = ""
    detail: dict[str, Any] = Field(default_factory=dict)


class LogUpload(_Report):
    events: list[UploadedEvent] = Field(max_length=MAX_EVENTS_PER_UPLOAD)


_MODELS: dict[str, type[_Report]] = {"heartbeat": Heartbeat, "self_check": SelfCheck, "logs": LogUpload}


@dataclass(frozen=True, slots=True)
class Report:
    """One report for ``record_reports``: a payload dict (or an already parsed model)."""

    tid: str
    kind: str
    payload: dict[str, Any] | BaseModel
    now: datetime


def _utc(value: datetime | None, default: datetime) -> datetime:
    if value is None:
        return default
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_report(kind: str, payload: dict[str, Any] | BaseModel) -> _Report:
    """The validated model of a payload, else :class:`ReportError` naming the field."""
    model = _MODELS.get(kind)
    if model is None:
        raise ReportError(f"未知的报告类型 {kind}", f"unknown report kind {kind}")
    if isinstance(payload, model):
        return payload
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or kind
        raise ReportError(f"{kind} 报告字段 {where} 无效: {first['msg']}",
                          f"invalid {kind} report field {where}: {first['msg']}",
                          exc.errors(include_url=False, include_context=False)) from None


def _detail(model: BaseModel, drop: tuple[str, ...]) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude=set(drop), exclude_none=False)


def _event_rows(tid: str, kind: str, report: _Report, now: datetime) -> list[dict[str, Any]]:
    at = _utc(report.at, now)
    if isinstance(report, Heartbeat):
        return [dict(at=at, source="terminal", kind="heartbeat", tid=tid, code=report.code(),
                     detail=_detail(report, ("tid", "at")))]
    if isinstance(report, SelfCheck):
        return [dict(at=at, source="terminal", kind="self_check", tid=tid, code=report.code(),
                     detail=_detail(report, ("tid", "at")))]
    assert isinstance(report, LogUpload)
    rows = []
    for event in report.events:
        when = _utc(event.at, now)
        detail = {**event.detail, "operation": event.kind, "zh": event.message_zh,
                  "en": event.message_en, "at": when.isoformat()}
        rows.append(dict(at=when, source="terminal", kind="terminal_event", tid=tid,
                         code=event.code, detail=detail))
    return rows


def _telemetry_row(tid: str, beat: Heartbeat, now: datetime) -> dict[str, Any]:
    return dict(tid=tid, at=_utc(beat.at, now), received_at=now, code=beat.code(),
                app_version=beat.app_version, firmware_version=beat.firmware_version,
                detail=_detail(beat, ("tid", "at")))


def _upsert_telemetry(session: Session, rows: list[dict[str, Any]]) -> None:
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(Telemetry.__table__)
    columns = ("at", "received_at", "code", "app_version", "firmware_version", "detail")
    statement = statement.on_conflict_do_update(
        index_elements=["tid"], set_={name: statement.excluded[name] for name in columns})
    session.connection().execute(statement, rows)


def _update_app_versions(session: Session, versions: dict[str, str], now: datetime) -> None:
    """Store reported app versions that differ from the registry's, and tell running hosts
    (change feed ``registry``) so that their cached profile (min_app_version checks)
    sees the new version at once."""
    table = Terminal.__table__
    connection = session.connection()
    tids = sorted(versions)
    changed: list[str] = []
    for index in range(0, len(tids), 500):
        chunk = tids[index:index + 500]
        for tid, stored in connection.execute(select(table.c.tid, table.c.app_version).where(table.c.tid.in_(chunk))):
            if stored != versions[tid]:
                changed.append(tid)
    if not changed:
        return
    connection.execute(update(table).where(table.c.tid == bindparam("b_tid"))
                       .values(app_version=bindparam("b_version")),
                       [{"b_tid": tid, "b_version": versions[tid]} for tid in changed])
    connection.execute(insert(HostChange), [dict(at=now, kind="registry", tid=tid, value="app_version")
                                            for tid in changed])


def write_reports(session: Session, reports: Sequence[tuple[str, str, _Report, datetime]]) -> int:
    """Write parsed reports in the caller's transaction; returns the number of events."""
    events: list[dict[str, Any]] = []
    latest: dict[str, dict[str, Any]] = {}
    versions: dict[str, str] = {}
    for tid, kind, report, now in reports:
        events.extend(_event_rows(tid, kind, report, now))
        if isinstance(report, Heartbeat):
            latest[tid] = _telemetry_row(tid, report, now)  # received last wins (clocks lie)
            if report.app_version:
                versions[tid] = report.app_version
    if events:
        session.connection().execute(insert(Event.__table__), events)
    if latest:
        _upsert_telemetry(session, list(latest.values()))
    if versions:
        _update_app_versions(session, versions, reports[-1][3])
    return len(events)


def record_report(store: Store, tid: str, kind: str, payload: dict[str, Any] | BaseModel,
                  now: datetime) -> int:
    """Validate and store one report of ``tid`` (``heartbeat``, ``self_check`` or
    ``logs``); returns how many events were written."""
    return record_reports(store, [Report(tid, kind, payload, now)])


def record_reports(store: Store, reports: Sequence[Report]) -> int:
    """Many reports (the simulator's batches) in ONE transaction; all validated first,
    so a bad one writes nothing."""
    parsed = [(r.tid, r.kind, parse_report(r.kind, r.payload), r.now) for r in reports]
    with store.tms_write() as session:
        return write_reports(session, parsed)
