"""The simulation's virtual clock.

Time in the simulated world is a virtual instant that only moves forward. The day's
scheduler moves it to the time of each event it dispatches (`advance_to`), so a day runs
as fast as the host and the terminals can work (event-driven). With a `speed` the
scheduler also waits until real time has caught up (`speed` virtual seconds per real
second). The host and the emulated terminals read the same clock: the host in UTC, the
terminals in China Standard Time (their local time), as real devices do.

Network timeouts (connect, receive, the issuer's timeout) stay real seconds: the sockets
are real.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta, timezone

__all__ = ["SimClock", "CST", "default_day"]

CST = timezone(timedelta(hours=8), "CST")
TICK_S = 1e-6


def default_day() -> date:
    """Today (China time): what the TMS stamps with the real time (policy changes made
    through functions without a time argument) falls inside the simulated day."""
    return datetime.now(CST).date()


class SimClock:
    """`offset` seconds after midnight of `day` (China time); monotone."""

    __slots__ = ("midnight", "offset", "speed", "_real_start", "_virtual_start")

    def __init__(self, day: date, start_s: float = 0.0, speed: float | None = None) -> None:
        self.midnight = datetime(day.year, day.month, day.day, tzinfo=CST)
        self.offset = float(start_s)
        self.speed = speed if speed and speed > 0 else None
        self._real_start = time.monotonic()
        self._virtual_start = self.offset

    # --- reading ------------------------------------------------------------------------
    def local(self) -> datetime:
        """Now, in the terminals' local time (CST). Every reading is 1 µs after the
        previous one: two things never happen at the same instant (a terminal's log upload
        sends the events after the newest it already sent)."""
        self.offset += TICK_S
        return self.midnight + timedelta(seconds=self.offset)

    def utc(self) -> datetime:
        """Now, in UTC (the host's clock)."""
        return self.local().astimezone(UTC)

    def at(self, offset_s: float) -> datetime:
        return self.midnight + timedelta(seconds=offset_s)

    def hhmm(self) -> str:
        return self.local().strftime("%H:%M")

    # --- moving ------------------------------------------------------------------------
    def advance_to(self, offset_s: float) -> None:
        if offset_s > self.offset:
            self.offset = offset_s

    def jump(self, offset_s: float) -> None:
        """Move forward and restart pacing from here (a phase with nothing to do)."""
        self.advance_to(offset_s)
        self._real_start = time.monotonic()
        self._virtual_start = self.offset

    async def wait_until(self, offset_s: float) -> None:
        """With a speed, sleep until real time reaches `offset_s`; then advance."""
        if self.speed is not None:
            real_due = self._real_start + (offset_s - self._virtual_start) / self.speed
            delay = real_due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        self.advance_to(offset_s)
