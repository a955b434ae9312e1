"""Fixtures of the TMS tests: a small registered fleet, packages, a live TMS API server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from tmsfleet import MID, MID2, FakeClock, Fleet

from posdoctor.cli.serve import bind_tms_socket
from posdoctor.store import Store
from posdoctor.web.tms_api import create_tms_app


@pytest.fixture
def fleet(store: Store, home: Path) -> Fleet:
    store.add_merchant(MID, "测试商户一")
    store.add_merchant(MID2, "测试商户二")
    return Fleet(store, home)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tms_server(store: Store, home: Path, clock: FakeClock) -> Iterator[str]:
    """The TMS API under a real uvicorn on a loopback ephemeral port; yields its base URL."""
    sock = bind_tms_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_tms_app(store, home, clock=clock),
                                           log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while not server.started and datetime.now(UTC) < deadline:
        threading.Event().wait(0.01)
    assert server.started, "TMS API did not start"
    host, port = sock.getsockname()[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def make_fleet(fleet: Fleet) -> Callable[..., list[str]]:
    return fleet.add
