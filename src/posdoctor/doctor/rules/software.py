"""Software and upgrade (软件与升级): the upgrade reports and what changed right after."""

from __future__ import annotations

from datetime import timedelta

from posdoctor.doctor.evidence import TerminalEvidence
from posdoctor.doctor.fleet import FleetContext, VersionStats
from posdoctor.doctor.records import EventRow, Finding, Line
from posdoctor.doctor.rules.base import (
    CONNECT_CODES,
    UPGRADE_EFFECT,
    after,
    assigned_endpoint,
    beat_line,
    comm_of,
    endpoint_of,
    event_line,
    failure_events,
    finding,
    journal_line,
    last_upgrade,
    note,
    rule,
    settings_reset,
    upgrade_explains,
)

CHECKSUM_WORDS = ("checksum", "sha256", "signature", "corrupt", "truncated", "hash", "digest", "size")
MODEL_WORDS = ("model", "incompatible", "unsupported", "hardware")


def _reports(ev: TerminalEvidence, *steps: str, ok: bool | None = None) -> list[EventRow]:
    return [e for e in ev.of("tms", "upgrade_report")
            if (not steps or e.code in steps) and (ok is None or bool(e.detail.get("ok", True)) == ok)]


def _reason(e: EventRow) -> str:
    return str(e.detail.get("reason") or "").lower()


