"""Fleet-wide explanations found in the fleet scan: outages, overloads, site power
losses, defective versions (``fleet.build_fleet_context`` calls these)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from posdoctor.doctor.fleet import (
    BUCKET_S,
    POWER_CODES,
    SLOW_CODES,
    UNREACHABLE_CODES,
    FleetContext,
    Span,
    VersionStats,
    _bucket_of,
    _bucket_time,
)
from posdoctor.doctor.records import EventRow

__all__ = ["find_spans"]

JUST_AFTER = timedelta(microseconds=1)
"""A span ends just after its last mark (`Span.covers` leaves out the end)."""
ApprovalsAround = Callable[[datetime, datetime], tuple[datetime | None, datetime | None]]
"""(first, last) -> the host's last approved payment before `first`, first after `last`."""


def find_spans(ctx: FleetContext, events: list[EventRow], checks: list[Any],
               approvals_around: ApprovalsAround | None = None) -> None:
    """Fill the context's outage, overload, power and version findings. With
    `approvals_around`, each outage is widened to the approved payments around it."""
    marks = _unreachable_marks(ctx, events)
    ctx.host_busy = _host_turned_away(events)
    ctx.outages = _spans(ctx, marks, "host unreachable") or _fleet_wide(ctx, events)
    if approvals_around is not None:
        ctx.outages = _merged(ctx.outages + _unbroken_runs(_refusal_marks(ctx, events), ctx.host_busy,
                                                           approvals_around))
        ctx.outages = _merged([_widened(span, marks, approvals_around) for span in ctx.outages])
    ctx.overloads = _spans(ctx, _slow_marks(events), "slow answers / receive timeouts", share=0.2)
    ctx.overloads += ctx.host_busy
    _find_site_power(ctx, events)
    _find_mass_reboots(ctx, checks, events)
    _find_defective_versions(ctx, events)


def _to_assigned(ctx: FleetContext, e: EventRow) -> bool:
    host, port = e.detail.get("host"), e.detail.get("port")
    if ctx.assigned_comm is None or not host or port in (None, ""):
        return True
    return (str(host), int(port)) == ctx.assigned_comm


def _unreachable_marks(ctx: FleetContext, events: Iterable[EventRow]) -> list[tuple[str, datetime]]:
    """Connect failures to the endpoint the fleet uses (a terminal with a wrong endpoint
    says nothing about the host), 96 answers the host wrote, 96 the terminals saw."""
    marks = [(e.tid, e.at) for e in events
             if e.tid and e.kind == "terminal_event" and e.code in UNREACHABLE_CODES and _to_assigned(ctx, e)]
    return marks + _answered_96(ctx, events)


def _answered_96(ctx: FleetContext, events: Iterable[EventRow]) -> list[tuple[str, datetime]]:
    """96 answers: those the host wrote in its journal and those the terminals saw."""
    marks = [(tid, at) for tid, tid_marks in ctx.marks_by_tid.items() for at, _rc, _route in tid_marks]
    return marks + [(e.tid, e.at) for e in events if e.tid and e.kind == "terminal_event" and e.code == "host.rc.96"]


REFUSED = "ConnectionRefusedError"
UNBROKEN_RUN_TIDS = 2


def _refusal_marks(ctx: FleetContext, events: Iterable[EventRow]) -> list[tuple[str, datetime]]:
    """What a host that is not serving gives a terminal: its connection refused at the
    fleet's own endpoint (a wrong endpoint or a cut link says nothing about the host;
    so only when the fleet's endpoint is known), or a 96 answer."""
    marks = _answered_96(ctx, events)
    if ctx.assigned_comm is not None:
        marks += [(e.tid, e.at) for e in events if e.tid and e.kind == "terminal_event"
                  and e.code == "comm.connect_failed" and e.detail.get("error") == REFUSED
                  and e.detail.get("host") and _to_assigned(ctx, e)]
    return marks


