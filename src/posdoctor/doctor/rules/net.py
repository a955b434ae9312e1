"""Network (网络): link down, name resolution, blocked port, unstable link, overloaded host."""

from __future__ import annotations

from posdoctor.doctor.evidence import TerminalEvidence
from posdoctor.doctor.fleet import SILENT, FleetContext
from posdoctor.doctor.records import Finding, hm
from posdoctor.doctor.rules.base import beat_line, event_line, finding, note, outside_fleet, rule

WEAK_SIGNAL_DBM = -100
FLAKY_CODES = ("comm.receive_failed", "comm.receive_error", "comm.connect_timeout", "comm.connect_failed")
"""What a lossy link produces (a link that is down is ``net.offline``'s signal)."""


@rule("net.offline")
def offline(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    down = outside_fleet(ev.terminal_events("comm.link_down"), fleet, ev.tid)
    beat = ev.last_heartbeat()
    network_none = beat is not None and str(beat.detail.get("network") or "").lower() in ("none", "down", "offline")
    newest = fleet.newest_beat
    silent = beat is not None and newest is not None and newest - beat.at > SILENT
    if not down and not network_none and not silent:
        return []
    if silent and fleet.power_at(beat.at, ev.tid) is not None:  # type: ignore[union-attr]
        return []
    lines = [event_line(e) for e in down]
    if network_none:
        lines.append(beat_line(beat, "no network link", "网络未连接"))  # type: ignore[arg-type]
    if silent:
        lines.append(note(beat.at, f"last heartbeat; other terminals reported until {hm(newest)}",  # type: ignore[union-attr]
                          f"最后一次心跳; 其他终端持续上报至{hm(newest)}"))
    power = ev.terminal_events("device.power") or [b for b in ev.heartbeats() if b.detail.get("power_source") == "battery"]
    recovered = bool(down) and any(r.at > down[-1].at and r.rc == "00" for r in ev.journal)
    if network_none or len(down) >= 2:
        confidence = 0.9 if not recovered else 0.75
    elif down:
        confidence = 0.6 if not recovered else 0.45
    else:
        confidence = 0.45 if power else 0.6
    collect = [] if down else [note(None, "ask whether the network/signal icon is lit and whether the terminal is powered",
                                    "询问商户网络/信号指示是否正常、终端是否通电")]
    return [finding("net.offline", confidence, lines, signals={"comm.link", "silent"}, specificity=0.6,
                    collect=collect)]


@rule("net.dns_failure")
def dns_failure(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    events = ev.terminal_events("comm.unknown_host")
    if not events:
        return []
    return [finding("net.dns_failure", 0.95, [event_line(e) for e in events], signals={"comm.dns"}, specificity=0.9)]


@rule("net.firewall_blocked")
def firewall_blocked(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    timeouts = outside_fleet(ev.terminal_events("comm.connect_timeout"), fleet, ev.tid)
    if len(timeouts) < 2:
        return []
    assigned = fleet.assigned_comm
    to_assigned = [e for e in timeouts if assigned is None or
                   (str(e.detail.get("host")), int(e.detail.get("port") or 0)) == assigned]
    if not to_assigned:
        return []  # config.wrong_host
    refusals = ev.terminal_events("comm.connect_failed")
    first = to_assigned[0].at
    later_ok = [r for r in ev.journal if r.at > first and r.rc is not None]
    others = fleet.others_succeeding(ev.tid)
    lines = [event_line(e) for e in to_assigned]
    lines.append(note(None, f"{others} other terminals reached the host in the same window",
                      f"同一时段有{others}台其他终端正常连接主机"))
    if later_ok or refusals:
        return []  # some connections get through: unstable, not blocked
    confidence = 0.88 if others else 0.55
    return [finding("net.firewall_blocked", confidence, lines, signals={"comm.connect"}, specificity=0.75)]


def _recoveries(ev: TerminalEvidence, failures: list) -> int:
    """How often the terminal worked again after a communication failure (its own clock
    on both sides): an unstable link keeps alternating, a cut link or a blocked port does not."""
    failed_at = {id(e) for e in failures}
    timeline = sorted(failures + [e for e in ev.terminal_events(prefix="ok.")], key=lambda e: e.at)
    count, failing = 0, False
    for e in timeline:
        if id(e) in failed_at:
            failing = True
        elif failing:
            count, failing = count + 1, False
    return count


@rule("net.unstable")
def unstable(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    flaky = outside_fleet(ev.terminal_events(*FLAKY_CODES), fleet, ev.tid)
    ok = [r for r in ev.journal if r.rc == "00"]
    beat = ev.last_heartbeat()
    signal = beat.detail.get("signal_dbm") if beat else None
    weak = isinstance(signal, (int, float)) and signal <= WEAK_SIGNAL_DBM
    recoveries = _recoveries(ev, flaky)
    mixed = len(flaky) >= 2 and recoveries >= 2
    if not mixed and not (weak and flaky):
        return []
    lines = [event_line(e) for e in flaky]
    lines.append(note(None, f"{len(ok)} messages answered normally in the same window; the terminal recovered "
                            f"{recoveries} times after a failure",
                      f"同一时段有{len(ok)}笔报文正常应答, 故障后恢复{recoveries}次"))
    if weak:
        lines.append(beat_line(beat, f"signal {signal} dBm (weak)", f"信号强度{signal} dBm(弱)"))  # type: ignore[arg-type]
    confidence = min(0.9, 0.6 + 0.05 * len(flaky) + (0.15 if weak else 0.0))
    return [finding("net.unstable", confidence, lines, signals={"comm.receive", "comm.connect"}, specificity=0.6)]


@rule("net.host_overloaded")
def host_overloaded(ev: TerminalEvidence, fleet: FleetContext) -> list[Finding]:
    timeouts = ev.terminal_events("comm.receive_failed", "comm.connect_timeout", "comm.connect_failed")
    beat = ev.last_heartbeat()
    if not timeouts or not fleet.overloads or (beat is not None and
                                               beat.detail.get("app_version") in fleet.defective_versions):
        return []  # no overload seen, or a defective version explains its own terminals' timeouts
    inside = [e for e in timeouts if fleet.overload_at(e.at)]
    host_closed = [e for e in timeouts if e.detail.get("reason") == "closed"]
    if not inside and not (host_closed and fleet.host_busy):
        return []
    span = fleet.overload_at(inside[0].at) if inside else fleet.host_busy[0]
    lines = [event_line(e) for e in (inside or host_closed)]
    who = f"{len(span.tids)} terminals had slow answers or receive timeouts" if span.tids else span.what
    who_zh = f"{len(span.tids)}台终端应答慢或接收超时" if span.tids else "主机连接数已满, 拒绝新连接"
    lines.append(note(span.start, f"{who} between {hm(span.start)} and {hm(span.end)}",
                      f"{hm(span.start)}至{hm(span.end)}{who_zh}"))
    confidence = 0.9 if inside else 0.72
    return [finding("net.host_overloaded", confidence, lines, signals={"comm.receive", "comm.connect"}, specificity=0.7)]
