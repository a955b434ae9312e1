"""Configuration, keys and parameters (配置与密钥)."""

from __future__ import annotations

import re
from datetime import timedelta

from posdoctor.doctor.evidence import TerminalEvidence
from posdoctor.doctor.fleet import FleetContext
from posdoctor.doctor.records import Finding
from posdoctor.doctor.rules.base import (
    CONNECT_CODES,
    FINANCIAL_ROUTES,
    UPGRADE_EFFECT,
    assigned_endpoint,
    beat_line,
    comm_of,
    endpoint_of,
    event_line,
    finding,
    journal_line,
    last_upgrade,
    note,
    outside_fleet,
    failure_events,
    rule,
    superseded,
    upgrade_explains,
)

MID_IN_REASON = re.compile(r"belongs to merchant (\d+), not (\d+)")


@rule("config.wrong_host")
def wrong_host(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    assigned = assigned_endpoint(ev, fleet)
    if assigned is None:
        return []
    fails = outside_fleet(ev.terminal_events(*CONNECT_CODES), fleet, ev.tid)
    wrong = [e for e in fails if endpoint_of(e.detail) not in (None, assigned)]
    beat = ev.last_heartbeat()
    configured = endpoint_of(comm_of(beat))
    beat_wrong = configured is not None and configured != assigned
    if not wrong and not beat_wrong:
        return []
    upgrade = last_upgrade(ev)
    first = min([e.at for e in wrong] + ([beat.at] if beat_wrong else []))  # type: ignore[union-attr]
    if upgrade is not None and upgrade_explains(ev, first) and any(r.rc == "00" and r.at < upgrade.at for r in ev.journal):
        return []  # it worked before the upgrade: upgrade.config_lost explains it
    lines = [event_line(e) for e in wrong]
    if beat_wrong:
        lines.append(beat_line(beat, f"configured host {configured[0]}:{configured[1]}, assigned "  # type: ignore[arg-type, index]
                                     f"{assigned[0]}:{assigned[1]}",
                               f"终端配置主机{configured[0]}:{configured[1]}, 应为{assigned[0]}:{assigned[1]}"))  # type: ignore[index]
    if not ev.journal:
        lines.append(note(None, "the host received nothing from this terminal in the window",
                          "时间窗内主机未收到该终端任何报文"))
    confidence = 0.92 if wrong else (0.8 if fails or not ev.journal else 0.6)
    return [finding("config.wrong_host", confidence, lines, signals={"comm.connect", "comm.endpoint"},
                    specificity=0.8)]


@rule("config.wrong_tpdu")
def wrong_tpdu(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    host_side = ev.host_events("tpdu_rejected", "frame_error")
    beat = ev.last_heartbeat()
    tpdu = str(comm_of(beat).get("tpdu") or "").upper()
    differs = bool(tpdu) and fleet.assigned_tpdu is not None and tpdu != fleet.assigned_tpdu
    silent = ev.terminal_events("comm.receive_failed", "comm.receive_error", "comm.unpack_error")
    if not host_side and not differs:
        return []
    if differs and upgrade_explains(ev, beat.at):  # type: ignore[union-attr]
        return []  # upgrade.config_lost
    lines = [event_line(e) for e in host_side]
    if differs:
        lines.append(beat_line(beat, f"TPDU {tpdu}, the fleet uses {fleet.assigned_tpdu}",  # type: ignore[arg-type]
                               f"TPDU为{tpdu}, 其他终端为{fleet.assigned_tpdu}"))
    lines += [event_line(e) for e in silent[-3:]]
    confidence = 0.9 if (differs and (silent or host_side)) else (0.75 if host_side else 0.6)
    return [finding("config.wrong_tpdu", confidence, lines, signals={"comm.receive", "host.frame"}, specificity=0.8)]


@rule("config.wrong_terminal_id", "status.terminal_unregistered")
def unknown_ids(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    """97 for a TID the registry does not know: a typo if this device is registered under
    other IDs, else an unregistered terminal."""
    refused = [r for r in ev.answers("97") if (r.refused() or ("", ""))[0] in ("LoadTerminal", "FindTerminal")]
    typo_mid = _typo_mids(ev)
    alias_rows = [r for r in ev.journal if r.tid in ev.aliases and r.rc not in (None, "00")]
    findings: list[Finding] = []
    if ev.registered and (ev.aliases and alias_rows):
        lines = [note(None, f"device {ev.terminal['serial']} is registered as TID {ev.tid} but reports TID "  # type: ignore[index]
                            f"{', '.join(sorted(ev.aliases))}",
                      f"设备{ev.terminal['serial']}登记的终端号为{ev.tid}, 但上送{', '.join(sorted(ev.aliases))}")]  # type: ignore[index]
        lines += [journal_line(r) for r in alias_rows]
        findings.append(finding("config.wrong_terminal_id", 0.93, lines, signals={"rc.97", "rc.03"}, specificity=0.9))
    elif typo_mid:
        findings.append(finding("config.wrong_terminal_id", 0.85, typo_mid, signals={"rc.03"}, specificity=0.85))
    elif refused and not ev.registered:
        if ev.serial_terminals:
            other = ev.serial_terminals[0]
            lines = [journal_line(r) for r in refused]
            lines.append(note(None, f"this device ({other['serial']}) is registered as TID {other['tid']} of merchant "
                                    f"{other['mid']}", f"该设备({other['serial']})登记为商户{other['mid']}的终端{other['tid']}"))
            findings.append(finding("config.wrong_terminal_id", 0.9, lines, signals={"rc.97"}, specificity=0.9))
        else:
            lines = [journal_line(r) for r in refused]
            lines.append(note(None, f"TID {ev.tid} is not in the registry and no device reports are bound to it",
                              f"登记库中无终端{ev.tid}, 也无绑定设备的上报"))
            findings.append(finding("status.terminal_unregistered", 0.88, lines, signals={"rc.97"}, specificity=0.8))
    return findings


def _typo_mids(ev: TerminalEvidence) -> list:
    """03 because the MID sent is not any registered merchant: a typo, not a rebinding."""
    lines = []
    for r in ev.answers("03"):
        match = MID_IN_REASON.search(r.refusal_reason())
        if match and match.group(2) not in ev.known_mids:
            lines.append(journal_line(r))
    if lines:
        lines.append(note(None, "the merchant ID the terminal sends is not registered at all",
                          "终端上送的商户号在登记库中不存在"))
    return lines


@rule("keys.tmk_missing")
def tmk_missing(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    events = ev.terminal_events("keys.no_tmk", "keys.unreadable")
    checks = [e for e in ev.self_checks()[-1:] if e.detail.get("keys") in ("missing", "unreadable")
              and not superseded(ev, e.at, ("ok.tmk_download", "ok.tmk_injected", "ok.sign_in"), ("sign_in",))]
    events = [e for e in events if not superseded(ev, e.at, ("ok.tmk_download", "ok.tmk_injected", "ok.sign_in"),
                                                  ("sign_in",))]
    host = [r for r in ev.answers("A7") if "no TMK" in r.refusal_reason() or "no transport key" in r.refusal_reason()]
    if not events and not checks and not host:
        return []
    upgrade = last_upgrade(ev)
    if upgrade is not None and any(upgrade.at <= e.at <= upgrade.at + UPGRADE_EFFECT for e in events + checks):
        return []  # upgrade.keys_lost
    if ev.terminal_events("device.tamper"):
        return []  # hw.tamper wiped them
    download_failed = [e for e in failure_events(ev) if e.operation == "tmk_download"
                       and e.code not in ("keys.no_tmk", "keys.no_transport_key")]
    download_failed += [r for r in ev.journal if r.route == "tmk_download" and r.rc not in (None, "00")]
    if download_failed:
        return []  # the download itself fails: that failure is the cause, the missing TMK its effect
    lines = [event_line(e) for e in events] + [note(e.at, f"self-check: keys {e.detail.get('keys')}",
                                                     f"自检: 密钥{e.detail.get('keys')}") for e in checks]
    lines += [journal_line(r) for r in host]
    return [finding("keys.tmk_missing", 0.9 if events or checks else 0.7, lines, signals={"keys.tmk"}, specificity=0.8)]


@rule("keys.tmk_mismatch")
def tmk_mismatch(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    failed = ev.terminal_events("keys.check_failed")
    if not failed:
        return []
    approved = [r for r in ev.sign_ins() if r.rc == "00" and r.at <= failed[-1].at + timedelta(seconds=5)]
    lines = []
    if approved:
        lines.append(journal_line(approved[-1]))
    lines += [event_line(e) for e in failed]
    return [finding("keys.tmk_mismatch", 0.95 if approved else 0.75, lines, signals={"keys.check", "signin"},
                    specificity=0.9)]


@rule("keys.mak_desync")
def mak_desync(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    a0 = [r for r in ev.answers("A0") if r.route in FINANCIAL_ROUTES | {"settlement", "batch_upload"}]
    mac_events = ev.terminal_events("check.mac")
    if not a0 and len(mac_events) < 2:
        return []
    lines = [journal_line(r) for r in a0] + [event_line(e) for e in mac_events]
    issued = ev.last_key_issue("MAK")
    if issued is not None and a0:
        lines.append(note(issued, "the host's last working-key issue for this terminal",
                          "主机最近一次为该终端下发工作密钥"))
    mismatch = any("does not match the MAK" in r.refusal_reason() for r in a0)
    confidence = 0.92 if mismatch and len(a0) >= 1 else (0.75 if a0 else 0.6)
    return [finding("keys.mak_desync", confidence, lines, signals={"rc.A0"}, specificity=0.85)]


@rule("keys.resign_required")
def resign_required(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    rows = ev.answers("77")
    events = ev.terminal_events("host.sign_in_again", "host.rc.77")
    if not rows and not events:
        return []
    later_ok = [r for r in ev.sign_ins() if rows and r.rc == "00" and r.at > rows[-1].at]
    lines = [journal_line(r) for r in rows] + [event_line(e) for e in events[-2:]]
    confidence = 0.55 if later_ok else 0.88
    return [finding("keys.resign_required", confidence, lines, signals={"rc.77"}, specificity=0.7)]


@rule("params.download_incomplete")
def download_incomplete(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    lines = []
    for starts, end in ((("param_download",), "param_download_end"), (("capk_query", "capk_download"), "capk_download_end"),
                        (("aid_query", "aid_download"), "aid_download_end")):
        started = [r for r in ev.journal if r.route in starts and r.rc == "00"]
        ended = [r for r in ev.journal if r.route == end and r.rc == "00"]
        if started and (not ended or ended[-1].at < started[-1].at):
            lines.append(note(started[-1].at, f"{started[-1].route} started (host answered 00) and {end} never came",
                              f"{started[-1].route}已开始(主机应答00), 但未完成({end})"))
    events = ev.terminal_events("host.download_incomplete", "local.no_emv", "local.no_capk")
    if not lines and not events:
        return []
    lines += [event_line(e) for e in events]
    confidence = 0.9 if lines and events else 0.75
    return [finding("params.download_incomplete", confidence, lines, signals={"params"}, specificity=0.8)]


@rule("params.corrupt")
def params_corrupt(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    bad = [e for e in ev.self_checks()[-1:] if e.detail.get("params") in ("unreadable", "inconsistent")
           and not superseded(ev, e.at, ("ok.params",), ("param_download_end",))]
    if not bad:
        return []
    at = bad[-1].at
    had_params = any(e.at < at and e.detail.get("params") == "ok" for e in ev.self_checks()) \
        or any(e.at < at for e in ev.terminal_events("ok.params")) \
        or any(r.at < at and r.route == "param_download_end" and r.rc == "00" for r in ev.journal)
    if not had_params:
        return []  # never downloaded (a new terminal, or one that cannot reach the host): not a corruption
    storage_bad = any((e.detail.get("peripherals") or {}).get("storage") not in (None, "ok") for e in bad)
    if storage_bad:
        return []  # hw.storage
    if upgrade_explains(ev, bad[-1].at):
        return []  # upgrade.config_lost
    lines = [note(e.at, f"self-check: parameters {e.detail.get('params')}, storage ok",
                  f"自检: 参数{e.detail.get('params')}, 存储正常") for e in bad]
    return [finding("params.corrupt", 0.88, lines, signals={"params"}, specificity=0.8)]
