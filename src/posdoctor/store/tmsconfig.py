"""``ConfigMixin``: terminal operators, versioned parameters and policies.

Parameters live in three scopes: ``template`` (owner ""), ``merchant`` (owner MID) and
``terminal`` (owner TID); a terminal's effective set is template, then its merchant's
overrides, then its own. Every change takes the next global version number, so a
terminal's effective version is the newest change that applies to it. Parameter and
policy changes are ``Event`` rows (``param_change`` / ``policy_change``) and change-feed
rows in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from posdoctor.store.base import StoreBase
from posdoctor.store.errors import AlreadyExists, InvalidValue, NotFound
from posdoctor.store.lifecycle import OPERATOR_TRANSITIONS, add_host_change, check_transition, record_status_change
from posdoctor.store.models import Event, Merchant, Terminal, utcnow
from posdoctor.store.models_registry import Operator, ParamValue, Policy

PARAM_SCOPES = ("template", "merchant", "terminal")


def merge_params(rows: Iterable[ParamValue], tid: str, mid: str) -> tuple[int, dict[str, str]]:
    """(version, values) of one terminal from all parameter rows."""
    layers: dict[str, dict[str, str | None]] = {scope: {} for scope in PARAM_SCOPES}
    version = 0
    for row in rows:
        if (row.scope, row.owner) in (("template", ""), ("merchant", mid), ("terminal", tid)):
            layers[row.scope][row.name] = row.value
            version = max(version, row.version)
    merged: dict[str, str] = {}
    for scope in PARAM_SCOPES:
        merged.update((name, value) for name, value in layers[scope].items() if value is not None)
    return version, merged


class ConfigMixin(StoreBase):
    # --- parameters ----------------------------------------------------------------------
    def set_param(self, name: str, value: str | None, *, mid: str | None = None, tid: str | None = None,
                  actor: str | None = None, reason: str | None = None, now: datetime | None = None) -> int:
        """Set (``value`` None: remove) one parameter tag; returns the new version."""
        if mid is not None and tid is not None:
            raise InvalidValue("scope", "只能指定商户或终端之一", "give a merchant or a terminal, not both")
        scope, owner = ("terminal", tid) if tid else ("merchant", mid) if mid else ("template", "")
        at = now or utcnow()
        with self._write() as session:
            if scope == "terminal" and session.get(Terminal, owner) is None:
                raise NotFound("terminal", owner)
            if scope == "merchant" and session.get(Merchant, owner) is None:
                raise NotFound("merchant", owner)
            version = int(session.scalar(select(func.max(ParamValue.version))) or 0) + 1
            row = session.scalars(select(ParamValue).where(
                ParamValue.scope == scope, ParamValue.owner == owner, ParamValue.name == name)).first()
            old = row.value if row is not None else None
            if row is None:
                row = ParamValue(scope=scope, owner=owner, name=name)
                session.add(row)
            row.value, row.version, row.at, row.actor = value, version, at, actor
            session.add(Event(at=at, source="tms", kind="param_change", tid=tid, code=name,
                              detail={"scope": scope, "owner": owner, "old": old, "new": value,
                                      "version": version, "actor": actor, "reason": reason}))
            add_host_change(session, "params", tid=tid, mid=mid, value=str(version), at=at)
        return version

    def param_rows(self) -> list[ParamValue]:
        with self._read() as session:
            return list(session.scalars(select(ParamValue).order_by(ParamValue.version)))

    def effective_params(self, tid: str) -> tuple[int, dict[str, str]]:
        """(version, tag -> value) of the TMS parameters that apply to ``tid``."""
        terminal = self.get_terminal(tid)  # type: ignore[attr-defined]
        with self._read() as session:
            rows = session.scalars(select(ParamValue).where(
                ((ParamValue.scope == "template") & (ParamValue.owner == ""))
                | ((ParamValue.scope == "merchant") & (ParamValue.owner == terminal.mid))
                | ((ParamValue.scope == "terminal") & (ParamValue.owner == tid)))).all()
        return merge_params(rows, tid, terminal.mid)

    # --- policies --------------------------------------------------------------------------
    def set_policy(self, name: str, value: Any, *, actor: str | None = None, reason: str | None = None,
                   now: datetime | None = None) -> Any:
        """Store a policy value (None removes it); returns the old value."""
        at = now or utcnow()
        with self._write() as session:
            row = session.get(Policy, name)
            old = row.value if row is not None else None
            if value is None:
                if row is not None:
                    session.delete(row)
            else:
                if row is None:
                    row = Policy(name=name)
                    session.add(row)
                row.value, row.updated_at, row.actor, row.reason = value, at, actor, reason
            session.add(Event(at=at, source="tms", kind="policy_change", code=name[:32],
                              detail={"old": old, "new": value, "actor": actor, "reason": reason}))
            add_host_change(session, "policy", value=name, at=at)
        return old

    def policies(self) -> dict[str, Any]:
        with self._read() as session:
            return {row.name: row.value for row in session.scalars(select(Policy).order_by(Policy.name))}

    def policy_rows(self) -> list[Policy]:
        with self._read() as session:
            return list(session.scalars(select(Policy).order_by(Policy.name)))

    # --- operators -------------------------------------------------------------------------
    def add_operator(self, tid: str, opno: str, pw_hash: bytes, salt: bytes, *, now: datetime | None = None) -> Operator:
        with self._write() as session:
            if session.get(Terminal, tid) is None:
                raise NotFound("terminal", tid)
            if session.get(Operator, (tid, opno)) is not None:
                raise AlreadyExists("operator", f"{tid}/{opno}")
            operator = Operator(tid=tid, opno=opno, pw_hash=pw_hash, salt=salt, status="active", failures=0,
                                created_at=now or utcnow())
            session.add(operator)
        return operator

    def find_operator(self, tid: str, opno: str) -> Operator | None:
        with self._read() as session:
            return session.get(Operator, (tid, opno))

    def list_operators(self, tid: str) -> list[Operator]:
        with self._read() as session:
            return list(session.scalars(select(Operator).where(Operator.tid == tid).order_by(Operator.opno)))

    def count_operator_failure(self, tid: str, opno: str, *, lock_after: int, now: datetime | None = None,
                               source: str = "tms") -> Operator:
        """One more wrong password; locks the operator (with history and event) at ``lock_after``."""
        at = now or utcnow()
        with self._write() as session:
            operator = self._operator(session, tid, opno)
            operator.failures += 1
            if operator.status == "active" and operator.failures >= lock_after:
                self._set_operator_status(session, operator, "locked", f"{operator.failures} wrong passwords",
                                          source, at)
        return operator

    def reset_operator_failures(self, tid: str, opno: str) -> None:
        with self._write() as session:
            self._operator(session, tid, opno).failures = 0

    def change_operator_status(self, tid: str, opno: str, new: str, *, reason: str | None = None,
                               actor: str | None = None, now: datetime | None = None) -> Operator:
        at = now or utcnow()
        with self._write() as session:
            operator = self._operator(session, tid, opno)
            check_transition(OPERATOR_TRANSITIONS, "operator", f"{tid}/{opno}", operator.status, new)
            self._set_operator_status(session, operator, new, reason, actor, at)
        return operator

    @staticmethod
    def _operator(session: Any, tid: str, opno: str) -> Operator:
        operator = session.get(Operator, (tid, opno))
        if operator is None:
            raise NotFound("operator", f"{tid}/{opno}")
        return operator

    @staticmethod
    def _set_operator_status(session: Any, operator: Operator, new: str, reason: str | None,
                             actor: str | None, at: datetime) -> None:
        old, operator.status = operator.status, new
        if new == "locked":
            operator.locked_at, operator.lock_source = at, actor
        else:
            operator.failures, operator.locked_at, operator.lock_source = 0, None, None
        record_status_change(session, "operator", f"{operator.tid}/{operator.opno}", old, new,
                             reason=reason, actor=actor, at=at, tid=operator.tid)
