"""Key material from the operating system's CSPRNG, fetched in blocks.

A sign-in makes three keys and three wrapping nonces; six ``os.urandom`` calls are six
system calls, and each one lets the group-commit thread take the GIL, so the event
loop waits for it to give the GIL back. `RandomPool` reads 4 KiB at a time and hands
every byte out once (same source, same quality, one system call per ~100 keys). The
pool is emptied in a forked child so parent and child never share bytes, and a lock
keeps two threads from taking the same bytes.
"""

from __future__ import annotations

import os
import threading

BLOCK = 4096


class RandomPool:
    __slots__ = ("_block", "_buffer", "_lock", "_position")

    def __init__(self, block: int = BLOCK) -> None:
        self._block = block
        self._buffer = b""
        self._position = 0
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def take(self, count: int) -> bytes:
        """`count` fresh random bytes (never handed out before)."""
        if count > self._block:
            return os.urandom(count)
        with self._lock:
            start = self._position
            end = start + count
            if end > len(self._buffer):
                self._buffer, start, end = os.urandom(self._block), 0, count
            self._position = end
            return self._buffer[start:end]

    def _forget(self) -> None:
        self._buffer, self._position = b"", 0
        self._lock = threading.Lock()


POOL = RandomPool()
"""The process's pool (the SoftHSM's keys and nonces)."""


def random_bytes(count: int) -> bytes:
    return POOL.take(count)
