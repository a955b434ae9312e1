"""The write gate: turns in arrival order, re-entrant, strict about who releases."""

from __future__ import annotations

import threading
import time

import pytest

from posdoctor.store.gate import WriteGate, gate_for


def _wait_for(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 5
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


def test_waiting_threads_get_their_turn_in_arrival_order() -> None:
    gate, order = WriteGate(), []

    def writer(name: str) -> None:
        with gate:
            order.append(name)

    gate.acquire()
    threads = []
    for n, name in enumerate("ABCD", 1):
        thread = threading.Thread(target=writer, args=(name,))
        thread.start()
        threads.append(thread)
        _wait_for(lambda n=n: len(gate._waiting) == n, f"{name} to queue")
    # the holder takes it straight back twice: each time it queues behind the waiters
    gate.release()
    with gate:
        order.append("holder")
    for thread in threads:
        thread.join()
    assert order == ["A", "B", "C", "D", "holder"]


def test_the_gate_is_reentrant_for_its_holder() -> None:
    gate, got = WriteGate(), threading.Event()
    gate.acquire()
    gate.acquire()
    gate.release()
    other = threading.Thread(target=lambda: (gate.acquire(), got.set(), gate.release()))
    other.start()
    _wait_for(lambda: len(gate._waiting) == 1, "the other thread to queue")
    assert not got.is_set()  # still held once
    gate.release()
    other.join()
    assert got.is_set()


def test_only_the_holder_may_release() -> None:
    gate = WriteGate()
    with pytest.raises(RuntimeError, match="^WriteGate released by a thread that does not hold it$"):
        gate.release()
    gate.acquire()
    errors: list[BaseException] = []

    def stranger() -> None:
        try:
            gate.release()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=stranger)
    thread.start()
    thread.join()
    assert len(errors) == 1
    gate.release()
    with gate:  # still usable
        pass


def test_one_gate_per_database_file() -> None:
    assert gate_for("/tmp/a.db") is gate_for("/tmp/a.db")
    assert gate_for("/tmp/a.db") is not gate_for("/tmp/b.db")
