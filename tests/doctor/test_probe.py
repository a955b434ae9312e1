"""posdoctor probe over loopback: the real HostServer, fake servers, and the CLI."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posdoctor.cli.main import app
from posdoctor.crypto.ciphers import Algorithm
from posdoctor.crypto.hsm import SoftHSM
from posdoctor.doctor.probe import ProbeConfig, probe
from posdoctor.host import HostConfig, HostServer, provision_terminal
from posdoctor.iso8583.codec import decode_message, encode_message
from posdoctor.iso8583.framing import Frame, FrameConfig, Header, decode_frame, encode_frame
from posdoctor.store import Store, open_store

MID, TID, OTHER_TID, SM4_TID = "898100000000001", "10000001", "10000099", "10000002"
FAST = 1.0


@dataclass
class Host:
    store: Store
    server: HostServer
    port: int
    tmk: bytes
    sm4_tmk: bytes


@pytest.fixture
def host_store(tmp_path: Path, home: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'probe.db'}", home=home)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
async def host(host_store: Store, lmk: bytes) -> AsyncIterator[Host]:
    hsm = SoftHSM(lmk)
    host_store.add_merchant(MID, "探测商户")
    sheet = provision_terminal(host_store, hsm, TID, MID, "SNPROBE1", "N910")
    sm4 = provision_terminal(host_store, hsm, SM4_TID, MID, "SNPROBE2", "N910", alg=Algorithm.SM4)
    server = HostServer(host_store, hsm, HostConfig(port=0, commit_interval_s=0.0005, idle_timeout_s=5.0))
    _, port = await server.start()
    try:
        yield Host(host_store, server, port, sheet.tmk, sm4.tmk)
    finally:
        await server.stop()


def _config(port: int, **kw: object) -> ProbeConfig:
    return ProbeConfig("127.0.0.1", port, **{"timeout_s": FAST, **kw})  # type: ignore[arg-type]


def _steps(result) -> list[tuple[str, bool]]:  # type: ignore[no-untyped-def]
    return [(s.step, s.ok) for s in result.steps]


async def test_every_step_passes_against_the_host_with_the_right_tmk(host: Host) -> None:
    result = await probe(_config(host.port, tid=TID, mid=MID, tmk=host.tmk))
    assert result.ok, result.to_json()
    assert [s for s, _ in _steps(result)] == ["resolve", "connect", "frame", "echo", "sign_in", "key_check"]
    keys = result.steps[-1].detail["keys"]
    assert set(keys) >= {"PIK", "MAK"} and all(k["ok"] for k in keys.values())
    text = json.dumps(result.to_json())
    assert host.tmk.hex().upper() not in text and host.tmk.hex() not in text
    assert result.steps[2].detail["tpdu"] == "6000000003"


@pytest.mark.parametrize("mode", ["001", "003", "004"])
async def test_sign_in_modes_check_their_key_layouts(host: Host, mode: str) -> None:
    result = await probe(_config(host.port, tid=TID, mid=MID, tmk=host.tmk, signin_mode=mode))
    assert result.ok, result.to_json()


async def test_sm4_terminal_checks_with_sm4(host: Host) -> None:
    good = await probe(_config(host.port, tid=SM4_TID, mid=MID, tmk=host.sm4_tmk, signin_mode="006"))
    assert good.ok, good.to_json()
    bad = await probe(_config(host.port, tid=SM4_TID, mid=MID, tmk=host.tmk, signin_mode="006"))
    assert bad.failed.step == "key_check" and bad.failed.causes == ["keys.tmk_mismatch"]


async def test_without_ids_the_echo_proves_the_host_speaks_cup(host: Host) -> None:
    result = await probe(_config(host.port))
    assert result.ok and _steps(result)[-1] == ("echo", True)
    assert result.steps[-1].detail["code"] in ("97", "03")


async def test_unknown_terminal_fails_at_the_echo_with_97(host: Host) -> None:
    result = await probe(_config(host.port, tid=OTHER_TID, mid=MID))
    assert result.failed.step == "echo" and result.failed.detail["code"] == "97"
    assert "status.terminal_unregistered" in result.failed.causes
    assert "config.wrong_terminal_id" in result.failed.causes


async def test_wrong_tmk_fails_the_key_check(host: Host) -> None:
    wrong = bytes([host.tmk[0] ^ 0x10]) + host.tmk[1:]  # not a parity bit: DES ignores those
    result = await probe(_config(host.port, tid=TID, mid=MID, tmk=wrong))
    assert _steps(result)[-2:] == [("sign_in", True), ("key_check", False)]
    assert result.failed.causes == ["keys.tmk_mismatch"]
    assert not any(k["ok"] for k in result.failed.detail["keys"].values())


async def test_wrong_tpdu_id_makes_the_host_close(host: Host) -> None:
    result = await probe(_config(host.port, tid=TID, mid=MID, tpdu=bytes.fromhex("7000030000")))
    assert result.failed.step == "frame" and result.failed.detail["outcome"] == "closed"
    assert result.failed.causes[0] == "config.wrong_tpdu"


async def test_missing_header_is_a_framing_failure(host: Host) -> None:
    result = await probe(_config(host.port, tid=TID, mid=MID, header=False))
    assert result.failed.step == "frame" and "config.wrong_tpdu" in result.failed.causes


async def test_refused_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = await probe(_config(port))
    assert result.failed.step == "connect" and result.failed.detail["outcome"] == "refused"
    assert result.failed.causes[0] == "config.wrong_host"


async def test_silently_dropped_connect_times_out() -> None:
    """A listener whose accept queue is full drops new SYNs: the probe sees a timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    try:
        await asyncio.sleep(0.1)
        result = await probe(_config(port, timeout_s=0.5))
        assert result.failed.step == "connect" and result.failed.detail["outcome"] == "timeout"
        assert result.failed.causes[0] == "net.firewall_blocked"
    finally:
        for sock in (*fillers, listener):
            sock.close()


