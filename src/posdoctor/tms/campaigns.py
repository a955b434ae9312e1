"""Upgrade campaigns: targets, waves, window, stagger, automatic halt, resume, cancel, rollback.

A campaign offers one package to the terminals it selects (models, merchants, versions,
explicit TIDs). ``start_campaign`` writes one ``CampaignTarget`` per terminal (bulk) and
splits them into two waves: a canary (``canary_pct`` percent, at least one terminal) and
the rest. Only targets of the open wave are offered. Each target gets a stable stagger
fraction: its ``not_before`` is the wave's opening time plus that fraction of
``stagger_minutes``. Counters live on the campaign row and move with each report
(``campaign_reports``); when a wave's failure rate exceeds ``threshold`` once
``min(min_sample, wave size)`` of its targets have finished, the campaign halts. Every
state change is an ``Event(source="tms", kind="campaign_state")``.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from posdoctor.store import InvalidValue, NotFound, Store
from posdoctor.store.models import Event, Terminal, utcnow
from posdoctor.store.models_tms import Campaign, CampaignTarget, FirmwarePackage, Telemetry

STATES = ("draft", "running", "paused", "halted", "completed", "cancelled", "rolled_back")
TARGET_STATES = ("pending", "offered", "downloading", "installing", "succeeded", "failed",
                 "rolled_back", "postponed")
FINAL_TARGET_STATES = ("succeeded", "failed", "rolled_back")
LIVE_STATES = ("running", "paused", "halted")  # a terminal belongs to one live campaign
TRANSITIONS = {
    "start": (("draft",), "running"),
    "halt": (("running",), "halted"),
    "pause": (("running",), "paused"),
    "resume": (("halted", "paused"), "running"),
    "cancel": (("draft", "running", "paused", "halted"), "cancelled"),
    "rollback": (("running", "paused", "halted", "completed", "cancelled"), "rolled_back"),
}
STATE_ZH = {"draft": "草稿", "running": "进行中", "paused": "已暂停", "halted": "已熔断",
            "completed": "已完成", "cancelled": "已取消", "rolled_back": "已回滚"}
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class CampaignSettings:
    canary_pct: float = 10.0
    threshold: float = 0.2
    min_sample: int = 5
    window: str = "00:00-23:59"
    stagger_minutes: int = 30

    def check(self) -> None:
        if not 0 <= self.canary_pct <= 100:
            raise InvalidValue("canary", "金丝雀比例应在 0-100 之间", "canary percentage must be 0-100")
        if not 0 <= self.threshold <= 1:
            raise InvalidValue("threshold", "失败率阈值应在 0-1 之间", "failure threshold must be 0-1")
        if self.min_sample < 1:
            raise InvalidValue("min_sample", "最小样本数至少为 1", "minimum sample must be at least 1")
        if self.stagger_minutes < 0:
            raise InvalidValue("stagger", "错峰分钟数不能为负", "stagger minutes cannot be negative")
        parse_window(self.window)


def parse_window(window: str) -> tuple[str, str]:
    """``"HH:MM-HH:MM"`` (terminal local time; end before start spans midnight)."""
    if not _WINDOW.match(window or ""):
        raise InvalidValue("window", f"维护窗口 {window!r} 无效(格式 HH:MM-HH:MM)",
                           f"maintenance window {window!r} is invalid (expected HH:MM-HH:MM)")
    start, end = window.split("-")
    return start, end


def in_window(start: str, end: str, local: time | datetime) -> bool:
    """Whether the terminal's local time falls in the window (inclusive, minute precision)."""
    now = (local.time() if isinstance(local, datetime) else local).strftime("%H:%M")
    return start <= now <= end if start <= end else (now >= start or now <= end)


def _fraction(*parts: object) -> float:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# --- events and state changes ----------------------------------------------------------
def state_event(campaign: Campaign, old: str | None, new: str, reason: str | None,
                now: datetime) -> Event:
    return Event(at=now, source="tms", kind="campaign_state", tid=None, code=new,
                 detail={"campaign": campaign.id, "old": old, "new": new, "reason": reason})


def set_state(session: Session, campaign: Campaign, new: str, reason: str | None,
              now: datetime) -> None:
    old = campaign.state
    campaign.state, campaign.state_reason = new, reason
    if new in ("completed", "cancelled", "rolled_back"):
        campaign.finished_at = now
    session.add(state_event(campaign, old, new, reason, now))


def _locked_campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.scalar(select(Campaign).where(Campaign.id == campaign_id).with_for_update())
    if campaign is None:
        raise NotFound("campaign", str(campaign_id))
    return campaign


