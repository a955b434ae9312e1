"""`posdoctor serve` as a process: listens, answers, stops cleanly on SIGTERM."""

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

from hostclient import Connection

from posdoctor.iso8583.codec import decode_message, encode_message
from posdoctor.iso8583.framing import DEFAULT_TPDU, Frame, FrameConfig, Header, decode_frame, encode_frame

LISTENING = re.compile(rb"listening on ([0-9.]+):(\d+)")


async def test_serve_listens_answers_and_stops_on_sigterm(tmp_path: Path):
    """With --short the host closes each connection after its answer."""
    env = {**os.environ, "POSDOCTOR_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    env.pop("POSDOCTOR_DB", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "posdoctor.cli.main", "serve", "--port", "0", "--short",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert "收单主机已启动".encode() in line
        host, port = LISTENING.search(line).groups()
        conn = await Connection.open((host.decode(), int(port)))
        body = encode_message({"t": "0820", "11": "000001", "41": "10000001", "42": "898100000000001",
                               "60": "00000001301"})
        await conn.send_raw(encode_frame(Frame(DEFAULT_TPDU, Header(), body)))
        answer = decode_message(decode_frame(await conn.read_payload(), FrameConfig()).body)
        assert (answer["t"], answer["39"]) == ("0830", "97")  # an empty registry knows no terminal
        assert await conn.closed_by_host()
        await conn.close()
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert "主机已停止 / host stopped" in out.decode()
    assert (tmp_path / "home" / "lmk.key").exists()


async def test_serve_reports_a_busy_port(tmp_path: Path):
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    env = {**os.environ, "POSDOCTOR_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "posdoctor.cli.main", "serve", "--port", str(port),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        out, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        blocker.close()
    assert process.returncode == 1
    assert f"无法在 127.0.0.1:{port} 监听" in err.decode()
    assert f"cannot listen on 127.0.0.1:{port}" in err.decode()
