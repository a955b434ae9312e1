"""The simulated day: a discrete-event scheduler over the fleet's plans.

Every terminal's next action sits in one heap ordered by virtual time; `concurrency`
workers take the earliest, move the clock there (and, with a speed, wait for real time
to catch up) and run it. A terminal's next action enters the heap only when its current
one is done, so a terminal never does two things at once.

Actions take real time (sockets), and while one runs the clock must not run away from
it: a worker starts an action only if it is due within `LOOKAHEAD_S` of the earliest
action still running. Without that bound a small fleet (fewer terminals than workers)
would hand every terminal's next action out at once and the clock would jump to the
latest of them: a terminal's 09:00 sale would run, and be stamped, at 21:00.

Fleet actions (the host going down, a site losing power) are entries of the same heap,
and barriers in it: one starts when every action before it is done, and nothing after
it starts until it is done. So what a fleet action changes (the host stopped, then
started again) holds for exactly the actions planned inside its window, however fast
the machine runs. A fleet action may add actions to terminals' plans (power back on:
each terminal starts up again); terminals whose next action moved earlier are queued
again at its time when the fleet action ends.
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

__all__ = ["Day", "LOOKAHEAD_S"]

DONE = (0.0, "done", None)
FleetAction = Callable[[], Awaitable[None] | None]
PROGRESS_EVERY_S = 0.25
LOOKAHEAD_S = 60.0
"""How far (virtual seconds) an action may start ahead of the earliest one still running:
the most by which a terminal's clock readings can be late."""

Entry = tuple[float, int, int, Any]
"""(virtual time, sequence, terminal index or -1 for a fleet action, fleet action)."""


class Day:
    def __init__(self, world: Any, concurrency: int) -> None:
        self.world = world
        self.concurrency = max(1, concurrency)
        self.heap: list[Entry] = []
        self._seq = itertools.count()
        self.done_terminals = 0
        self.actions = 0
        self.errors = 0
        self._last_progress = 0.0
        self._changed = asyncio.Condition()
        self._running: dict[int, float] = {}
        """sequence -> virtual time of every action running now."""
        self._fleet_running = False

    @property
    def running(self) -> int:
        return len(self._running)

    def push_terminal(self, index: int) -> None:
        term = self.world.terminals[index]
        if term.cursor < len(term.plan):
            entry = (term.plan[term.cursor][0], next(self._seq), index, None)
            term.queued = entry
            heapq.heappush(self.heap, entry)
        else:
            term.queued = None
            self.done_terminals += 1

    def push_fleet(self, at: float, action: FleetAction) -> None:
        heapq.heappush(self.heap, (at, next(self._seq), -1, action))

    def requeue_moved(self) -> None:
        """Queue again, at its new time, every waiting terminal whose next action is now
        earlier than its place in the heap (the old entry is skipped when it comes up)."""
        for term in self.world.terminals:
            entry = term.queued
            if entry is not None and term.plan[term.cursor][0] < entry[0]:
                self.push_terminal(term.index)

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

    def _stale(self, entry: Entry) -> bool:
        index = entry[2]
        return index >= 0 and self.world.terminals[index].queued is not entry

    def _may_start(self, entry: Entry) -> bool:
        """Nothing starts while a fleet action runs; a fleet action starts alone (see the
        module docstring); a terminal's action starts within the lookahead."""
        if self._fleet_running:
            return False
        if not self._running:
            return True
        return entry[2] >= 0 and entry[0] <= min(self._running.values()) + LOOKAHEAD_S

    async def _next(self) -> Entry | None:
        """The next entry to run, once it may start; None when the day is over."""
        async with self._changed:
            while True:
                while self.heap and self._stale(self.heap[0]):
                    heapq.heappop(self.heap)
                if not self.heap and not self._running:
                    self._changed.notify_all()
                    return None
                if self.heap and self._may_start(self.heap[0]):
                    entry = heapq.heappop(self.heap)
                    self._running[entry[1]] = entry[0]
                    self._fleet_running = entry[2] < 0
                    if entry[2] >= 0:
                        self.world.terminals[entry[2]].queued = None
                    return entry
                await self._changed.wait()

    async def _finished(self, entry: Entry) -> None:
        async with self._changed:
            del self._running[entry[1]]
            if entry[2] < 0:
                self._fleet_running = False
            self._changed.notify_all()

    async def _worker(self) -> None:
        clock = self.world.clock
        while (entry := await self._next()) is not None:
            at, _seq, index, fleet_action = entry
            try:
                await clock.wait_until(at)
                if index < 0:
                    result = fleet_action()
                    if asyncio.iscoroutine(result):
                        await result
                    self.requeue_moved()
                else:
                    await self._run_terminal(index)
            finally:
                await self._finished(entry)
            self.report()

    async def _run_terminal(self, index: int) -> None:
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
