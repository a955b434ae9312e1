"""Route keys: which handler a request goes to (used by the host's route table).

- management (MTI class 3, 5, 8: 0800, 0820, 0500, 0320...): MTI + 60.3, e.g. ``0800.004``,
  ``0500.201``, ``0320.201``;
- financial (class 1, 2, 4: 0100, 0200, 0220, 0400...): MTI + F3 + F25 + 60.1, e.g.
  ``0200.000000.00.22`` (sale), ``0400.000000.00.22`` (its reversal);
- any other class: the MTI alone (no route will match it).

A message that lacks a field its key needs raises `DecodeError` (the host answers 30).
"""

from __future__ import annotations

from collections.abc import Mapping

from posdoctor.iso8583.errors import DecodeError

__all__ = ["route_key", "MANAGEMENT_CLASSES", "FINANCIAL_CLASSES"]

MANAGEMENT_CLASSES = frozenset("358")
FINANCIAL_CLASSES = frozenset("124")


def route_key(msg: Mapping[str, str]) -> str:
    mti = msg.get("t", "")
    if len(mti) != 4 or not mti.isdigit():
        raise DecodeError("t", 0, f"MTI {mti!r} is not 4 digits")
    kind = mti[1]
    if kind in MANAGEMENT_CLASSES:
        return f"{mti}.{_field60(msg, mti)[8:11]}"
    if kind in FINANCIAL_CLASSES:
        return f"{mti}.{_required(msg, '3', 6, mti)}.{_required(msg, '25', 2, mti)}.{_field60(msg, mti)[:2]}"
    return mti


def _field60(msg: Mapping[str, str], mti: str) -> str:
    value = msg.get("60", "")
    if len(value) < 11:
        raise DecodeError("60", 0, f"{mti} needs field 60 with 60.1-60.3 (11 digits) to be routed, got {value!r}")
    return value


def _required(msg: Mapping[str, str], key: str, width: int, mti: str) -> str:
    value = msg.get(key, "")
    if len(value) != width:
        raise DecodeError(key, 0, f"{mti} needs field {key} ({width} digits) to be routed, got {value!r}")
    return value
