"""The key-material pool hands every byte out once, across refills, threads and forks."""

from __future__ import annotations

import os
import threading

import pytest

from posdoctor.crypto.randompool import RandomPool


def test_takes_never_overlap_across_refills() -> None:
    pool = RandomPool(block=64)
    chunks = [pool.take(24) for _ in range(200)]  # refills every second take
    assert all(len(chunk) == 24 for chunk in chunks)
    assert len(set(chunks)) == len(chunks)


def test_a_request_larger_than_the_block_comes_straight_from_the_os() -> None:
    pool = RandomPool(block=32)
    first = pool.take(8)
    big = pool.take(100)
    assert len(big) == 100 and first not in big


def test_threads_never_share_bytes() -> None:
    pool = RandomPool(block=256)
    seen: list[bytes] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [pool.take(16) for _ in range(500)]
        with lock:
            seen.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 2000 and len(set(seen)) == 2000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_reuse_the_parents_bytes() -> None:
    pool = RandomPool(block=4096)
    pool.take(16)  # the parent now holds a filled block
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it would take next
        os.write(write, pool.take(16))
        os._exit(0)
    os.close(write)
    child_bytes = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child_bytes) == 16 and child_bytes != pool.take(16)