async def test_unresolvable_name() -> None:
    result = await probe(ProbeConfig("pos-host.invalid", 5800, timeout_s=3.0))
    assert _steps(result) == [("resolve", False)]
    assert result.failed.causes[0] == "net.dns_failure"
    assert "未知主机" in result.failed.zh or "解析超时" in result.failed.zh  # a slow resolver times out


Reply = Callable[[bytes], bytes | None]


async def _fake_server(reply: Reply) -> tuple[asyncio.Server, int]:
    """Reads one frame and writes `reply(payload)` (None: say nothing, keep the line open)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            length = int.from_bytes(await reader.readexactly(2), "big")
            answer = reply(await reader.readexactly(length))
            if answer is None:
                await asyncio.sleep(5)
            else:
                writer.write(answer)
                await writer.drain()
                await asyncio.sleep(0.2)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def _echo_answer(payload: bytes, *, swap: bool = True) -> bytes:
    frame = decode_frame(payload, FrameConfig())
    request = decode_message(frame.body)
    answer = {"t": "0830", "11": request["11"], "39": "00", "41": request["41"], "42": request["42"],
              "60": request["60"]}
    tpdu = frame.tpdu[:1] + frame.tpdu[3:5] + frame.tpdu[1:3] if swap else frame.tpdu
    return encode_frame(Frame(tpdu, Header(), encode_message(answer)))


@pytest.mark.parametrize("reply, outcome", [
    (lambda p: b"\x00\x20" + b"\xff" * 32, "undecodable"),
    (lambda p: b"\x00\x40" + b"\x60\x00\x00\x00\x03" + b"garbage", "truncated"),
    (lambda p: b"\x00\x00", "bad_frame"),
    (lambda p: None, "timeout"),
    (lambda p: _echo_answer(p, swap=False), "tpdu_not_swapped"),
])
async def test_fake_servers_answering_garbage(reply: Reply, outcome: str) -> None:
    server, port = await _fake_server(reply)
    try:
        result = await probe(_config(port, timeout_s=0.5))
    finally:
        server.close()
        await server.wait_closed()
    assert result.failed.step == "frame", result.to_json()
    assert result.failed.detail["outcome"] == outcome
    assert "config.wrong_tpdu" in result.failed.causes


async def test_a_well_behaved_fake_server_passes_the_frame_step() -> None:
    server, port = await _fake_server(_echo_answer)
    try:
        result = await probe(_config(port, tid=TID, mid=MID, sign_in=False))
    finally:
        server.close()
        await server.wait_closed()
    assert result.ok and _steps(result)[-1] == ("echo", True)


# --- CLI ------------------------------------------------------------------------------------
def _run_cli(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


async def test_cli_probe_json_and_recorded_event(host: Host, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'events.db'}"
    args = ["probe", "--host", "127.0.0.1", "--port", str(host.port), "--tid", TID, "--mid", MID,
            "--tmk", host.tmk.hex(), "--timeout", "2", "--json", "--db", db]
    code, output = await asyncio.to_thread(_run_cli, args)
    assert code == 0, output
    out = json.loads(output)
    assert out["ok"] and out["recorded"] and out["failed_step"] is None
    events = open_store(db).events(limit=10)
    probes = [e for e in events if e.source == "doctor" and e.kind == "probe"]
    assert len(probes) == 1 and probes[0].code == "ok" and probes[0].tid == TID
    assert host.tmk.hex().upper() not in json.dumps(probes[0].detail).upper()


async def test_cli_probe_reads_the_tmk_from_a_file(host: Host, tmp_path: Path) -> None:
    key_file = tmp_path / "tmk.hex"
    key_file.write_text(host.tmk.hex().upper() + "\n")
    args = ["probe", "--host", "127.0.0.1", "--port", str(host.port), "--tid", TID, "--mid", MID,
            "--tmk-file", str(key_file), "--json"]
    code, output = await asyncio.to_thread(_run_cli, args)
    assert code == 0 and json.loads(output)["steps"][-1]["step"] == "key_check"
    both = await asyncio.to_thread(_run_cli, [*args, "--tmk", host.tmk.hex()])
    assert both[0] == 2


async def test_cli_probe_failure_exit_code_and_human_text(host: Host) -> None:
    args = ["probe", "--host", "127.0.0.1", "--port", str(host.port), "--tid", OTHER_TID, "--mid", MID,
            "--lang", "zh", "--timeout", "2"]
    code, output = await asyncio.to_thread(_run_cli, args)
    assert code == 1
    assert "终端未登记" in output and "status.terminal_unregistered" in output


@pytest.mark.parametrize("extra", [
    ["--tmk", "12AB"], ["--tpdu", "60000300"], ["--tid", "123"], ["--tid", TID], ["--lang", "fr"],
    ["--tmk", "00" * 16], ["--mode", "005"],
])
def test_cli_probe_refuses_bad_input(extra: list[str]) -> None:
    base = ["probe", "--host", "127.0.0.1", "--port", "1", "--json"]
    if "--tid" in extra and extra[1] == "123":
        extra = [*extra, "--mid", MID]
    code, output = _run_cli(base + extra)
    assert code == 2, output
    assert json.loads(output)["ok"] is False
