"""The day's scheduler: a fleet action (the host stopping, starting) is a barrier.

Actions take real time (sockets); the scheduler must not let that decide what the world
looks like to a terminal. Here every action takes longer in real time than the scheduler
needs to hand out the next one, as on a slow machine.
"""

from __future__ import annotations

import asyncio
from datetime import date
from types import SimpleNamespace

import pytest

from posdoctor.sim import day as day_module
from posdoctor.sim.clock import SimClock
from posdoctor.sim.day import Day

SLOW_S = 0.05


def _world(plans: list[list[tuple[float, str, object]]]) -> SimpleNamespace:
    terminals = [SimpleNamespace(index=i, tid=f"T{i}", plan=list(plan), cursor=0) for i, plan in enumerate(plans)]
    return SimpleNamespace(terminals=terminals, clock=SimClock(date(2025, 3, 1), 0.0),
                           config=SimpleNamespace(progress=None))


async def test_a_fleet_action_runs_alone_between_the_actions_before_and_after_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    host = {"up": True}

    async def action(world, term, name, arg) -> None:  # noqa: ANN001
        log.append(f"{name} starts, host {'up' if host['up'] else 'down'}")
        await asyncio.sleep(SLOW_S)
        log.append(f"{name} ends")

    async def stop_host() -> None:
        log.append("stop starts")
        await asyncio.sleep(SLOW_S)
        host["up"] = False
        log.append("stop ends")

    monkeypatch.setattr(day_module, "run_action", action)
    world = _world([[(50.0, "sale-before", None), (150.0, "sale-during", None)], [(160.0, "sale-during-2", None)]])
    day = Day(world, concurrency=4)
    day.push_fleet(100.0, stop_host)
    await day.run()
    assert log[:6] == ["sale-before starts, host up", "sale-before ends", "stop starts", "stop ends",
                       "sale-during starts, host down", "sale-during-2 starts, host down"]
    assert sorted(log[6:]) == ["sale-during ends", "sale-during-2 ends"]
    assert day.actions == 3 and world.clock.offset >= 160.0


async def test_terminals_still_work_side_by_side_between_fleet_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    running = {"now": 0, "most": 0}

    async def action(world, term, name, arg) -> None:  # noqa: ANN001
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        await asyncio.sleep(SLOW_S)
        running["now"] -= 1

    monkeypatch.setattr(day_module, "run_action", action)
    world = _world([[(10.0 + i, "sale", None)] for i in range(6)])
    day = Day(world, concurrency=4)
    day.push_fleet(500.0, lambda: None)
    await day.run()
    assert running["most"] == 4 and day.actions == 6
