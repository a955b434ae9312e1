"""Fixtures for host tests: a provisioned registry, a host on an ephemeral port, a
terminal speaking real bytes to it.

Most tests run on SQLite (`sqlite_store`); tests taking the shared `store` fixture run
on PostgreSQL too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from hostclient import TestTerminal
from hostsite import HOST_CONFIG, Site, start_site

from posdoctor.crypto.hsm import SoftHSM
from posdoctor.host import HostConfig
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
async def make_site(sqlite_store: Store, hsm: SoftHSM) -> AsyncIterator[Callable[..., Awaitable[Site]]]:
    """`await make_site(config=..., clock=...)`: a site with its own host settings."""
    started: list[Site] = []

    async def make(config: HostConfig = HOST_CONFIG, **kw: object) -> Site:
        site = await start_site(sqlite_store, hsm, config, **kw)
        started.append(site)
        return site

    try:
        yield make
    finally:
        for site in started:
            await site.host.stop()


@pytest.fixture
async def site(make_site: Callable[..., Awaitable[Site]]) -> Site:
    return await make_site()


@pytest.fixture
async def signed_in(site: Site) -> TestTerminal:
    """A terminal that downloaded its TMK and signed in (004)."""
    terminal = site.terminal()
    assert (await terminal.download_tmk()).rc == "00"
    assert (await terminal.sign_in()).rc == "00"
    return terminal
