"""First come, first served among the writers of one SQLite file in this process.

SQLite lets one writer at a time in. A writer that finds the file locked does not queue:
its busy handler sleeps (1 ms, 2 ms, ... up to 100 ms) and looks again. A thread that
commits back to back (the host's group commit during a sign-in storm, its transactions
stretched by waits for the GIL) releases the lock for microseconds between
transactions, so the sleeper keeps missing the gap and gives up at the busy timeout:
the simulator lost batches of terminal reports that way. Inside one process the writers
can queue instead: `WriteGate` hands the turn to the longest-waiting thread when the
current writer's transaction ends. Writers in other processes still meet the busy timeout.
"""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType

__all__ = ["WriteGate", "gate_for"]

_HANDED = -1
"""Owner while the turn passes to a waiting thread that has not woken yet."""


class WriteGate:
    """A re-entrant lock granted in arrival order (`threading.RLock` lets a thread that
    releases take it straight back, ahead of threads that have waited)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiting: deque[threading.Lock] = deque()
        self._owner: int | None = None
        self._depth = 0

    def acquire(self) -> None:
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                self._depth += 1
                return
            if self._owner is None:
                self._owner, self._depth = me, 1
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        try:
            turn.acquire()  # released by the writer before us when it hands over
        except BaseException:  # interrupted while queued: leave the queue, or pass the turn on
            with self._mutex:
                if turn in self._waiting:
                    self._waiting.remove(turn)
                    raise
                self._owner, self._depth = me, 1
            self.release()
            raise
        with self._mutex:
            self._owner, self._depth = me, 1

    def release(self) -> None:
        with self._mutex:
            if self._owner != threading.get_ident():
                raise RuntimeError("WriteGate released by a thread that does not hold it")
            self._depth -= 1
            if self._depth:
                return
            if self._waiting:
                self._owner = _HANDED
                self._waiting.popleft().release()
            else:
                self._owner = None

    def __enter__(self) -> WriteGate:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


_gates: dict[str, WriteGate] = {}
_gates_mutex = threading.Lock()


def gate_for(database: str) -> WriteGate:
    """The one gate of this process for a SQLite file (every engine on it shares it)."""
    with _gates_mutex:
        gate = _gates.get(database)
        if gate is None:
            gate = _gates[database] = WriteGate()
        return gate