@rule("upgrade.download_corrupt")
def download_corrupt(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    bad = [e for e in _reports(ev, "download", "verify", ok=False)
           if e.code == "verify" or any(w in _reason(e) for w in CHECKSUM_WORDS)]
    retries = [e for e in _reports(ev, "download") if int(e.detail.get("attempt") or 1) > 1]
    if not bad and len(retries) < 2:
        return []
    lines = [event_line(e) for e in bad + retries]
    return [finding("upgrade.download_corrupt", 0.92 if bad else 0.7, lines, signals={"upgrade"}, specificity=0.85)]


@rule("upgrade.incompatible_model")
def incompatible_model(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    refused = [e for e in _reports(ev, "install", "self_check", "refused", "check", ok=False)
               if any(w in _reason(e) for w in MODEL_WORDS)]
    if not refused:
        return []
    model = (ev.terminal or {}).get("model") or ""
    lines = [event_line(e) for e in refused]
    if model:
        lines.append(note(None, f"this terminal's model is {model}", f"该终端型号为{model}"))
    return [finding("upgrade.incompatible_model", 0.92, lines, signals={"upgrade"}, specificity=0.9)]


def _defective_for(ev: TerminalEvidence, fleet: FleetContext) -> tuple[str, VersionStats] | None:
    """The defective version this terminal installed (or runs), if any."""
    versions = [str(e.detail.get("to_version")) for e in ev.of("tms", "upgrade_report")]
    beat = ev.last_heartbeat()
    if beat is not None:
        versions.append(str(beat.detail.get("app_version")))
    for version in reversed(versions):
        stats = fleet.defective_versions.get(version)
        if stats is not None and ev.tid in stats.terminals:
            return version, stats
    return None


@rule("upgrade.firmware_defect")
def firmware_defect(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    found = _defective_for(ev, fleet)
    if found is None:
        return []
    version, stats = found
    since = stats.rollout
    failed_reports = [e for e in _reports(ev, ok=False) if str(e.detail.get("to_version")) == version]
    failed_reports += [e for e in _reports(ev, "rollback") if str(e.detail.get("to_version")) == version]
    failures = [r for r in ev.failures() if since is None or r.at >= since]
    failed_events = [e for e in failure_events(ev) if (since is None or e.at >= since)
                     and not str(e.code).startswith("device.")]
    if ev.tid not in stats.failing and not failed_reports:
        return []
    old_rate = stats.other_rate
    lines: list[Line] = [note(since, f"version {version} rolled out; {len(stats.failing)} of {len(stats.terminals)} "
                                     f"terminals that installed it failed ({stats.rate:.0%}) against {old_rate:.0%} "
                                     "of the others",
                              f"版本{version}发布后, 安装该版本的{len(stats.terminals)}台终端中{len(stats.failing)}台故障"
                              f"({stats.rate:.0%}), 其他终端为{old_rate:.0%}")]
    lines += [event_line(e) for e in failed_reports[:3]] + [journal_line(r) for r in failures[:2]]
    lines += [event_line(e) for e in failed_events[:2]]
    lines += [event_line(e) for e in ev.tms("campaign_state", "halted")[-1:]]
    confidence = 0.94 if len(stats.failing) >= 3 else 0.88
    return [finding("upgrade.firmware_defect", confidence, lines, signals={"upgrade", "fleet.version"},
                    specificity=0.75)]


@rule("upgrade.config_lost")
def config_lost(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    upgrade = last_upgrade(ev)
    if upgrade is None:
        return []
    assigned = assigned_endpoint(ev, fleet)
    lines = [event_line(e) for e in settings_reset(ev)[-1:]]
    seen_at = []  # when each sign of lost settings showed
    for beat in after(ev.heartbeats(), upgrade.at)[-1:]:
        wrong = _beat_settings_lost(beat, assigned, fleet.assigned_tpdu)
        lines += wrong
        seen_at += [beat.at] if wrong else []
    misdirected = [e for e in after(ev.terminal_events(*CONNECT_CODES), upgrade.at)
                   if assigned and endpoint_of(e.detail) not in (None, assigned)]
    lines += [event_line(e) for e in misdirected[:1]]
    seen_at += [e.at for e in misdirected[:1]]
    checks = [e for e in after(ev.self_checks(), upgrade.at)
              if e.detail.get("params") in ("unreadable", "inconsistent", "missing", "empty")]
    lines += [note(e.at, f"self-check after the upgrade: parameters {e.detail.get('params')}",
                   f"升级后自检: 参数{e.detail.get('params')}") for e in checks]
    seen_at += [e.at for e in checks[:1]]
    if not seen_at or not upgrade_explains(ev, min(seen_at)):
        return []
    return [finding("upgrade.config_lost", 0.9, [event_line(upgrade), *lines], signals={"comm.endpoint", "params"},
                    specificity=0.85)]


def _beat_settings_lost(beat: EventRow, assigned: tuple[str, int] | None, tpdu_assigned: str | None) -> list[Line]:
    comm = comm_of(beat)
    lines = []
    endpoint = endpoint_of(comm)
    if assigned and endpoint and endpoint != assigned:
        lines.append(beat_line(beat, f"after the upgrade the terminal uses {endpoint[0]}:{endpoint[1]} "
                                     f"instead of {assigned[0]}:{assigned[1]}",
                               f"升级后终端使用{endpoint[0]}:{endpoint[1]}, 应为{assigned[0]}:{assigned[1]}"))
    tpdu = str(comm.get("tpdu") or "").upper()
    if tpdu_assigned and tpdu and tpdu != tpdu_assigned:
        lines.append(beat_line(beat, f"after the upgrade TPDU {tpdu}", f"升级后TPDU为{tpdu}"))
    if beat.detail.get("params_version") in ("", None, "0", "default") and "params_version" in beat.detail:
        lines.append(beat_line(beat, "after the upgrade the parameters are empty", "升级后参数为空"))
    return lines


@rule("upgrade.keys_lost")
def keys_lost(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    upgrade = last_upgrade(ev)
    if upgrade is None:
        return []
    events = after(ev.terminal_events("keys.no_tmk", "keys.unreadable"), upgrade.at, UPGRADE_EFFECT)
    checks = [e for e in after(ev.self_checks(), upgrade.at, UPGRADE_EFFECT) if e.detail.get("keys") in ("missing", "unreadable")]
    if not events and not checks:
        return []
    lines = [event_line(upgrade)] + [event_line(e) for e in events] + [
        note(e.at, f"self-check after the upgrade: keys {e.detail.get('keys')}", f"升级后自检: 密钥{e.detail.get('keys')}")
        for e in checks]
    return [finding("upgrade.keys_lost", 0.92, lines, signals={"keys.tmk"}, specificity=0.9)]


@rule("upgrade.batch_lost")
def batch_lost(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    upgrade = last_upgrade(ev)
    if upgrade is None:
        return []
    unbalanced = after(ev.host_events("settlement_unbalanced"), upgrade.at, timedelta(hours=24))
    host_only = [e for e in after(ev.host_events("batch_upload"), upgrade.at, timedelta(hours=24))
                 if e.detail.get("host_only")]
    settled_2 = after(ev.terminal_events("ok.settled_unbalanced"), upgrade.at, timedelta(hours=24))
    if not unbalanced and not host_only and not settled_2:
        return []
    lines = [event_line(upgrade)] + [event_line(e) for e in unbalanced + host_only + settled_2]
    return [finding("upgrade.batch_lost", 0.9, lines, signals={"settlement"}, specificity=0.9)]


@rule("upgrade.version_blocked")
def version_blocked(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    rows = [r for r in ev.answers("07") if "below minimum" in r.refusal_reason() or "version" in r.refusal_reason()]
    refused = [e for e in ev.terminal_events(prefix="upgrade.") if "version" in str(e.code)]
    refused += [e for e in _reports(ev, "refused", "check", ok=False) if "minimum" in _reason(e) or "below" in _reason(e)]
    policy = [e for e in ev.tms("policy_change") if "version" in str(e.code)]
    beat = ev.last_heartbeat()
    below = False
    if policy and beat and not rows:
        minimum = str(policy[-1].detail.get("new") or "")
        current = str(beat.detail.get("app_version") or "")
        below = bool(minimum and current) and _version_key(_dotted(current)) < _version_key(_dotted(minimum))
    if not rows and not refused and not below:
        return []
    lines = [event_line(e) for e in policy[-1:]] + [journal_line(r) for r in rows] + [event_line(e) for e in refused]
    if below:
        lines.append(beat_line(beat, f"app version {beat.detail.get('app_version')} is below the minimum",  # type: ignore[union-attr]
                               f"应用版本{beat.detail.get('app_version')}低于最低要求"))  # type: ignore[union-attr]
    confidence = 0.94 if rows else (0.88 if refused else 0.7)
    return [finding("upgrade.version_blocked", confidence, lines, signals={"upgrade", "rc.07"}, specificity=0.9)]


def _dotted(version: str) -> str:
    """``010200`` (the terminal's 6-digit form) -> ``1.2.0``; dotted versions unchanged."""
    if len(version) == 6 and version.isdigit():
        return f"{int(version[:2])}.{int(version[2:4])}.{int(version[4:])}"
    return version


def _version_key(text: str) -> tuple:
    parts = []
    for part in text.replace("-", ".").split("."):
        parts.append((0, int(part), "") if part.isdigit() else (1, 0, part))
    return tuple(parts)


@rule("upgrade.not_applied")
def not_applied(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    """Offered an upgrade (postponed, or started and never finished), still on the old version."""
    postponed = _reports(ev, "postpone")
    reports = ev.of("tms", "upgrade_report")
    if not reports or _reports(ev, "commit", ok=True) or _reports(ev, ok=False) or _reports(ev, "rollback"):
        return []
    beat = ev.last_heartbeat()
    current = str(beat.detail.get("app_version")) if beat else None
    target = str(reports[-1].detail.get("to_version") or "")
    if current is not None and current == target:
        return []
    if not postponed and reports[-1].code not in ("check", "download"):
        return []
    lines = [event_line(e) for e in (postponed or reports[-1:])]
    if beat:
        lines.append(beat_line(beat, f"still on version {current}, the campaign offers {target}",
                               f"仍为旧版本{current}, 升级活动要求{target}"))
    confidence = min(0.88, 0.75 + 0.05 * max(len(postponed) - 1, 0))
    return [finding("upgrade.not_applied", confidence, lines, signals={"upgrade"}, specificity=0.75)]


def _app_name(entry: str) -> str:
    return str(entry).split(":", 1)[0]


def _apps(beat: EventRow | None) -> set[str]:
    return {_app_name(a) for a in (beat.detail.get("installed_apps") or [])} if beat else set()


def _allowed_apps(ev: TerminalEvidence, fleet: FleetContext) -> set[str] | None:
    """The allowed-apps policy in force (names), else what most of the fleet runs."""
    for change in reversed(ev.tms("policy_change")):
        if change.code == "allowed_apps" and isinstance(change.detail.get("new"), list):
            return {_app_name(a) for a in change.detail["new"]}
    if len(fleet.latest_beat) < 3:
        return None
    return {_app_name(a) for a in fleet.common_apps}


@rule("sw.app_conflict", "sw.crash", "sw.unauthorized_app")
def apps_and_crashes(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    beats = ev.heartbeats()
    if not beats:
        return []
    first, last = beats[0], beats[-1]
    crashes = ev.counter_rise("crash") + ev.counter_rise("watchdog")
    busy = ev.terminal_events("device.busy", "sw.device_busy", prefix="sw.")
    new_apps = sorted(_apps(last) - _apps(first))
    allowed = _allowed_apps(ev, fleet)
    foreign = sorted(_apps(last) - allowed) if allowed is not None else []
    blocked = ev.terminal_events("security.unauthorized_app", "sw.unauthorized_app", prefix="security.")
    out: list[Finding] = []
    crash_lines = [beat_line(last, f"crash/watchdog counters rose by {crashes}", f"崩溃/看门狗计数增加{crashes}")] \
        if crashes else []
    if (crashes >= 2 or busy) and new_apps:
        lines = [beat_line(last, f"new app(s) installed: {', '.join(new_apps)}", f"新安装应用: {', '.join(new_apps)}")]
        out.append(finding("sw.app_conflict", 0.88, lines + crash_lines + [event_line(e) for e in busy],
                           signals={"sw.crash"}, specificity=0.85))
    elif crashes >= 2:
        out.append(finding("sw.crash", min(0.9, 0.65 + 0.05 * crashes), crash_lines, signals={"sw.crash"},
                           specificity=0.7))
    if blocked or (foreign and not crashes):
        lines = [event_line(e) for e in blocked]
        if foreign:
            lines.append(beat_line(last, f"app(s) outside the allowed list: {', '.join(foreign)}",
                                   f"未授权应用: {', '.join(foreign)}"))
        out.append(finding("sw.unauthorized_app", 0.9 if blocked else 0.7, lines, signals={"sw.app"}, specificity=0.85))
    return out
