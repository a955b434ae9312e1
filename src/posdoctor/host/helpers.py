"""The host's helper processes (commit, HSM): spawned, greeted, stopped the same way.

A helper is a `multiprocessing` "spawn" child (never fork a process that runs threads)
talking over one pipe. Its first message is a pickled ``(status, detail)``: ``"ready"``
or what went wrong. Stopping sends the helper's stop message, closes the pipe, and
waits for the child, killing it if it does not end.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

START_TIMEOUT_S = 60.0


def spawn_helper(target: Callable[..., None], args: tuple[Any, ...], name: str,
                 timeout_s: float = START_TIMEOUT_S) -> tuple[Any, Connection, str, Any]:
    """Start `target(child_pipe, *args)`; returns (process, pipe, status, detail) once the
    child said hello. A child that says nothing within `timeout_s` is killed (status
    ``"silent"``); one that reports an error has ended (its status is the error)."""
    context = mp.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=target, args=(child, *args), name=name, daemon=True)
    process.start()
    child.close()
    if not parent.poll(timeout_s):
        process.kill()
        process.join(5)
        parent.close()
        return process, parent, "silent", None
    status, detail = pickle.loads(parent.recv_bytes())
    if status != "ready":
        process.join(5)
    return process, parent, status, detail


def stop_helper(pipe: Connection | None, process: Any, stop_message: bytes) -> None:
    """Ask the helper to end, then make sure it has."""
    if pipe is not None:
        try:
            pipe.send_bytes(stop_message)
        except OSError:
            pass
        pipe.close()
    if process is not None:
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join(5)
