"""Automatic fixes: cause -> fix name -> function, each with dry-run, audit and a check.

Which fix a cause gets is data (the remedy's ``auto_fix``, ``doctor/data/remedies_*.toml``).
Every fix is a `FixAction`: ``plan`` says what it would do (nothing changes), ``apply``
does it, ``check`` verifies afterwards from the store that it worked. ``run_fix`` ties
them together and records one audit ``Event(source="doctor", kind="fix")`` with the
cause, the action, dry-run or not, the result and the check. Actions that need a person
(unfreezing a merchant, replacing hardware) are only proposed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import UTC, datetime
from typing import Any

from posdoctor.doctor.fixes_actions import ACTIONS, FixEnv, FixError
from posdoctor.store.records import EventRecord

__all__ = ["FixResult", "FixEnv", "FixError", "run_fix", "fix_json", "fix_name_for", "ACTIONS"]


def fix_name_for(cause: str) -> str | None:
    """The automatic fix the remedy data names for a cause (None: no software fix)."""
    try:
        from posdoctor.doctor.remedies import get_remedy
    except ImportError:
        return None
    try:
        return get_remedy(cause).auto_fix
    except KeyError:
        return None


def _person_actions(cause: str, lang: str | None = None) -> list[dict[str, str]]:
    try:
        from posdoctor.doctor.remedies import get_remedy

        return [p.to_json(lang) for p in get_remedy(cause).needs_person]
    except (ImportError, KeyError):
        return []


def fix_json(tid: str, cause: str) -> dict[str, Any]:
    """The ``fix`` member of a finding in diagnose JSON."""
    return {**_fix_json(cause), "command": _command(tid, cause)}


def _command(tid: str, cause: str) -> str | None:
    name = fix_name_for(cause)
    return f"posdoctor fix {tid} --cause {cause} --apply" if name in ACTIONS else None


@lru_cache(maxsize=512)
def _fix_json(cause: str) -> dict[str, Any]:
    name = fix_name_for(cause)
    if name is None or name not in ACTIONS:
        return {"name": None, "automatic": False, "needs_person": _person_actions(cause)}
    action = ACTIONS[name]
    return {"name": name, "automatic": True, "zh": action.zh, "en": action.en,
            "needs_person": _person_actions(cause)}


@dataclass(slots=True)
class FixResult:
    tid: str
    cause: str
    action: str | None
    dry_run: bool
    plan: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    check: dict[str, Any] = field(default_factory=dict)
    needs_person: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        if self.action is None:
            return False
        if self.dry_run:
            return not self.plan.get("blocked")
        return bool(self.check.get("ok"))

    def to_json(self) -> dict[str, Any]:
        return {"terminal": self.tid, "cause": self.cause, "action": self.action, "dry_run": self.dry_run,
                "ok": self.ok, "plan": self.plan, "result": self.result, "check": self.check,
                "needs_person": self.needs_person}


def _audit(env: FixEnv, outcome: FixResult) -> None:
    detail = {"cause": outcome.cause, "action": outcome.action, "dry_run": outcome.dry_run,
              "plan": outcome.plan, "result": outcome.result, "check": outcome.check,
              "actor": env.actor}
    code = "dry_run" if outcome.dry_run else ("ok" if outcome.ok else "failed")
    env.store.record_events([EventRecord(source="doctor", kind="fix", at=datetime.now(UTC), tid=outcome.tid,
                                         code=code, detail=_jsonable(detail))])


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def run_fix(env: FixEnv, tid: str, cause: str, *, apply: bool = False,
            audit: Callable[[FixEnv, FixResult], None] = _audit) -> FixResult:
    """Plan (and with ``apply`` do and check) the automatic fix for ``cause`` on ``tid``."""
    name = fix_name_for(cause)
    outcome = FixResult(tid, cause, name if name in ACTIONS else None, not apply,
                        needs_person=_person_actions(cause))
    if outcome.action is None:
        outcome.plan = {"blocked": True, "en": "no software fix for this cause: a person must act",
                        "zh": "该原因没有可自动执行的修复, 需人工处理"}
        audit(env, outcome)
        return outcome
    action = ACTIONS[outcome.action]
    outcome.plan = action.plan(env, tid, cause)
    if apply and not outcome.plan.get("blocked"):
        before = action.snapshot(env, tid, outcome.plan)
        try:
            outcome.result = action.apply(env, tid, outcome.plan)
        except FixError as exc:
            outcome.result = {"error": exc.en, "zh": exc.zh}
        outcome.check = action.check(env, tid, outcome.plan, before)
    audit(env, outcome)
    return outcome