def _check_transition(campaign: Campaign, action: str) -> str:
    allowed, new = TRANSITIONS[action]
    if campaign.state not in allowed:
        zh_state = STATE_ZH.get(campaign.state, campaign.state)
        raise InvalidValue("state", f"活动 {campaign.id} 当前{zh_state},不能执行 {action}",
                           f"campaign {campaign.id} is {campaign.state}; cannot {action}")
    return new


# --- creating and starting -------------------------------------------------------------
def create_campaign(store: Store, name: str, version: str, *, models: Sequence[str] = (),
                    mids: Sequence[str] = (), tids: Sequence[str] = (),
                    from_versions: Sequence[str] = (), settings: CampaignSettings | None = None,
                    now: datetime | None = None) -> Campaign:
    """A draft campaign for package ``version``."""
    settings = settings or CampaignSettings()
    settings.check()
    if not name.strip():
        raise InvalidValue("name", "活动名称不能为空", "campaign name cannot be empty")
    store.get_package(version)  # NotFound for an unknown package
    start, end = parse_window(settings.window)
    at = now or utcnow()
    with store.tms_write() as session:
        campaign = Campaign(
            name=name, version=version, state="draft", created_at=at,
            selection={"models": list(models), "mids": list(mids), "tids": list(tids),
                       "from_versions": list(from_versions)},
            canary_pct=settings.canary_pct, threshold=settings.threshold,
            min_sample=settings.min_sample, window_start=start, window_end=end,
            stagger_minutes=settings.stagger_minutes, wave=0, wave_size=0, wave_done=0,
            wave_failed=0, halt_base_done=0, halt_base_failed=0, targeted=0, succeeded=0,
            failed=0, rolled_back=0)
        session.add(campaign)
        session.flush()
        session.add(state_event(campaign, None, "draft", "created", at))
    return campaign


def _terminal_versions(session: Session) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    column = Terminal.__table__.c.get("app_version")
    if column is not None:
        versions.update(session.execute(select(Terminal.tid, column)).all())
    for tid, version in session.execute(select(Telemetry.tid, Telemetry.app_version)):
        if version:
            versions[tid] = version
    return versions


def select_targets(session: Session, campaign: Campaign,
                   package: FirmwarePackage) -> list[tuple[str, str | None]]:
    """(tid, current version) of the terminals the campaign applies to."""
    selection = campaign.selection
    query = select(Terminal.tid, Terminal.mid, Terminal.model)
    if selection.get("tids"):
        query = query.where(Terminal.tid.in_(selection["tids"]))
    if selection.get("mids"):
        query = query.where(Terminal.mid.in_(selection["mids"]))
    models = set(selection.get("models") or package.models)
    from_versions = set(selection.get("from_versions") or package.from_versions)
    busy = set(session.scalars(
        select(CampaignTarget.tid).join(Campaign, Campaign.id == CampaignTarget.campaign_id)
        .where(Campaign.state.in_(LIVE_STATES),
               CampaignTarget.state.not_in(FINAL_TARGET_STATES))))
    versions = _terminal_versions(session)
    chosen = []
    for tid, _mid, model in session.execute(query.order_by(Terminal.tid)):
        version = versions.get(tid)
        if model not in models or tid in busy or version == package.version:
            continue
        if from_versions and version not in from_versions:
            continue
        chosen.append((tid, version))
    return chosen


def _target_rows(campaign: Campaign, chosen: list[tuple[str, str | None]],
                 now: datetime) -> list[dict[str, Any]]:
    ordered = sorted(chosen, key=lambda item: _fraction("wave", campaign.id, item[0]))
    canary = len(ordered) if campaign.canary_pct <= 0 else \
        max(1, math.ceil(len(ordered) * campaign.canary_pct / 100))
    return [dict(campaign_id=campaign.id, tid=tid, wave=1 if index < canary else 2,
                 stagger=_fraction("stagger", campaign.id, tid), state="pending",
                 from_version=version, attempts=0, updated_at=now)
            for index, (tid, version) in enumerate(ordered)]


def start_campaign(store: Store, campaign_id: int, now: datetime | None = None) -> Campaign:
    """Select the targets, write them, open the canary wave."""
    at = now or utcnow()
    with store.tms_write() as session:
        campaign = _locked_campaign(session, campaign_id)
        new = _check_transition(campaign, "start")
        package = session.get(FirmwarePackage, campaign.version)
        assert package is not None  # foreign key
        chosen = select_targets(session, campaign, package)
        if not chosen:
            raise InvalidValue("targets", f"活动 {campaign_id} 没有匹配的终端",
                               f"campaign {campaign_id} matches no terminal")
        rows = _target_rows(campaign, chosen, at)
        session.connection().execute(insert(CampaignTarget.__table__), rows)
        campaign.targeted = len(rows)
        campaign.started_at = at
        _open_wave(session, campaign, 1, at)
        set_state(session, campaign, new, f"{len(rows)} targets", at)
    return campaign


