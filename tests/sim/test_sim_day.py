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
from posdoctor.sim.planedit import insert_action

SLOW_S = 0.05


def _world(plans: list[list[tuple[float, str, object]]]) -> SimpleNamespace:
    terminals = [SimpleNamespace(index=i, tid=f"T{i}", plan=list(plan), cursor=0, queued=None) for i, plan in enumerate(plans)]
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


def _count_overlap(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Slow actions that count how many run at once (``most``)."""
    running = {"now": 0, "most": 0}

    async def action(world, term, name, arg) -> None:  # noqa: ANN001
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        await asyncio.sleep(SLOW_S)
        running["now"] -= 1

    monkeypatch.setattr(day_module, "run_action", action)
    return running


async def test_terminals_still_work_side_by_side_between_fleet_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    running = _count_overlap(monkeypatch)
    world = _world([[(10.0 + i, "sale", None)] for i in range(6)])
    day = Day(world, concurrency=4)
    day.push_fleet(500.0, lambda: None)
    await day.run()
    assert running["most"] == 4 and day.actions == 6


async def test_the_clock_does_not_run_ahead_of_a_small_fleet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fewer terminals than workers: the evening close of one terminal must not be handed
    out (moving the clock to the evening) while another still works through its morning."""
    started: dict[str, float] = {}

    async def action(world, term, name, arg) -> None:  # noqa: ANN001
        started[name] = world.clock.offset
        await asyncio.sleep(SLOW_S / 5)

    monkeypatch.setattr(day_module, "run_action", action)
    world = _world([[(9 * 3600.0, "morning-sale", None), (10 * 3600.0, "late-morning-sale", None)],
                    [(21 * 3600.0, "evening-close", None)]])
    day = Day(world, concurrency=4)
    await day.run()
    assert started["morning-sale"] < 9 * 3600.0 + day_module.LOOKAHEAD_S
    assert started["late-morning-sale"] < 10 * 3600.0 + day_module.LOOKAHEAD_S
    assert started["evening-close"] >= 21 * 3600.0 and day.actions == 3


async def test_actions_due_close_together_still_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    running = _count_overlap(monkeypatch)
    spread = day_module.LOOKAHEAD_S * 0.6
    world = _world([[(1000.0 + spread * i, "sale", None)] for i in range(3)])
    day = Day(world, concurrency=4)
    await day.run()
    assert running["most"] == 2 and day.actions == 3  # 0 and 1 overlap, 1 and 2 overlap; never 0 and 2


async def test_an_action_a_fleet_action_adds_runs_at_its_own_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Power comes back at 14:00 and every terminal starts up a minute later: not at the
    time of whatever it had planned next (its close at 21:00)."""
    started: list[tuple[str, str, float]] = []

    async def action(world, term, name, arg) -> None:  # noqa: ANN001
        started.append((term.tid, name, world.clock.offset))

    def power_back() -> None:
        for term in world.terminals:
            insert_action(term, 14 * 3600.0 + 60, "power_on")

    monkeypatch.setattr(day_module, "run_action", action)
    world = _world([[(9 * 3600.0, "sale", None), (21 * 3600.0, "close", None)],
                    [(20 * 3600.0, "sale", None), (21.5 * 3600.0, "close", None)]])
    day = Day(world, concurrency=4)
    day.push_fleet(14 * 3600.0, power_back)
    await day.run()
    assert [(tid, name) for tid, name, _at in started] == [
        ("T0", "sale"), ("T0", "power_on"), ("T1", "power_on"), ("T1", "sale"), ("T0", "close"), ("T1", "close")]
    power_ons = [at for _tid, name, at in started if name == "power_on"]
    assert all(14 * 3600.0 + 60 <= at < 14 * 3600.0 + 60 + day_module.LOOKAHEAD_S for at in power_ons)
    assert day.actions == 6 and day.done_terminals == 2


async def test_a_terminal_whose_power_went_off_during_its_action_uploads_nothing() -> None:
    """The power was cut while the action ran (another terminal's strike): no upload is
    tried, so no "cannot reach the TMS" lands in the log of a terminal without power."""
    from posdoctor.sim.actions import upload_logs

    tried: list[str] = []

    class Telemetry:
        async def upload_logs(self, client: object) -> int:
            tried.append("upload")
            return 0

    world = SimpleNamespace(tms_client=lambda term: None)
    term = SimpleNamespace(telemetry=Telemetry(), powered=False, state=SimpleNamespace(events=[]))
    await upload_logs(world, term)
    assert tried == []
    term.powered = True
    await upload_logs(world, term)
    assert tried == ["upload"]
