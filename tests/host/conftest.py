"""Fixtures for host tests: a provisioned registry, a host on an ephemeral port, a
terminal speaking real bytes to it.

Most tests run on SQLite (`sqlite_store`); tests taking the shared `store` fixture run
on PostgreSQL too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hostclient import TestTerminal
from hostsite import Site, start_site

from posdoctor.crypto.hsm import SoftHSM
from posdoctor.store import Store, open_store


@pytest.fixture
def sqlite_store(tmp_path: Path, home: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'host.db'}", home=home)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def hsm(lmk: bytes) -> SoftHSM:
    return SoftHSM(lmk)


@pytest.fixture
async def site(sqlite_store: Store, hsm: SoftHSM) -> AsyncIterator[Site]:
    started = await start_site(sqlite_store, hsm)
    try:
        yield started
    finally:
        await started.host.stop()


@pytest.fixture
async def signed_in(site: Site) -> TestTerminal:
    """A terminal that downloaded its TMK and signed in (004)."""
    terminal = site.terminal()
    assert (await terminal.download_tmk()).rc == "00"
    assert (await terminal.sign_in()).rc == "00"
    return terminal