def _unbroken_runs(marks: list[tuple[str, datetime]], busy: list[Span],
                   approvals_around: ApprovalsAround) -> list[Span]:
    """Refusals and 96 answers met by at least two terminals with no payment approved
    anywhere in the fleet between them: the host served no one. A small fleet's few
    customers meet an outage one by one, too few in any bucket to make it busy. Marks
    inside a stretch where the host itself turned connections away (at capacity, it was
    serving others) do not count. One lookup per run, however many marks it holds."""
    spans: list[Span] = []
    run: list[tuple[str, datetime]] = []
    next_approval: datetime | None = None

    def close() -> None:
        tids = frozenset(tid for tid, _at in run)
        if len(tids) >= UNBROKEN_RUN_TIDS:
            spans.append(Span(run[0][1], run[-1][1] + JUST_AFTER, tids,
                              "host refusing or answering 96, no payment approved in between"))

    for tid, at in sorted((m for m in marks if not any(span.covers(m[1]) for span in busy)), key=lambda m: m[1]):
        if run and (next_approval is None or at < next_approval):
            run.append((tid, at))
            continue
        if run:
            close()
        run = [(tid, at)]
        _before, next_approval = approvals_around(at, at)
    if run:
        close()
    return spans


def _widened(span: Span, marks: list[tuple[str, datetime]], approvals_around: ApprovalsAround) -> Span:
    """The outage reaching back to the host's last approved payment before its busy
    buckets and on to the first one after them: the unreachable marks in between belong
    to it. A small fleet's few customers meet an outage one by one, too few in a bucket
    to make it hot, so the busy buckets alone leave its first and last victims out."""
    inside = [at for _tid, at in marks if span.covers(at)]
    if not inside:
        return span
    before, after = approvals_around(min(inside), max(inside))
    near = [(tid, at) for tid, at in marks if (before is None or before < at) and (after is None or at < after)]
    start = min([span.start] + [at for _tid, at in near])
    end = max([span.end] + [at + JUST_AFTER for _tid, at in near])
    return Span(start, end, span.tids | {tid for tid, _at in near}, span.what)


