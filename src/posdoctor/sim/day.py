"""The simulated day: a discrete-event scheduler over the fleet's plans.

Every terminal's next action sits in one heap ordered by virtual time; `concurrency`
workers take the earliest, move the clock there (and, with a speed, wait for real time
to catch up) and run it. A terminal's next action enters the heap only when its current
one is done, so a terminal never does two things at once. Fleet actions (the host going
down, a site losing power) are entries of the same heap, and barriers in it: one starts
when every action before it is done, and nothing after it starts until it is done. So
what a fleet action changes (the host stopped, then started again) holds for exactly the
actions planned inside its window, however fast the machine runs.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from posdoctor.sim.actions import run_action
from posdoctor.sim.plan import phase_of

log = logging.getLogger(__name__)

__all__ = ["Day"]

DONE = (0.0, "done", None)
FleetAction = Callable[[], Awaitable[None] | None]
PROGRESS_EVERY_S = 0.25


class Day:
    def __init__(self, world: Any, concurrency: int) -> None:
        self.world = world
        self.concurrency = max(1, concurrency)
        self.heap: list[tuple[float, int, int, Any]] = []
        self._seq = itertools.count()
        self.done_terminals = 0
        self.actions = 0
        self.errors = 0
        self._last_progress = 0.0
        self._idle = asyncio.Event()
        self.running = 0
        self._fleet_running = False

    def push_terminal(self, index: int) -> None:
        term = self.world.terminals[index]
        if term.cursor < len(term.plan):
            heapq.heappush(self.heap, (term.plan[term.cursor][0], next(self._seq), index, None))
        else:
            self.done_terminals += 1

    def push_fleet(self, at: float, action: FleetAction) -> None:
        heapq.heappush(self.heap, (at, next(self._seq), -1, action))

    async def run(self) -> None:
        for term in self.world.terminals:
            self.push_terminal(term.index)
        self.world.clock.jump(self.world.clock.offset)  # pacing (with a speed) starts now
        workers = [asyncio.create_task(self._worker()) for _ in range(self.concurrency)]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
        self.report(force=True)

    def _must_wait(self) -> bool:
        """A fleet action is running, or is next while terminals are still busy: it
        changes the world for everyone, so it runs alone (see the module docstring)."""
        return self._fleet_running or (self.heap[0][2] < 0 and self.running > 0)

    async def _worker(self) -> None:
        clock = self.world.clock
        while True:
            if not self.heap or self._must_wait():
                if not self.heap and self.running == 0:
                    self._idle.set()
                    return
                self._idle.clear()
                await asyncio.sleep(0.005)
                continue
            at, _seq, index, fleet_action = heapq.heappop(self.heap)
            self.running += 1
            self._fleet_running = index < 0  # nothing else was running (`_must_wait`)
            try:
                await clock.wait_until(at)
                if index < 0:
                    result = fleet_action()
                    if asyncio.iscoroutine(result):
                        await result
                else:
                    term = self.world.terminals[index]
                    _at, action, arg = term.plan[term.cursor]
                    try:
                        await run_action(self.world, term, action, arg)
                    except Exception:  # a bug in one terminal's day must not stop the fleet's
                        log.exception("terminal %s action %s failed", term.tid, action)
                        self.errors += 1
                        term.count("sim_error", False)
                    term.plan[term.cursor] = DONE  # what ran is forgotten (memory)
                    term.cursor += 1
                    self.actions += 1
                    self.push_terminal(index)
            finally:
                self.running -= 1
                if index < 0:
                    self._fleet_running = False
            self.report()

    def report(self, force: bool = False) -> None:
        progress = self.world.config.progress
        now = time.monotonic()
        if progress is None or (not force and now - self._last_progress < PROGRESS_EVERY_S):
            return
        self._last_progress = now
        phase, label = phase_of(self.world.clock.offset)
        progress({"phase": phase if not force else "done", "label": label, "clock": self.world.clock.hhmm(),
                  "done": self.done_terminals, "total": len(self.world.terminals), "actions": self.actions,
                  **self.world.tally()})
