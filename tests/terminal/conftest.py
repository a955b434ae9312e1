"""Fixtures for the emulator's tests: a scripted host on loopback and a terminal for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from termhost import ScriptedHost, Script, well_behaved


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[[Script], Awaitable[ScriptedHost]]]:
    """`host = await scripted(script)`: a started scripted host (stopped afterwards)."""
    started: list[ScriptedHost] = []

    async def start(script: Script = well_behaved, *, header: bool = True) -> ScriptedHost:
        host = ScriptedHost(script, header=header)
        await host.start()
        started.append(host)
        return host

    try:
        yield start
    finally:
        for host in started:
            await host.stop()
