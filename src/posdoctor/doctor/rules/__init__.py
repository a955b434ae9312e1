"""Rule modules, one per cause family; importing this package registers every rule."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from posdoctor.doctor.records import Finding
from posdoctor.doctor.rules import backend, config, hw, net, op, software, status, txn  # noqa: F401
from posdoctor.doctor.rules.base import RULES, covered_causes

if TYPE_CHECKING:
    from posdoctor.doctor.evidence import TerminalEvidence
    from posdoctor.doctor.fleet import FleetContext

__all__ = ["run_rules", "covered_causes", "RULES"]

log = logging.getLogger(__name__)


def run_rules(ev: TerminalEvidence, fleet: FleetContext, only: frozenset[str] | None = None) -> list[Finding]:
    """Every rule's findings for one terminal (a failing rule is logged, never fatal);
    ``only``: just the rules that can return these causes."""
    findings: list[Finding] = []
    for fn, causes in RULES:
        if only is not None and not only.intersection(causes):
            continue
        try:
            findings.extend(fn(ev, fleet))
        except Exception:  # one broken rule must not hide the others' findings
            log.exception("doctor rule %s failed on %s", fn.__name__, ev.tid)
    return findings
