"""The terminal side of campaigns: upgrade checks and upgrade reports.

``find_upgrade`` is one indexed lookup (the terminal's newest target in a running or
rolled-back campaign). ``upgrade_check`` turns it into the offer of the TMS API;
``apply_upgrade_reports`` moves target states and campaign counters and writes one
``Event(source="tms", kind="upgrade_report")`` per report, then lets the campaign
progress (halt / next wave / complete).

Report step -> target state (targets already succeeded/failed/rolled_back keep their
state unless said otherwise):

- ``check`` -> offered; ``postpone`` -> postponed; ``download`` (ok or not: the agent
  retries) -> downloading; ``verify``/``install``/``reboot``/``self_check``/``sign_in``
  ok -> installing, failed -> failed; ``refused`` -> failed;
- ``commit`` ok -> succeeded (also from failed), failed -> failed;
- ``rollback`` ok: in a rolled-back campaign -> rolled_back; otherwise the agent went
  back by itself after a bad install -> failed. A failed rollback changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from posdoctor.store import Store
from posdoctor.store.models import Event
from posdoctor.store.models_tms import Campaign, CampaignTarget, FirmwarePackage
from posdoctor.tms.campaigns import FINAL_TARGET_STATES, check_progress
from posdoctor.tms.firmware import package_info
from posdoctor.tms.reports import ReportError

STEPS = ("check", "download", "verify", "install", "reboot", "self_check", "sign_in", "commit",
         "rollback", "postpone", "refused")
_COUNTER = {"succeeded": "succeeded", "failed": "failed", "rolled_back": "rolled_back"}
_INSTALL_STEPS = ("verify", "install", "reboot", "self_check", "sign_in")


class UpgradeReport(BaseModel):
    model_config = ConfigDict(extra="ignore")

    campaign: int | None = None
    step: Literal[STEPS]  # type: ignore[valid-type]
    ok: bool
    from_version: str | None = Field(default=None, max_length=32)
    to_version: str | None = Field(default=None, max_length=32)
    reason: str | None = Field(default=None, max_length=200)
    attempt: int = Field(default=1, ge=0)
    at: datetime | None = None


def parse_upgrade_report(payload: dict[str, Any] | UpgradeReport) -> UpgradeReport:
    if isinstance(payload, UpgradeReport):
        return payload
    try:
        return UpgradeReport.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "report"
        raise ReportError(f"升级报告字段 {where} 无效: {first['msg']}",
                          f"invalid upgrade report field {where}: {first['msg']}",
                          exc.errors(include_url=False, include_context=False)) from None


# --- upgrade check -----------------------------------------------------------------------
_T, _C = CampaignTarget.__table__, Campaign.__table__
_LOOKUP = (
    select(_T.c.id, _T.c.tid, _T.c.wave, _T.c.state, _T.c.stagger, _T.c.from_version,
           _C.c.id.label("campaign_id"), _C.c.state.label("campaign_state"), _C.c.version,
           _C.c.wave.label("campaign_wave"), _C.c.window_start, _C.c.window_end,
           _C.c.stagger_minutes, _C.c.wave_opened_at, _C.c.started_at)
    .join(_C, _C.c.id == _T.c.campaign_id)
    .where(_C.c.state.in_(("running", "rolled_back")))
    .order_by(_T.c.campaign_id.desc()).limit(1)
)


@dataclass
class Pending:
    row: Any  # the target joined with its campaign (``_LOOKUP``'s columns)
    package: FirmwarePackage
    action: Literal["upgrade", "rollback", "adopt"]


def _decide(store: Store, row: Any, version: str | None, model: str | None) -> Pending | None:
    package = store.cached_package(row.version)
    if row.campaign_state == "rolled_back":
        if version == row.version and row.state != "rolled_back":
            return Pending(row, package, "rollback")
        return None
    if row.wave > row.campaign_wave or row.state in FINAL_TARGET_STATES:
        return None
    if version is not None and version == row.version:
        return Pending(row, package, "adopt")  # it runs the new version already
    if model is not None and model not in package.models:
        return None
    return Pending(row, package, "upgrade")


def find_upgrade(store: Store, tid: str, version: str | None, model: str | None) -> Pending | None:
    """What the terminal should do now, if anything: one indexed read, no writes."""
    with store.tms_connection() as connection:
        row = connection.execute(_LOOKUP.where(_T.c.tid == tid)).first()
    return None if row is None else _decide(store, row, version, model)


def _not_before(row: Any) -> datetime:
    opened = row.wave_opened_at or row.started_at
    return opened + timedelta(minutes=row.stagger_minutes * row.stagger)


def _answer(store: Store, pending: Pending) -> dict[str, Any]:
    row = pending.row
    if pending.action == "rollback":
        previous = store.find_package(row.from_version) if row.from_version else None
        return {"campaign": row.campaign_id, "action": "rollback", "to_version": row.from_version,
                "package": package_info(previous) if previous else None}
    return {"campaign": row.campaign_id, "action": "upgrade", "package": package_info(pending.package),
            "window": {"start": row.window_start, "end": row.window_end},
            "not_before": _not_before(row).isoformat()}


_MARK_OFFERED = update(_T).where(_T.c.id == bindparam("b_id"), _T.c.state == "pending").values(
    state="offered", last_step="check", updated_at=bindparam("b_at"))


def _settle(store: Store, decided: list[tuple[str, str | None, Pending | None]],
            now: datetime) -> list[dict[str, Any] | None]:
    """Answers for decided checks; marks new offers and adopts terminals already upgraded."""
    offered = [p.row.id for _tid, _v, p in decided if p and p.action == "upgrade" and p.row.state == "pending"]
    adopted = [(tid, UpgradeReport(campaign=p.row.campaign_id, step="commit", ok=True, to_version=version,
                                   from_version=p.row.from_version, reason="version reported by upgrade check"), now)
               for tid, version, p in decided if p and p.action == "adopt"]
    if offered:
        with store.tms_write() as session:
            session.connection().execute(_MARK_OFFERED, [{"b_id": i, "b_at": now} for i in offered])
    if adopted:
        apply_upgrade_reports(store, adopted)
    return [None if p is None or p.action == "adopt" else _answer(store, p) for _tid, _v, p in decided]


def upgrade_check(store: Store, tid: str, version: str | None, model: str | None,
                  now: datetime) -> dict[str, Any] | None:
    """The TMS API's upgrade answer for ``tid`` (None = nothing to do, HTTP 204)."""
    return _settle(store, [(tid, version, find_upgrade(store, tid, version, model))], now)[0]


