"""`posdoctor serve` runs the TMS API beside the host (one process, one event loop)."""

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import httpx

from posdoctor.store import open_store
from posdoctor.tms.credentials import issue_credential

TMS_LISTENING = re.compile(rb"TMS API listening on ([0-9.]+):(\d+)")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "POSDOCTOR_HOME": str(tmp_path / "home"), "COLUMNS": "300"}
    env.pop("POSDOCTOR_DB", None)
    return env


async def _start(tmp_path: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "posdoctor.cli.main", "serve", "--port", "0", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_env(tmp_path))


async def _stop(process: asyncio.subprocess.Process) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    return out.decode(), err.decode()


async def test_serve_answers_terminals_on_the_tms_api_and_stops(tmp_path: Path):
    home = tmp_path / "home"
    store = open_store(None, home=home)
    store.add_merchant("898100000000001", "商户")
    store.add_terminal("10000001", "898100000000001", "SN1", model="P1")
    token = issue_credential(store, "10000001")
    store.close()
    process = await _start(tmp_path)
    try:
        host_line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert b"host listening on" in host_line
        tms_line = await asyncio.wait_for(process.stdout.readline(), 30)
        address, port = TMS_LISTENING.search(tms_line).groups()
        base = f"http://{address.decode()}:{int(port)}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            assert (await client.post("/api/v1/heartbeat", json={})).status_code == 401
            answer = await client.post("/api/v1/heartbeat", json={"app_version": "1.0.0"},
                                       headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200 and answer.json()["upgrade"] is False
    finally:
        out, _err = await _stop(process)
    assert "主机已停止 / host stopped" in out
    store = open_store(None, home=home)
    assert store.latest_heartbeat("10000001").app_version == "1.0.0"
    store.close()


async def test_serve_without_tms(tmp_path: Path):
    process = await _start(tmp_path, "--no-tms")
    try:
        assert b"host listening on" in await asyncio.wait_for(process.stdout.readline(), 30)
    finally:
        out, _err = await _stop(process)
    assert "TMS API" not in out


async def test_busy_tms_port_is_reported(tmp_path: Path):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        process = await _start(tmp_path, "--tms-port", str(port))
        out, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        blocker.close()
    assert process.returncode == 1
    assert f"无法在 127.0.0.1:{port} 监听" in err.decode() and f"cannot listen on 127.0.0.1:{port}" in err.decode()


async def test_periodic_payout_tick_runs_until_stopped_and_survives_failures(monkeypatch, capsys):
    from rich.console import Console

    from posdoctor.cli import serve as serve_module

    calls = []

    def tick(store, now):
        calls.append(now)
        if len(calls) == 2:
            raise RuntimeError("bank file missing")

    monkeypatch.setattr(serve_module, "find_payout_tick", lambda: tick)
    stop = asyncio.Event()
    job = asyncio.create_task(serve_module.run_periodic(object(), stop, Console(stderr=True), period_s=0.01))
    async def four_ticks() -> None:
        while len(calls) < 4:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(four_ticks(), 5)  # a loop that stopped ticking fails, not hangs
    stop.set()
    await asyncio.wait_for(job, 5)
    assert all(now.tzinfo is not None for now in calls)
    assert "payout tick failed: RuntimeError: bank file missing" in capsys.readouterr().err
