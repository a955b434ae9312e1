"""Each terminal's day as a list of timed actions, drawn from the seed.

Times are seconds after local midnight. Everything random about a terminal's day
(when it powers on, signs in, which cards customers present, the amounts) is drawn here
from ``Random(seed, index)``, so the same seed gives the same day whatever the order in
which the fleet's work completes.
"""

from __future__ import annotations

import random
from typing import Any

__all__ = ["Action", "plan_day", "H", "PHASES", "phase_of"]

H = 3600.0
Action = tuple[float, str, Any]

PHASES: tuple[tuple[float, str, str], ...] = (
    (0.0, "power_on", "开机与初始化 power-on and initialisation"),
    (7.75 * H, "sign_in_storm", "早高峰签到 morning sign-in storm"),
    (9.0 * H, "business", "营业交易 business day"),
    (21.0 * H, "settlement", "结算与签退 settlement and sign-off"),
    (23.5 * H, "done", "完成 done"),
)


def phase_of(offset_s: float) -> tuple[str, str]:
    current = PHASES[0]
    for phase in PHASES:
        if offset_s >= phase[0]:
            current = phase
    return current[1], current[2]


def _amount(rng: random.Random) -> int:
    """A shop's ticket: mostly 10-300 yuan, in fen."""
    return max(100, int(rng.lognormvariate(8.5, 0.9)) // 10 * 10)


def _poisson(rng: random.Random, mean: float) -> int:
    count, limit, product = 0, pow(2.718281828459045, -mean), rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def plan_day(seed: int, index: int, *, txns: float, heartbeats: int, upgrade: bool, cards: int) -> list[Action]:
    rng = random.Random(seed * 1_000_003 + index)
    plan: list[Action] = [(rng.uniform(5.5 * H, 7.5 * H), "power_on", None)]
    # the morning storm: most shops open between 08:00 and 08:40
    plan.append((min(8.0 * H + rng.expovariate(1 / 900.0), 9.5 * H), "open", None))
    count = max(1, _poisson(rng, txns))
    for _ in range(count):
        at = rng.uniform(9.0 * H, 20.5 * H)
        roll = rng.random()
        kind = "sale" if roll < 0.70 else "balance" if roll < 0.82 else "void" if roll < 0.91 else "refund"
        plan.append((at, kind, (_amount(rng), rng.randrange(cards))))
    for k in range(heartbeats):
        start = 9.0 * H + k * (11.0 * H / max(1, heartbeats))
        plan.append((start + rng.uniform(0, 1800), "heartbeat", None))
    if upgrade:
        plan.append((rng.uniform(13.0 * H, 14.5 * H), "upgrade", None))
    plan.append((rng.uniform(21.0 * H, 22.0 * H), "close", None))
    plan.sort(key=lambda action: action[0])
    return plan
