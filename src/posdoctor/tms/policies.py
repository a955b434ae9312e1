"""Policies: minimum app version, allowed apps, transaction types by merchant category,
device and operator rules. Each change is an ``Event`` (``policy_change``, old/new/actor)
and a change-feed row, so running hosts apply it at once.

Names and values (``policy set NAME VALUE``):

- ``min_app_version``: e.g. ``1.2.0`` or the terminal's 6-digit form ``010200``; a
  sign-in from an older app is answered 07. ``none`` removes it.
- ``allowed_apps``: comma list of app names the TMS accepts (reported in heartbeats).
- ``signin_requires_serial``: ``true``/``false`` (default false): refuse a sign-in whose
  field 62 carries no device serial.
- ``operator_max_failures``: wrong passwords before an operator is locked (default 5).
- ``mcc.NNNN``: comma list of transaction kinds merchants of that category may use
  (e.g. ``mcc.5411 sale,balance``); other kinds are answered 58.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from posdoctor.store import InvalidValue, Store
from posdoctor.store.lifecycle import validate_txn_types

DEFAULTS: dict[str, Any] = {
    "min_app_version": None,
    "allowed_apps": None,
    "signin_requires_serial": False,
    "operator_max_failures": 5,
}
_VERSION = re.compile(r"[0-9]+(\.[0-9]+){0,3}")
_MCC_POLICY = re.compile(r"mcc\.([0-9]{4})")
_NONE = ("", "none", "null", "-")


def version_key(version: str) -> tuple[int, ...]:
    """Comparable form: ``1.2.0`` -> (1, 2, 0); the 6-digit ``010200`` -> (1, 2, 0)."""
    text = version.strip()
    if len(text) == 6 and text.isdigit():
        return (int(text[:2]), int(text[2:4]), int(text[4:]))
    parts = tuple(int(p) for p in re.findall(r"[0-9]+", text))
    while len(parts) > 1 and parts[-1] == 0:
        parts = parts[:-1]
    return parts


def version_below(version: str, minimum: str) -> bool:
    def padded(key: tuple[int, ...]) -> tuple[int, ...]:
        return key + (0,) * (4 - len(key))

    return padded(version_key(version)) < padded(version_key(minimum))


def _invalid(name: str, zh: str, en: str) -> InvalidValue:
    return InvalidValue(name, f"策略 {name}: {zh}", f"policy {name}: {en}")


def _parse_version(name: str, text: str) -> str | None:
    if text.lower() in _NONE:
        return None
    if not _VERSION.fullmatch(text):
        raise _invalid(name, "版本号格式应为 1.2.0 或 010200", "version must look like 1.2.0 or 010200")
    return text


def _parse_apps(name: str, text: str) -> list[str] | None:
    if text.lower() in _NONE:
        return None
    apps = [a.strip() for a in text.split(",") if a.strip()]
    if not apps or any(not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", a) for a in apps):
        raise _invalid(name, "应用名只能是字母、数字或 _ . -，以逗号分隔", "app names are letters, digits, _ . -, comma separated")
    return apps


def _parse_bool(name: str, text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise _invalid(name, "应为 true 或 false", "must be true or false")


def _parse_positive(name: str, text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 99:
        raise _invalid(name, "应为1到99的整数", "must be a whole number from 1 to 99")
    return int(text)


def _parse_kinds(name: str, text: str) -> list[str] | None:
    if text.lower() in _NONE:
        return None
    return validate_txn_types([t.strip() for t in text.split(",") if t.strip()])


PARSERS: dict[str, Callable[[str, str], Any]] = {
    "min_app_version": _parse_version,
    "allowed_apps": _parse_apps,
    "signin_requires_serial": _parse_bool,
    "operator_max_failures": _parse_positive,
}


def parse_policy(name: str, text: str) -> Any:
    """The stored (JSON) value of ``policy set NAME TEXT``; InvalidValue when bad."""
    if _MCC_POLICY.fullmatch(name):
        return _parse_kinds(name, text)
    parser = PARSERS.get(name)
    if parser is None:
        known = ", ".join([*PARSERS, "mcc.NNNN"])
        raise InvalidValue("name", f"未知策略 {name}(可选: {known})", f"unknown policy {name} (known: {known})")
    return parser(name, text.strip())


def set_policy(store: Store, name: str, text: str, *, actor: str | None = None, reason: str | None = None) -> Any:
    """Parse and store a policy; returns the new value (None = back to the default)."""
    value = parse_policy(name, text)
    store.set_policy(name, value, actor=actor, reason=reason)
    return value


@dataclass(frozen=True, slots=True)
class Policies:
    """The policy values with defaults filled in (what the host and the TMS read)."""

    min_app_version: str | None = None
    allowed_apps: tuple[str, ...] | None = None
    signin_requires_serial: bool = False
    operator_max_failures: int = 5
    mcc_kinds: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Policies:
        merged = {**DEFAULTS, **{k: v for k, v in values.items() if k in DEFAULTS and v is not None}}
        apps = merged["allowed_apps"]
        mcc = {m.group(1): tuple(v) for k, v in values.items() if (m := _MCC_POLICY.fullmatch(k)) and v}
        return cls(merged["min_app_version"], tuple(apps) if apps else None,
                   bool(merged["signin_requires_serial"]), int(merged["operator_max_failures"]), mcc)

    def kinds_for_mcc(self, mcc: str | None) -> tuple[str, ...] | None:
        """Kinds a merchant category may use, or None when no policy restricts it."""
        if mcc is None or not self.mcc_kinds:
            return None
        return self.mcc_kinds.get(mcc)


def load_policies(store: Store) -> Policies:
    return Policies.from_values(store.policies())


def policy_table(store: Store) -> list[dict[str, Any]]:
    """Every policy (defaults included) with who set it, for ``policy show``."""
    rows = {row.name: row for row in store.policy_rows()}
    names = [*DEFAULTS, *sorted(n for n in rows if n not in DEFAULTS)]
    table = []
    for name in names:
        row = rows.get(name)
        table.append({"name": name, "value": row.value if row is not None else DEFAULTS.get(name),
                      "default": row is None, "actor": row.actor if row else None,
                      "reason": row.reason if row else None,
                      "updated_at": row.updated_at.isoformat() if row else None})
    return table
