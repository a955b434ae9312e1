"""`run_simulation(config) -> SimulationResult`: build the world, place the faults, live
through the day, and return the ground truth with the fleet's outcomes.

    result = run_simulation(SimConfig(terminals=200, faults=[FaultSpec("keys.tmk_mismatch")]))
    result.truth      # {tid: [cause, ...]}: what was injected (never in the store)
    result.db_url     # where the evidence is: the doctor reads only this

`async_run_simulation` is the same inside a running event loop.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

from posdoctor.sim.actions import run_action
from posdoctor.sim.config import SimConfig
from posdoctor.sim.day import Day
from posdoctor.sim.faults import FAULTS, Fault, Hit, Injection, call_hook
from posdoctor.sim.plan import plan_day
from posdoctor.sim.planedit import insert_action
from posdoctor.sim.upgrades import setup_campaigns
from posdoctor.sim.result import SimulationResult, build_result
from posdoctor.sim.world import World

__all__ = ["run_simulation", "async_run_simulation", "place_faults", "UnknownFault"]


class UnknownFault(ValueError):
    def __init__(self, what: str, zh: str, en: str) -> None:
        super().__init__(f"{zh} / {en}")
        self.what, self.zh, self.en = what, zh, en


def run_simulation(config: SimConfig) -> SimulationResult:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency, but not a required one
        return asyncio.run(async_run_simulation(config))
    return uvloop.run(async_run_simulation(config))


def _home(config: SimConfig) -> Path:
    if config.home is not None:
        return config.home
    from posdoctor.store.config import load_settings

    return load_settings().ensure_home()


def check_faults(config: SimConfig) -> None:
    """Every cause known, every TID in the fleet (before anything is built)."""
    last_tid = 10000000 + config.terminals
    for spec in config.faults:
        if spec.cause not in FAULTS:
            raise UnknownFault(spec.cause, f"未知的故障原因 {spec.cause}", f"unknown cause {spec.cause}")
        if spec.tid is not None and not 10000001 <= int(spec.tid) <= last_tid:
            raise UnknownFault(spec.tid, f"终端 {spec.tid} 不在模拟车队中 (10000001..{last_tid})",
                               f"terminal {spec.tid} is not in the simulated fleet (10000001..{last_tid})")


def place_faults(world: World, config: SimConfig) -> list[tuple[Fault, Hit]]:
    """Choose targets, variants and strike times from the seed (deterministic)."""
    rng = random.Random(config.seed * 7919 + 17)
    taken: set[str] = {spec.tid for spec in config.faults if spec.tid}
    hits = []
    for spec in config.faults:
        fault = FAULTS[spec.cause]
        if spec.tid is not None:
            term = world.by_tid[spec.tid]
        else:
            free = [t for t in world.terminals if t.tid not in taken] or list(world.terminals)
            suited = [t for t in free if fault.prefers is None or fault.prefers(t)] or free
            term = suited[rng.randrange(len(suited))]
        taken.add(term.tid)
        variant = spec.variant if spec.variant is not None else rng.randrange(len(fault.variants))
        variant %= len(fault.variants)
        injection = Injection(fault.cause, term.tid, variant, fault.variants[variant], fault.scope)
        hit = Hit(world, term, variant, random.Random(rng.getrandbits(32)), injection)
        window = fault.window(variant)
        if window is not None and fault.strike is not None:
            at = rng.uniform(*window)
            injection.detail["_strike_s"] = at
            injection.at = world.clock.at(at).strftime("%H:%M")
        hits.append((fault, hit))
    return hits


def _affected(world: World, fault: Fault, hit: Hit) -> list[str]:
    if hit.injection.affected:
        return hit.injection.affected
    if fault.scope == "fleet":
        return [t.tid for t in world.terminals]
    if fault.scope == "merchant":
        return [t.tid for t in world.terminals if t.mid == hit.term.mid]
    if fault.scope == "site":
        return [t.tid for t in world.terminals if t.site == hit.term.site]
    return [hit.term.tid]


class Simulation:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.world = World.open(config, _home(config))
        self.hits: list[tuple[Fault, Hit]] = []

    async def build(self) -> None:
        world, config = self.world, self.config
        world.create_terminals()
        world.enable_campaigns()
        rng = random.Random(config.seed * 31 + 5)
        world.fresh.update(t.tid for t in world.terminals if rng.random() < config.fresh_share)
        for term in world.terminals:
            term.plan = plan_day(config.seed, term.index, txns=config.txns_per_terminal,
                                 heartbeats=config.heartbeats, upgrade=False, cards=16)
        self.hits = place_faults(world, config)
        for index, (fault, hit) in enumerate(self.hits):
            if fault.needs and not world.can(fault.needs):
                hit.injection.skipped = f"the TMS has no {fault.needs} yet"
                continue
            await call_hook(fault.setup, hit)
            strike_s = hit.strike_at()
            if strike_s is not None:
                insert_action(hit.term, strike_s, "strike", index)
            await call_hook(fault.plan, hit)
        await asyncio.to_thread(self._register)
        for fault, hit in self.hits:
            if not hit.injection.skipped:
                hit.term.causes += (fault.cause,)
        if world.campaigns is not None:
            await asyncio.to_thread(setup_campaigns, world)
        await world.start_host()
        await world.install_tables()
        world.attach_telemetry()
        world.strike = self.strike  # type: ignore[attr-defined]
        for fault, hit in self.hits:
            if not hit.injection.skipped:
                await call_hook(fault.install, hit)

    def _register(self) -> None:
        self.world.register()
        self.world.provision()

    async def strike(self, term: Any, index: int) -> None:
        fault, hit = self.hits[index]
        if hit.injection.skipped:
            return
        hit.injection.detail["struck_at"] = self.world.clock.local().strftime("%H:%M:%S")
        await call_hook(fault.strike, hit)

    async def run(self) -> SimulationResult:
        started = time.monotonic()
        world = self.world
        try:
            await self.build()
            built = time.monotonic()
            day = Day(world, min(self.config.concurrency, max(1, len(world.terminals))))
            world.day = day
            for hook in world.day_hooks:
                hook(day)
            await day.run()
            await world.after_day()
            for fault, hit in self.hits:
                hit.injection.affected = _affected(world, fault, hit)
        finally:
            await world.close()
        return build_result(world, [hit.injection for _f, hit in self.hits], setup_s=built - started,
                            day_s=time.monotonic() - built)


async def async_run_simulation(config: SimConfig) -> SimulationResult:
    check_faults(config)
    return await Simulation(config).run()


__all__ += ["Simulation", "check_faults", "run_action"]