def upgrade_checks(store: Store, checks: Sequence[tuple[str, str | None, str | None]],
                   now: datetime) -> list[dict[str, Any] | None]:
    """Many ``(tid, version, model)`` checks at once (the simulator's path): chunked reads,
    one write for the new offers. Answers in the order given."""
    rows: dict[str, Any] = {}
    tids = sorted({tid for tid, _version, _model in checks})
    query = _LOOKUP.limit(None).order_by(None)
    with store.tms_connection() as connection:
        for index in range(0, len(tids), _CHUNK):
            for row in connection.execute(query.where(_T.c.tid.in_(tids[index:index + _CHUNK]))):
                if row.tid not in rows or row.campaign_id > rows[row.tid].campaign_id:
                    rows[row.tid] = row
    decided = [(tid, version, _decide(store, rows[tid], version, model) if tid in rows else None)
               for tid, version, model in checks]
    return _settle(store, decided, now)


def has_upgrade(store: Store, tid: str, version: str | None, model: str | None) -> bool:
    return find_upgrade(store, tid, version, model) is not None


# --- reports -----------------------------------------------------------------------------
def next_target_state(current: str, step: str, ok: bool, campaign_state: str) -> str:
    final = current in FINAL_TARGET_STATES
    if step == "commit":
        if ok:
            return current if current == "rolled_back" else "succeeded"
        return current if final else "failed"
    if step == "rollback":
        if not ok:
            return current
        if campaign_state == "rolled_back":
            return "rolled_back" if current != "failed" else current
        return "failed" if current != "rolled_back" else current
    if final:
        return current
    if step == "check":
        return "offered" if current in ("pending", "postponed") else current
    if step == "postpone":
        return "postponed"
    if step == "download":
        return "downloading"
    if step in _INSTALL_STEPS:
        return "installing" if ok else "failed"
    if step == "refused":
        return "failed"
    return current


def _count(campaign: Campaign, wave: int, old: str, new: str) -> None:
    for state, delta in ((old, -1), (new, 1)):
        if state not in FINAL_TARGET_STATES:
            continue
        counter = _COUNTER[state]
        setattr(campaign, counter, getattr(campaign, counter) + delta)
        if wave == campaign.wave:
            campaign.wave_done += delta
            if state == "failed":
                campaign.wave_failed += delta


