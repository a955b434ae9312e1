"""Hardware and environment (硬件与环境): self-checks, telemetry, device events, power."""

from __future__ import annotations

from posdoctor.doctor.evidence import TerminalEvidence
from posdoctor.doctor.fleet import FleetContext
from posdoctor.doctor.records import Finding, Line, hm
from posdoctor.doctor.rules.base import beat_line, event_line, finding, note, rule, self_check_faults

PERIPHERAL_CAUSES = {
    "printer": ("hw.printer", "device.printer", "printer"),
    "card_reader": ("hw.card_reader", "device.card_reader", "card_read"),
    "keypad": ("hw.keypad_touch", "device.keypad", "keypad"),
    "touch": ("hw.keypad_touch", "device.keypad", "touch"),
    "storage": ("hw.storage", "device.storage", "storage"),
}
LOW_BATTERY_PCT = 10
LOW_VOLTAGE = 10.5


@rule("hw.printer", "hw.card_reader", "hw.keypad_touch", "hw.storage")
def peripherals(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    faults = self_check_faults(ev)
    found: dict[str, list[Line]] = {}
    for name, (cause, code, counter) in PERIPHERAL_CAUSES.items():
        lines: list[Line] = []
        if name in faults:
            lines.append(note(None, f"self-check/telemetry: {name} {faults[name]}", f"自检/遥测: {name} {faults[name]}"))
        events = ev.terminal_events(code)
        lines += [event_line(e) for e in events]
        rise = ev.counter_rise(counter)
        if rise >= 3:
            lines.append(note(None, f"{counter} error counter rose by {rise}", f"{counter}错误计数增加{rise}"))
        if lines:
            found.setdefault(cause, []).extend(lines)
    out = []
    for cause, lines in found.items():
        confidence = 0.92 if len(lines) >= 2 else 0.85
        out.append(finding(cause, confidence, lines, signals={"hw." + cause.split(".")[1]}, specificity=0.85))
    return out


@rule("hw.power")
def power(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    events = ev.terminal_events("device.power")
    lines: list[Line] = [event_line(e) for e in events]
    fault = self_check_faults(ev).get("power")
    if fault:
        lines.append(note(None, f"self-check/telemetry: power {fault}", f"自检/遥测: 电源{fault}"))
    beat = ev.last_heartbeat()
    if beat is not None:
        pct, volts = beat.detail.get("battery_pct"), beat.detail.get("voltage")
        on_battery = beat.detail.get("power_source") == "battery"
        if isinstance(pct, (int, float)) and pct <= LOW_BATTERY_PCT and on_battery:
            lines.append(beat_line(beat, f"on battery at {pct}%", f"电池供电, 电量{pct}%"))
        if isinstance(volts, (int, float)) and 0 < volts < LOW_VOLTAGE:
            lines.append(beat_line(beat, f"supply voltage low ({volts} V)", f"供电电压低({volts} V)"))
    planned = [e for e in ev.of("tms", "upgrade_report") if e.code in ("reboot", "rollback")]
    crashes = ev.counter_rise("crash") + ev.counter_rise("watchdog")
    reboots = ev.counter_rise("reboot") - len(planned) - crashes  # upgrades and crashes restart too
    if reboots >= 2:
        lines.append(note(None, f"{reboots} unexpected reboots", f"{reboots}次意外重启"))
    site = next((s for s in fleet.site_power if ev.tid in s.tids), None) if not crashes else None
    if site is not None:
        lines.append(note(site.start, f"power loss where it stands: {site.what} between {hm(site.start)} and "
                                      f"{hm(site.end)}", f"所在场所断电: {hm(site.start)}至{hm(site.end)}间{site.what}"))
    if not lines:
        return []
    confidence = 0.9 if site is not None or events else (0.8 if len(lines) >= 2 else 0.65)
    return [finding("hw.power", confidence, lines, signals={"hw.power", "silent"}, specificity=0.75)]


@rule("hw.tamper")
def tamper(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    events = ev.terminal_events("device.tamper")
    if not events:
        return []
    return [finding("hw.tamper", 0.97, [event_line(e) for e in events], signals={"hw.tamper", "keys.tmk"},
                    specificity=0.95)]