def _merged(spans: list[Span]) -> list[Span]:
    """Overlapping spans as one (two busy stretches of one outage)."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: s.start):
        if merged and span.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Span(last.start, max(last.end, span.end), last.tids | span.tids, last.what)
        else:
            merged.append(span)
    return merged


def _fleet_wide(ctx: FleetContext, events: Iterable[EventRow]) -> list[Span]:
    """Most of the fleet found the host refusing connections at some point (terminal
    clocks disagree, so no common bucket): one span over the whole window."""
    refused = [(e.tid, e.at) for e in events if e.tid and e.kind == "terminal_event"
               and e.code == "comm.connect_failed" and _to_assigned(ctx, e)]
    tids = frozenset(tid for tid, _at in refused)
    if len(tids) >= max(3, 0.5 * ctx.size):
        start = min(at for _tid, at in refused)
        return [Span(start, ctx.until, tids, "host unreachable (fleet-wide)")]
    return []


def _slow_marks(events: Iterable[EventRow]) -> list[tuple[str, datetime]]:
    return [(e.tid, e.at) for e in events if e.tid and e.kind == "terminal_event" and e.code in SLOW_CODES]


TURNED_AWAY = ("connection_refused",)


def _host_turned_away(events: Iterable[EventRow]) -> list[Span]:
    """Buckets in which the host itself turned connections away (at capacity)."""
    by_bucket: dict[int, int] = defaultdict(int)
    for e in events:
        if e.source == "host" and e.kind in TURNED_AWAY:
            by_bucket[_bucket_of(e.at)] += 1
    return [Span(_bucket_time(b - 1), _bucket_time(b + 2), frozenset(), f"host turned away {n} connections")
            for b, n in sorted(by_bucket.items()) if n >= 3]


def _threshold(ctx: FleetContext, share: float = 0.1) -> int:
    return max(3, int(share * ctx.size))


def _spans(ctx: FleetContext, marks: list[tuple[str, datetime]], what: str, share: float = 0.1) -> list[Span]:
    """Runs of buckets in which at least a tenth of the fleet (and 3) showed the mark."""
    by_bucket: dict[int, set[str]] = defaultdict(set)
    for tid, at in marks:
        by_bucket[_bucket_of(at)].add(tid)
    hot = sorted(b for b, tids in by_bucket.items() if len(tids | by_bucket.get(b - 1, set())) >= _threshold(ctx, share))
    spans: list[Span] = []
    for b in hot:
        tids = frozenset(by_bucket[b])
        if spans and _bucket_of(spans[-1].end) >= b - 1:
            last = spans[-1]
            spans[-1] = Span(last.start, _bucket_time(b + 1), last.tids | tids, what)
        else:
            spans.append(Span(_bucket_time(b - 1), _bucket_time(b + 1), tids, what))
    return spans


def _site_of(beat: EventRow | None) -> str | None:
    if beat is None:
        return None
    site = beat.detail.get("site")
    return str(site) if site else None


def _find_site_power(ctx: FleetContext, events: Iterable[EventRow]) -> None:
    """A site where most terminals lost power at the same time."""
    sites: dict[str, set[str]] = defaultdict(set)
    for tid, beat in ctx.latest_beat.items():
        site = _site_of(beat)
        if site:
            sites[site].add(tid)
    if not sites:
        return
    marks: dict[tuple[str, int], set[str]] = defaultdict(set)
    for e in events:
        if e.tid and (e.code in POWER_CODES or (e.kind == "terminal_event" and e.detail.get("power_loss"))):
            site = _site_of(ctx.latest_beat.get(e.tid))
            if site:
                marks[(site, _bucket_of(e.at) // 3)].add(e.tid)
    for (site, b3), tids in marks.items():
        members = sites.get(site, set())
        if len(tids) >= 2 and len(tids) >= 0.5 * max(len(members), 1):
            start = _bucket_time(b3 * 3 - 3)
            ctx.site_power.append(Span(start, start + timedelta(seconds=BUCKET_S * 9), frozenset(members), site))


INSTALL_STEPS = ("install", "reboot", "self_check", "sign_in", "commit")


def _find_mass_reboots(ctx: FleetContext, checks: list[Any], events: Iterable[EventRow]) -> None:
    """Many terminals running their power-on self-check again at the same moment in the
    middle of the day (not for an upgrade): the power went off where they stand."""
    upgraded = {e.tid for e in events if e.kind == "upgrade_report"}
    upgraded |= {tid for tid, beat in ctx.latest_beat.items()  # crashing apps restart too
                 if any((beat.detail.get("error_counters") or {}).get(k) for k in ("crash", "watchdog"))}
    seen: set[str] = set()
    marks: dict[int, set[str]] = defaultdict(set)
    for tid, at in checks:
        if tid is None:
            continue
        if tid in seen and tid not in upgraded:
            marks[_bucket_of(at) // 3].add(tid)
        seen.add(tid)
    for b3, tids in sorted(marks.items()):
        if len(tids) >= _threshold(ctx):
            start = _bucket_time(b3 * 3 - 3)
            ctx.site_power.append(Span(start, start + timedelta(seconds=BUCKET_S * 9), frozenset(tids),
                                       f"{len(tids)} terminals restarted together"))
            ctx.suspect_tids.update(tids)


def _find_defective_versions(ctx: FleetContext, events: Iterable[EventRow]) -> None:
    """A version that fails on most terminals that install it (across models), far more
    often than the terminals that stay on their version."""
    tried: dict[str, set[str]] = defaultdict(set)
    failed: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if e.kind != "upgrade_report" or not e.tid:
            continue
        version = str(e.detail.get("to_version") or "")
        if not version:
            continue
        tried[version].add(e.tid)
        stats = ctx.versions.setdefault(version, VersionStats(version))
        stats.rollout = e.at if stats.rollout is None else min(stats.rollout, e.at)
        ok = bool(e.detail.get("ok", True))
        if (e.code in INSTALL_STEPS and not ok) or e.code == "rollback":
            failed[version].add(e.tid)
    failing_now = set(ctx.failing_by_tid) | {e.tid for e in events if e.tid and e.source == "terminal"
                                             and e.kind == "terminal_event" and not str(e.code).startswith("upgrade.")}
    for version, stats in ctx.versions.items():
        running = set(stats.terminals)  # newest heartbeat on this version
        stats.terminals = running | tried.get(version, set())
        stats.failing = failed.get(version, set())
        if stats.rollout is not None:
            stats.failing |= (running & tried.get(version, set())) & failing_now
    for version, stats in ctx.versions.items():
        if stats.rollout is None or len(stats.failing) < 2:
            continue
        others = set(ctx.latest_beat) - stats.terminals
        other_rate = len(others & failing_now) / len(others) if others else 0.0
        stats.other_rate = other_rate
        if stats.rate >= 0.5 and stats.rate >= 3 * other_rate + 0.05:
            ctx.defective_versions[version] = stats
