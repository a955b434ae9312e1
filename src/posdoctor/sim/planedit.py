"""Small edits of a terminal's planned day that faults use."""

from __future__ import annotations

import bisect
from typing import Any

__all__ = ["insert_action", "add_sales_after", "drop_after", "last_sale_time"]


def insert_action(term: Any, at: float, action: str, arg: Any = None) -> None:
    """Insert into the not-yet-run part of the plan, kept in time order."""
    times = [a[0] for a in term.plan]
    position = max(bisect.bisect_right(times, at), term.cursor)
    term.plan.insert(position, (at, action, arg))


def add_sales_after(term: Any, at: float, count: int, *, gap_s: float = 600.0, amount: int = 5000,
                    kind: str = "sale") -> None:
    for i in range(count):
        insert_action(term, at + gap_s * (i + 1), kind, (amount + 10 * i, i))


def drop_after(term: Any, at: float, kinds: tuple[str, ...]) -> None:
    """Remove planned actions of `kinds` after `at` (the merchant stops doing them)."""
    term.plan[:] = [a for i, a in enumerate(term.plan) if i < term.cursor or a[0] <= at or a[1] not in kinds]


def last_sale_time(term: Any) -> float | None:
    sales = [a[0] for a in term.plan if a[1] == "sale"]
    return sales[-1] if sales else None
