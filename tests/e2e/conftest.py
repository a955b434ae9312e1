"""e2e fixtures: `site` on SQLite; `any_site` on every backend of the `store` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from e2esite import Site, start_site

from posdoctor.crypto.hsm import SoftHSM
from posdoctor.store import Store, open_store


@pytest.fixture
async def site(tmp_path: Path, home: Path, lmk: bytes) -> AsyncIterator[Site]:
    store = open_store(f"sqlite:///{tmp_path / 'e2e.db'}", home=home)
    started = await start_site(store, SoftHSM(lmk), home)
    try:
        yield started
    finally:
        await started.host.stop()
        store.close()


@pytest.fixture
async def any_site(store: Store, home: Path, lmk: bytes) -> AsyncIterator[Site]:
    started = await start_site(store, SoftHSM(lmk), home)
    try:
        yield started
    finally:
        await started.host.stop()