def _open_wave(session: Session, campaign: Campaign, wave: int, now: datetime) -> None:
    counts = dict(session.execute(
        select(CampaignTarget.state, func.count()).where(
            CampaignTarget.campaign_id == campaign.id, CampaignTarget.wave == wave)
        .group_by(CampaignTarget.state)).all())
    campaign.wave, campaign.wave_opened_at = wave, now
    campaign.wave_size = sum(counts.values())
    campaign.wave_done = sum(counts.get(state, 0) for state in FINAL_TARGET_STATES)
    campaign.wave_failed = counts.get("failed", 0)
    campaign.halt_base_done = campaign.halt_base_failed = 0


# --- progress ----------------------------------------------------------------------------
def check_progress(session: Session, campaign: Campaign, now: datetime) -> None:
    """Halt on the failure threshold, open the next wave, or complete (running only)."""
    if campaign.state != "running":
        return
    done = campaign.wave_done - campaign.halt_base_done
    failed = campaign.wave_failed - campaign.halt_base_failed
    needed = max(1, min(campaign.min_sample, campaign.wave_size - campaign.halt_base_done))
    if done >= needed and failed / done > campaign.threshold:
        set_state(session, campaign, "halted",
                  f"wave {campaign.wave}: {failed}/{done} failed > {campaign.threshold:g}", now)
        return
    if campaign.wave_done < campaign.wave_size:
        return
    if campaign.wave == 1:
        _open_wave(session, campaign, 2, now)
        if campaign.wave_size:
            session.add(state_event(campaign, "running", "running", "wave 2 opened", now))
            check_progress(session, campaign, now)
            return
    set_state(session, campaign, "completed", None, now)


# --- operator actions --------------------------------------------------------------------
def change_campaign(store: Store, campaign_id: int, action: str, reason: str | None = None,
                    now: datetime | None = None) -> Campaign:
    """``halt``, ``pause``, ``resume``, ``cancel`` or ``rollback`` (operator actions)."""
    if action not in TRANSITIONS or action == "start":
        raise InvalidValue("action", f"未知操作 {action}", f"unknown action {action}")
    at = now or utcnow()
    with store.tms_write() as session:
        campaign = _locked_campaign(session, campaign_id)
        new = _check_transition(campaign, action)
        set_state(session, campaign, new, reason or f"operator {action}", at)
        if action == "resume":
            campaign.halt_base_done, campaign.halt_base_failed = campaign.wave_done, campaign.wave_failed
            check_progress(session, campaign, at)
    return campaign


def halt_campaign(store: Store, campaign_id: int, reason: str | None = None, now: datetime | None = None) -> Campaign:
    return change_campaign(store, campaign_id, "halt", reason, now)


def resume_campaign(store: Store, campaign_id: int, reason: str | None = None, now: datetime | None = None) -> Campaign:
    return change_campaign(store, campaign_id, "resume", reason, now)


def cancel_campaign(store: Store, campaign_id: int, reason: str | None = None, now: datetime | None = None) -> Campaign:
    return change_campaign(store, campaign_id, "cancel", reason, now)


def rollback_campaign(store: Store, campaign_id: int, reason: str | None = None, now: datetime | None = None) -> Campaign:
    """Terminals already on the new version are told to go back at their next check."""
    return change_campaign(store, campaign_id, "rollback", reason, now)


def campaign_summary(campaign: Campaign) -> dict[str, Any]:
    """The JSON ``campaign list/status`` prints."""
    return {
        "id": campaign.id, "name": campaign.name, "version": campaign.version,
        "state": campaign.state, "reason": campaign.state_reason, "wave": campaign.wave,
        "targeted": campaign.targeted, "succeeded": campaign.succeeded,
        "failed": campaign.failed, "rolled_back": campaign.rolled_back,
        "selection": campaign.selection, "canary_pct": campaign.canary_pct,
        "threshold": campaign.threshold, "min_sample": campaign.min_sample,
        "window": f"{campaign.window_start}-{campaign.window_end}",
        "stagger_minutes": campaign.stagger_minutes,
        "created_at": campaign.created_at.isoformat() if campaign.created_at else None,
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
        "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
    }
