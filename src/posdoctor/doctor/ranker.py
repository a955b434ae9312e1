"""Combine the rules' findings into one ranked list; the first one is the diagnosis.

1. Same cause twice: keep the higher confidence, merge the evidence.
2. A fleet-wide explanation (host outage, overload, defective version, site power) that
   is sure absorbs terminal-level findings resting only on the signals it explains: a
   terminal's connect failures during a host outage do not make a firewall problem.
3. Order by confidence, then specificity, then recency.
4. Trouble without a confident finding -> ``unknown``, with what to collect next.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from posdoctor.doctor.records import Finding, Line, line

__all__ = ["rank", "UNKNOWN", "CONFIDENT", "FLEET_CAUSES"]

UNKNOWN = "unknown"
CONFIDENT = 0.5
ABSORB_AT = 0.8
ABSORB_FACTOR = 0.4
FLEET_CAUSES = frozenset({"backend.host_down", "net.host_overloaded", "upgrade.firmware_defect"})

DEFAULT_COLLECT = (
    line(None, "the exact message on the terminal screen and when it appeared",
         "终端屏幕上的提示原文及出现时间"),
    line(None, "the terminal's logs and a heartbeat (reboot it with network, or upload logs from the menu)",
         "终端日志与心跳(联网重启, 或在菜单中上传日志)"),
    line(None, "a probe of the host from the merchant's network: posdoctor probe --host H --port P --tid TID --mid MID",
         "从商户网络探测主机: posdoctor probe --host H --port P --tid TID --mid MID"),
)


def _merge(findings: Iterable[Finding]) -> list[Finding]:
    by_cause: dict[str, Finding] = {}
    for f in findings:
        kept = by_cause.get(f.cause)
        if kept is None:
            by_cause[f.cause] = f
            continue
        best, other = (f, kept) if f.confidence > kept.confidence else (kept, f)
        seen = {ln.both() for ln in best.evidence}
        best.evidence += [ln for ln in other.evidence if ln.both() not in seen]
        best.signals = best.signals | other.signals
        best.collect += [c for c in other.collect if c not in best.collect]
        by_cause[f.cause] = best
    return list(by_cause.values())


def _absorb(findings: list[Finding]) -> None:
    explainers = [f for f in findings if f.cause in FLEET_CAUSES and f.confidence >= ABSORB_AT]
    for f in findings:
        if f.cause in FLEET_CAUSES or not f.signals:
            continue
        for fleet in explainers:
            if f.signals <= fleet.signals:
                f.confidence = round(f.confidence * ABSORB_FACTOR, 3)
                f.evidence.append(line(None, f"explained by the fleet-wide cause {fleet.cause}",
                                       f"可由全网原因{fleet.cause}解释"))
                break


def _sort_key(f: Finding) -> tuple[float, float, float]:
    latest = f.latest()
    recency = latest.timestamp() if isinstance(latest, datetime) else 0.0
    return (-f.confidence, -f.specificity, -recency)


def unknown_finding(trouble: list[Line], findings: list[Finding]) -> Finding:
    collect: list[Line] = []
    for f in findings:
        collect += [c for c in f.collect if c not in collect]
    collect += [c for c in DEFAULT_COLLECT if c not in collect]
    evidence = list(trouble[:4])
    if findings:
        names = ", ".join(f"{f.cause} ({f.confidence:.2f})" for f in findings[:3])
        evidence.append(line(None, f"weak leads only: {names}", f"仅有较弱线索: {names}"))
    evidence += [line(None, "to collect next: " + c.en, "下一步请收集: " + c.zh) for c in collect[:3]]
    return Finding(UNKNOWN, 0.0, evidence, [], frozenset(), 0.0, False, collect=collect)


def rank(findings: Iterable[Finding], trouble: list[Line] | None = None) -> list[Finding]:
    """Ranked findings; ``trouble`` (evidence of failure) without a confident finding
    puts ``unknown`` first."""
    merged = _merge(findings)
    _absorb(merged)
    merged.sort(key=_sort_key)
    if trouble and (not merged or merged[0].confidence < CONFIDENT):
        return [unknown_finding(trouble, merged), *merged]
    return merged
