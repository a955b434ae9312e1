"""Running the host as a process (`posdoctor serve`): store, LMK, event loop, signals.

The `[host]` table of `$POSDOCTOR_HOME/posdoctor.toml` holds `HostConfig` fields;
command-line values win over it. The event loop is uvloop's when it is installed and
`use_uvloop` is on. SIGINT and SIGTERM stop the host cleanly (messages in progress
finish, queued writes are committed). Other services (the TMS HTTP API on port 5880)
will be started beside the host in `serve_until_stopped`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from posdoctor.crypto.hsm import SoftHSM
from posdoctor.host.commitproc import ProcessCommitter
from posdoctor.host.config import HostConfig
from posdoctor.host.keyservice import KeyService, KeyServiceError
from posdoctor.host.server import HostServer
from posdoctor.store import Store, load_lmk, load_settings, open_store

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
Started = Callable[[tuple[str, int]], None]


def load_host_config(home: str | Path | None = None, **overrides: Any) -> HostConfig:
    """`HostConfig` from the TOML `[host]` table, then the given non-None overrides."""
    settings = load_settings(home=home)
    values = settings.section("host")
    values.update({key: value for key, value in overrides.items() if value is not None})
    return HostConfig(**values)


async def serve_until_stopped(store: Store, hsm: SoftHSM, config: HostConfig, on_started: Started,
                              stop: asyncio.Event | None = None, home: Path | None = None) -> None:
    """Start the host, report where it listens, wait for a stop signal, stop cleanly.

    With `home` (where the LMK file is) and `config.key_service`, working keys are issued
    by an HSM child process (`host.keyservice`)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on this platform/thread
            loop.add_signal_handler(sig, stop.set)
    committer = process_committer(store, config)
    if committer is not None:
        await loop.run_in_executor(None, committer.start)
    keys = KeyService(home) if home is not None and config.key_service else None
    if keys is not None:
        try:
            await loop.run_in_executor(None, keys.start, hsm.lmk_check)
        except KeyServiceError as exc:  # the host makes its working keys itself
            log.warning("%s; working keys are made in the host process", exc)
            keys = None
    server = HostServer(store, hsm, config, committer=committer)
    server.env.keys = keys
    try:
        on_started(await server.start())
        await stop.wait()
    finally:
        for sig in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        await server.stop()
        if committer is not None:
            await loop.run_in_executor(None, committer.close)
        if keys is not None:
            await loop.run_in_executor(None, keys.close)


def process_committer(store: Store, config: HostConfig) -> ProcessCommitter | None:
    """The group commit's child process (not started yet); None to commit in the host's
    own writer thread (switched off, or an in-memory database another process cannot open)."""
    url = store.engine.url
    if not config.commit_process or (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")):
        return None
    return ProcessCommitter(url.render_as_string(hide_password=False))


def event_loop_runner(config: HostConfig) -> Callable[[Coroutine[Any, Any, None]], None]:
    """uvloop.run when installed and wanted, else asyncio.run."""
    if config.use_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run
    return asyncio.run


def run_host(config: HostConfig, *, db: str | None = None, home: str | Path | None = None,
             on_started: Started = lambda address: None) -> None:
    """Open the store (creating the database and LMK on first use) and serve until stopped."""
    store = open_store(db, home=home)
    try:
        home_dir = load_settings(home=home).ensure_home()
        event_loop_runner(config)(serve_until_stopped(store, SoftHSM(load_lmk(home_dir)), config, on_started,
                                                      home=home_dir))
    finally:
        store.close()