_TARGETS = (select(_T.c.id, _T.c.campaign_id, _T.c.tid, _T.c.state, _T.c.wave, _T.c.attempts,
                   _T.c.reason, _C.c.state.label("campaign_state"))
            .join(_C, _C.c.id == _T.c.campaign_id))
_SAVE_TARGET = update(_T).where(_T.c.id == bindparam("b_id")).values(
    state=bindparam("b_state"), last_step=bindparam("b_step"), updated_at=bindparam("b_at"),
    attempts=bindparam("b_attempts"), reason=bindparam("b_reason"))
_CHUNK = 500


def _load_targets(session: Session, keys: set[tuple[int, str]]) -> dict[tuple[int, str], dict[str, Any]]:
    """The targets named by (campaign, tid) keys, as mutable dicts (chunked IN queries)."""
    found: dict[tuple[int, str], dict[str, Any]] = {}
    campaign_ids = {campaign for campaign, _tid in keys}
    tids = sorted({tid for _campaign, tid in keys})
    for index in range(0, len(tids), _CHUNK):
        query = _TARGETS.where(_T.c.campaign_id.in_(campaign_ids), _T.c.tid.in_(tids[index:index + _CHUNK]))
        for row in session.connection().execute(query):
            if (row.campaign_id, row.tid) in keys:
                found[(row.campaign_id, row.tid)] = dict(row._mapping)
    return found


def _apply(session: Session, parsed: list[tuple[str, UpgradeReport, datetime]]) -> None:
    """Move targets in memory report by report, save them with one executemany, move the
    counters of campaigns whose targets entered or left a final state, then let those
    campaigns progress (halt / next wave / complete) once, at the end of the batch."""
    keys = {(report.campaign, tid) for tid, report, _now in parsed if report.campaign is not None}
    targets = _load_targets(session, keys) if keys else {}
    changed: dict[int, dict[str, Any]] = {}
    counts: list[tuple[int, int, str, str]] = []  # campaign, wave, old, new
    latest = {}
    for tid, report, now in parsed:
        target = targets.get((report.campaign, tid)) if report.campaign is not None else None
        if target is None:
            continue
        old = target["state"]
        new = next_target_state(old, report.step, report.ok, target["campaign_state"])
        target.update(state=new, last_step=report.step, updated_at=now,
                      attempts=max(target["attempts"], report.attempt))
        if report.reason or not report.ok:
            target["reason"] = (report.reason or report.step)[:200]
        changed[target["id"]] = target
        latest[target["campaign_id"]] = now
        if new != old and (old in FINAL_TARGET_STATES or new in FINAL_TARGET_STATES):
            counts.append((target["campaign_id"], target["wave"], old, new))
    if changed:
        session.connection().execute(_SAVE_TARGET, [
            {"b_id": t["id"], "b_state": t["state"], "b_step": t["last_step"], "b_at": t["updated_at"],
             "b_attempts": t["attempts"], "b_reason": t["reason"]} for t in changed.values()])
    campaigns: dict[int, Campaign] = {}
    for campaign_id, wave, old, new in counts:
        campaign = campaigns.get(campaign_id)
        if campaign is None:
            campaign = session.scalar(select(Campaign).where(Campaign.id == campaign_id).with_for_update())
            assert campaign is not None
            campaigns[campaign_id] = campaign
        _count(campaign, wave, old, new)
    for campaign in campaigns.values():
        check_progress(session, campaign, latest[campaign.id])


def _report_event(tid: str, report: UpgradeReport, now: datetime) -> dict[str, Any]:
    at = now if report.at is None else (
        report.at.replace(tzinfo=UTC) if report.at.tzinfo is None else report.at)
    return dict(at=at, source="tms", kind="upgrade_report", tid=tid, code=report.step,
                detail={"campaign": report.campaign, "from_version": report.from_version,
                        "to_version": report.to_version, "ok": report.ok,
                        "reason": report.reason, "attempt": report.attempt})


def apply_upgrade_reports(store: Store, reports: Sequence[tuple[str, UpgradeReport | dict[str, Any], datetime]],
                          *, record: bool = True) -> int:
    """Apply ``(tid, report, now)`` triples in ONE transaction (all validated first);
    reports of the same terminal are applied in the given order."""
    parsed = [(tid, parse_upgrade_report(report), now) for tid, report, now in reports]
    with store.tms_write() as session:
        _apply(session, parsed)
        if record and parsed:
            session.connection().execute(insert(Event.__table__),
                                         [_report_event(tid, report, now) for tid, report, now in parsed])
    return len(parsed)
