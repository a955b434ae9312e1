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
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from posdoctor.store import Store
from posdoctor.store.models import Event
from posdoctor.store.models_tms import Campaign, CampaignTarget, FirmwarePackage
from posdoctor.tms.campaigns import FINAL_TARGET_STATES, check_progress, not_before
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
@dataclass
class Pending:
    campaign: Campaign
    target: CampaignTarget
    package: FirmwarePackage
    action: Literal["upgrade", "rollback", "adopt"]


def find_upgrade(session: Session, tid: str, version: str | None, model: str | None) -> Pending | None:
    """What the terminal should do now, if anything (no writes)."""
    found = session.execute(
        select(CampaignTarget, Campaign).join(Campaign, Campaign.id == CampaignTarget.campaign_id)
        .where(CampaignTarget.tid == tid, Campaign.state.in_(("running", "rolled_back")))
        .order_by(CampaignTarget.campaign_id.desc()).limit(1)).first()
    if found is None:
        return None
    target, campaign = found
    package = session.get(FirmwarePackage, campaign.version)
    assert package is not None
    if campaign.state == "rolled_back":
        if version == campaign.version and target.state != "rolled_back":
            return Pending(campaign, target, package, "rollback")
        return None
    if target.wave > campaign.wave or target.state in FINAL_TARGET_STATES:
        return None
    if version is not None and version == campaign.version:
        return Pending(campaign, target, package, "adopt")  # it runs the new version already
    if model is not None and model not in package.models:
        return None
    return Pending(campaign, target, package, "upgrade")


def upgrade_check(store: Store, tid: str, version: str | None, model: str | None,
                  now: datetime) -> dict[str, Any] | None:
    """The TMS API's upgrade answer for ``tid`` (None = nothing to do, HTTP 204)."""
    with store.tms_read() as session:
        pending = find_upgrade(session, tid, version, model)
    if pending is None:
        return None
    campaign, target = pending.campaign, pending.target
    if pending.action == "adopt":
        report = UpgradeReport(campaign=campaign.id, step="commit", ok=True, to_version=version,
                               from_version=target.from_version, reason="version reported by upgrade check")
        apply_upgrade_reports(store, [(tid, report, now)])
        return None
    if pending.action == "rollback":
        previous = store.find_package(target.from_version) if target.from_version else None
        return {"campaign": campaign.id, "action": "rollback", "to_version": target.from_version,
                "package": package_info(previous) if previous else None}
    if target.state == "pending":
        apply_upgrade_reports(store, [(tid, UpgradeReport(
            campaign=campaign.id, step="check", ok=True, from_version=version,
            to_version=campaign.version, reason="offered"), now)], record=False)
    return {"campaign": campaign.id, "action": "upgrade", "package": package_info(pending.package),
            "window": {"start": campaign.window_start, "end": campaign.window_end},
            "not_before": not_before(campaign, target).isoformat()}


def has_upgrade(store: Store, tid: str, version: str | None, model: str | None) -> bool:
    with store.tms_read() as session:
        return find_upgrade(session, tid, version, model) is not None


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


def _count(campaign: Campaign, target: CampaignTarget, old: str, new: str) -> None:
    for state, delta in ((old, -1), (new, 1)):
        if state not in FINAL_TARGET_STATES:
            continue
        counter = _COUNTER[state]
        setattr(campaign, counter, getattr(campaign, counter) + delta)
        if target.wave == campaign.wave:
            campaign.wave_done += delta
            if state == "failed":
                campaign.wave_failed += delta


def _apply_one(session: Session, tid: str, report: UpgradeReport, now: datetime,
               campaigns: dict[int, Campaign]) -> None:
    if report.campaign is None:
        return
    campaign = campaigns.get(report.campaign)
    if campaign is None:
        campaign = session.scalar(
            select(Campaign).where(Campaign.id == report.campaign).with_for_update())
        if campaign is None:
            return
        campaigns[campaign.id] = campaign
    target = session.scalar(select(CampaignTarget).where(
        CampaignTarget.campaign_id == campaign.id, CampaignTarget.tid == tid))
    if target is None:
        return
    old = target.state
    new = next_target_state(old, report.step, report.ok, campaign.state)
    target.last_step, target.updated_at = report.step, now
    target.attempts = max(target.attempts, report.attempt)
    if report.reason or not report.ok:
        target.reason = (report.reason or report.step)[:200]
    if new != old:
        target.state = new
        _count(campaign, target, old, new)
        check_progress(session, campaign, now)


def _report_event(tid: str, report: UpgradeReport, now: datetime) -> Event:
    at = now if report.at is None else (
        report.at.replace(tzinfo=UTC) if report.at.tzinfo is None else report.at)
    return Event(at=at, source="tms", kind="upgrade_report", tid=tid, code=report.step,
                 detail={"campaign": report.campaign, "from_version": report.from_version,
                         "to_version": report.to_version, "ok": report.ok,
                         "reason": report.reason, "attempt": report.attempt})


def apply_upgrade_reports(store: Store, reports: Sequence[tuple[str, UpgradeReport | dict[str, Any], datetime]],
                          *, record: bool = True) -> int:
    """Apply ``(tid, report, now)`` triples in ONE transaction (validated first)."""
    parsed = [(tid, parse_upgrade_report(report), now) for tid, report, now in reports]
    campaigns: dict[int, Campaign] = {}
    with store.tms_write() as session:
        for tid, report, now in parsed:
            if record:
                session.add(_report_event(tid, report, now))
            _apply_one(session, tid, report, now, campaigns)
    return len(parsed)
