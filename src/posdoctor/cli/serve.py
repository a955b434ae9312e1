"""`posdoctor serve`: run the acquiring host and the TMS API until Ctrl-C or SIGTERM.

The TMS API (FastAPI under uvicorn) runs in the same event loop as the host, on
``--tms-port`` (default 5880; an ephemeral port when ``--port 0`` and no ``--tms-port``;
``--no-tms`` leaves it out). Periodic jobs run beside them: every minute
``posdoctor.tms.payouts.payout_tick(store, now)`` when that function exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console

from posdoctor.crypto.hsm import SoftHSM
from posdoctor.host.config import HostConfig
from posdoctor.host.gcpolicy import settle_long_lived
from posdoctor.host.run import Started, event_loop_runner, load_host_config, serve_until_stopped
from posdoctor.store import Store, StoreError, load_lmk, load_settings, open_store

DEFAULT_PORT = 5800
DEFAULT_TMS_PORT = 5880
PAYOUT_PERIOD_S = 60.0


def _fail(console: Console, zh: str, en: str) -> typer.Exit:
    console.print(f"[red]{zh}[/red] / {en}")
    return typer.Exit(1)


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the host's stop event stops both."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_tms_socket(host: str, port: int) -> socket.socket:
    """The listening socket of the TMS API (bound before anything starts: a busy port
    is reported at once)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def find_payout_tick() -> Callable[[Store, datetime], Any] | None:
    try:
        module = importlib.import_module("posdoctor.tms.payouts")
    except ImportError:
        return None
    return getattr(module, "payout_tick", None)


async def run_periodic(store: Store, stop: asyncio.Event, errors: Console,
                       period_s: float = PAYOUT_PERIOD_S) -> None:
    """Call the payout tick every ``period_s`` until ``stop`` (errors are reported, not fatal)."""
    tick = find_payout_tick()
    if tick is None:
        return
    while not stop.is_set():
        try:
            await asyncio.to_thread(tick, store, datetime.now(UTC))
        except Exception as exc:  # a failing job must not stop the host
            errors.print(f"结算出款任务失败 / payout tick failed: {type(exc).__name__}: {exc}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period_s)


async def serve_all(store: Store, hsm: SoftHSM, config: HostConfig, home: Path,
                    tms_socket: socket.socket | None, on_started: Started,
                    on_tms_started: Started, errors: Console) -> None:
    """Host, TMS API and periodic jobs until a stop signal."""
    from posdoctor.web.tms_api import create_tms_app

    stop = asyncio.Event()
    host_started = asyncio.Event()

    def started(address: tuple[str, int]) -> None:
        settle_long_lived()  # the registry is loaded: this process's long-lived objects exist
        on_started(address)
        host_started.set()

    host = asyncio.create_task(serve_until_stopped(store, hsm, config, started, stop, home=home))
    jobs = [asyncio.create_task(run_periodic(store, stop, errors))]
    server = None
    if tms_socket is not None:
        server = EmbeddedServer(uvicorn.Config(create_tms_app(store, home), log_level="warning",
                                               access_log=False, lifespan="off"))
        waiting = asyncio.create_task(host_started.wait())
        await asyncio.wait({host, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if host_started.is_set():
            jobs.append(asyncio.create_task(server.serve(sockets=[tms_socket])))
            while not server.started and not host.done():
                await asyncio.sleep(0.01)
            on_tms_started(tms_socket.getsockname()[:2])
        waiting.cancel()
    try:
        await host
    finally:
        stop.set()
        if server is not None:
            server.should_exit = True
        await asyncio.gather(*jobs, return_exceptions=True)


def serve(
    db: Annotated[str | None, typer.Option("--db", help="数据库地址 / database URL")] = None,
    host: Annotated[str | None, typer.Option("--host", help="监听地址 / listen address (127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option("--port", help=f"监听端口 / listen port ({DEFAULT_PORT})")] = None,
    short: Annotated[bool, typer.Option("--short", help="短连接: 每次应答后关闭连接 / close the connection "
                                                          "after each answer")] = False,
    tms_port: Annotated[int | None, typer.Option("--tms-port", help=f"TMS API 端口 / TMS API port ({DEFAULT_TMS_PORT})")] = None,
    no_tms: Annotated[bool, typer.Option("--no-tms", help="不启动 TMS API / do not run the TMS API")] = False,
) -> None:
    """启动收单主机(ISO 8583)和 TMS API / run the acquiring host (ISO 8583) and the TMS API."""
    console, errors = Console(), Console(stderr=True)
    try:
        config = load_host_config(host=host, port=port, persistent=False if short else None)
    except ValidationError as exc:
        raise _fail(errors, f"主机配置无效: {exc.errors()[0]['msg']}",
                    f"invalid host settings: {exc.errors()[0]['msg']}") from None
    except StoreError as exc:
        raise _fail(errors, exc.zh, exc.en) from None
    if tms_port is None:
        tms_port = 0 if config.port == 0 else DEFAULT_TMS_PORT

    def started(address: tuple[str, int]) -> None:
        where = f"{address[0]}:{address[1]}"
        console.print(f"收单主机已启动, 监听 {where} (Ctrl-C 停止) / host listening on {where} (Ctrl-C to stop)")

    def tms_started(address: tuple[str, int]) -> None:
        where = f"{address[0]}:{address[1]}"
        console.print(f"TMS API 已启动, 监听 {where} / TMS API listening on {where}")

    tms_socket = None
    try:
        if not no_tms:
            tms_socket = bind_tms_socket(config.host, tms_port)
        store = open_store(db)
        try:
            home = load_settings().ensure_home()
            hsm = SoftHSM(load_lmk(home))
            event_loop_runner(config)(serve_all(store, hsm, config, home, tms_socket, started,
                                                tms_started, errors))
        finally:
            store.close()
    except StoreError as exc:
        raise _fail(errors, exc.zh, exc.en) from None
    except OSError as exc:
        busy = tms_socket is None and not no_tms
        where = f"{config.host}:{tms_port if busy else config.port}"
        raise _fail(errors, f"无法在 {where} 监听: {exc.strerror or exc}",
                    f"cannot listen on {where}: {exc.strerror or exc}") from None
    finally:
        if tms_socket is not None:
            tms_socket.close()
    console.print("主机已停止 / host stopped")


def register(app: typer.Typer) -> None:
    """Add `serve` to the root app."""
    app.command("serve")(serve)
