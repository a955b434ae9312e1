"""stop() with idle, half-sent and persistent connections open logs no error."""

from __future__ import annotations

import asyncio
import logging

import pytest
from hostclient import Connection
from hostsite import HOST_CONFIG, start_site

from posdoctor.crypto.hsm import SoftHSM
from posdoctor.store import Store


async def test_stop_with_open_connections_logs_no_error(
    sqlite_store: Store, hsm: SoftHSM, caplog: pytest.LogCaptureFixture
) -> None:
    site = await start_site(sqlite_store, hsm, HOST_CONFIG)
    loop_errors: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: loop_errors.append(context))
    terminal = site.terminal()
    terminal.persistent = await Connection.open(site.address)
    assert (await terminal.download_tmk()).rc == "00"
    assert (await terminal.sign_in()).rc == "00"
    idle = await Connection.open(site.address)
    half = await Connection.open(site.address)
    await half.send_raw(b"\x00\x40" + b"\x60" * 10)  # announces 64 bytes, sends 10
    await asyncio.sleep(0.05)
    with caplog.at_level(logging.WARNING):
        await site.host.stop()
        for _ in range(5):
            await asyncio.sleep(0)  # let asyncio's done-callbacks of the connection tasks run
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert loop_errors == []
    assert await idle.closed_by_host() and await half.closed_by_host()
    assert await terminal.persistent.closed_by_host()
