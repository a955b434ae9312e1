"""Terminal parameters: a template with per-merchant and per-terminal overrides, versioned.

Parameters are the tags of the parameter download (``iso8583.fields.PARAM_TAGS``), named
by tag (``12``) or by alias (``receive_timeout``). Every change takes the next global
version and is an ``Event`` (``param_change``); the host answers a terminal whose last
complete download is older with processing requirement ``1`` and serves the effective
set on 0800/360 (364).
"""

from __future__ import annotations

from posdoctor.iso8583.errors import Iso8583Error
from posdoctor.iso8583.fields import PARAM_TAGS, encode_param_tags
from posdoctor.store import InvalidValue, Store
from posdoctor.store.validate import validate_mid, validate_tid

ALIASES: dict[str, str] = {
    "receive_timeout": "12", "dial_retries": "13", "tip": "18", "tip_percent": "19",
    "manual_entry": "20", "auto_signoff": "21", "merchant_name": "22", "txn_retries": "23",
    "key_index": "25", "txn_flags": "26", "host": "90", "port": "91", "tpdu": "92",
    "backup_host": "93", "backup_port": "94",
}
TAG_NAMES = {tag: name for name, tag in ALIASES.items()}


def param_tag(key: str) -> str:
    """The tag for a tag number or alias; InvalidValue for anything else."""
    tag = ALIASES.get(key.lower(), key)
    if tag not in PARAM_TAGS:
        known = ", ".join(f"{t}/{TAG_NAMES.get(t, '?')}" for t in PARAM_TAGS)
        raise InvalidValue("key", f"未知参数 {key}(可选: {known})", f"unknown parameter {key} (known: {known})")
    return tag


def validate_param(tag: str, value: str) -> str:
    """The value as the download will carry it, or InvalidValue (too long, not digits...)."""
    spec = PARAM_TAGS[tag]
    try:
        encode_param_tags({tag: value})
    except (Iso8583Error, ValueError) as exc:
        raise InvalidValue("value", f"参数 {tag}({spec.zh})的值无效: {exc}",
                           f"parameter {tag} ({spec.en}) value is invalid: {exc}") from None
    return value


def set_param(store: Store, key: str, value: str | None, *, mid: str | None = None, tid: str | None = None,
              actor: str | None = None, reason: str | None = None) -> int:
    """Set (or, with ``value`` None, remove) a parameter; returns the new version."""
    tag = param_tag(key)
    if value is not None:
        validate_param(tag, value)
    if mid is not None:
        validate_mid(mid)
    if tid is not None:
        validate_tid(tid)
    return store.set_param(tag, value, mid=mid, tid=tid, actor=actor, reason=reason)


def effective_params(store: Store, tid: str) -> tuple[int, dict[str, str]]:
    """(version, tag -> value) of the TMS parameters of one terminal (template < merchant
    < terminal). The host adds its own defaults, the merchant name and where it listens
    underneath these."""
    return store.effective_params(tid)


def params_report(store: Store, tid: str) -> dict[str, object]:
    """What ``params show TID`` prints: version, values with their origin, staleness."""
    terminal = store.get_terminal(tid)
    version, values = store.effective_params(tid)
    origin: dict[str, str] = {}
    for row in store.param_rows():
        if row.value is None:
            continue
        if (row.scope, row.owner) == ("template", "") and row.name not in origin:
            origin[row.name] = "template"
        elif (row.scope, row.owner) == ("merchant", terminal.mid) and origin.get(row.name) != "terminal":
            origin[row.name] = "merchant"
        elif (row.scope, row.owner) == ("terminal", tid):
            origin[row.name] = "terminal"
    downloaded = terminal.params_version
    return {
        "tid": tid, "mid": terminal.mid, "version": version, "downloaded_version": downloaded,
        "stale": version > (downloaded or 0),
        "params": [{"tag": tag, "name": TAG_NAMES.get(tag), "value": values[tag], "from": origin.get(tag)}
                   for tag in sorted(values)],
    }
