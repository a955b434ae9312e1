"""Host throughput benchmark: sales per second against one `posdoctor serve` process.

    python bench/host_tps.py --seconds 10 --json            # persistent connections
    python bench/host_tps.py --seconds 10 --short --json    # one connection per sale

The host runs as its own process (`posdoctor serve` on a temporary SQLite database, so
every answer waits for its journal, transaction and balance rows to be committed). The
load generator is a second process: it signs every terminal in with a real 0800/004,
then sends prepared 0200 sales whose PIN blocks and MACs are computed under the session
keys it received, closed loop, on many connections. The same generator then runs
against a do-nothing asyncio server that answers each frame with the same bytes (the
"echo floor"): the framing and socket cost this machine cannot go below.

Prints one JSON line: sales_per_s, p50_ms, p99_ms, echo_floor_per_s,
ratio_to_echo_floor, errors, answers_by_code, and the run's settings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import machine_speed  # bench/machine_speed.py (a script's own folder is on sys.path)
import proc_cpu

from posdoctor.crypto.ciphers import tdes_decrypt_ecb
from posdoctor.crypto.hsm import SoftHSM
from posdoctor.crypto.mac import generate_mac_cup_ecb
from posdoctor.crypto.pin import encrypt_pinblock
from posdoctor.host.provision import provision_card, provision_terminal
from posdoctor.iso8583.codec import decode_message, encode_message, mac_input
from posdoctor.iso8583.fields import Field60, SecurityControl, decode_key_block
from posdoctor.iso8583.framing import Frame, FrameConfig, Header, decode_length_prefixed, encode_frame
from posdoctor.store.config import load_lmk
from posdoctor.store.db import open_store

MID = "898100000000001"
PAN = "6222021234567890128"
PIN = "123456"
TPDU = bytes.fromhex("6000030000")
FRAME_CONFIG = FrameConfig()


def frame_of(msg: dict[str, str]) -> bytes:
    return encode_frame(Frame(TPDU, Header(), encode_message(msg)))


def body_of(raw: bytes) -> dict[str, str]:
    return decode_message(decode_length_prefixed(raw, FRAME_CONFIG).body)


def with_mac(msg: dict[str, str], mak: bytes) -> dict[str, str]:
    msg = dict(msg, **{"64": "00" * 8})
    body = encode_message(msg)
    msg["64"] = generate_mac_cup_ecb(mak, mac_input(body)).hex().upper()
    return msg


def signin_request(tid: str, stan: int) -> dict[str, str]:
    return {"t": "0800", "11": f"{stan:06d}", "41": tid, "42": MID,
            "60": Field60("00", "000001", "004").encode(), "63": "001"}


def sale_request(tid: str, stan: int, batch: str, pik: bytes, mak: bytes) -> dict[str, str]:
    msg = {
        "t": "0200", "2": PAN, "3": "000000", "4": "000000000100", "11": f"{stan:06d}",
        "22": "021", "25": "00", "41": tid, "42": MID, "49": "156",
        "52": encrypt_pinblock(pik, PIN, PAN).hex().upper(),
        "53": SecurityControl().encode(), "60": Field60("22", batch, "000", "5", "0").encode(),
    }
    return with_mac(msg, mak)


# --- network helpers -----------------------------------------------------------------

async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, frame: bytes) -> bytes:
    writer.write(frame)
    prefix = await reader.readexactly(2)
    return prefix + await reader.readexactly(int.from_bytes(prefix, "big"))


async def sign_in_and_prepare(port: int, tid: str, tmk: bytes, count: int) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = body_of(await exchange(reader, writer, frame_of(signin_request(tid, 1))))
    writer.close()
    if answer.get("39") != "00":
        raise RuntimeError(f"sign-in of {tid} answered {answer.get('39')}")
    keys = decode_key_block("004", bytes.fromhex(answer["62"]))
    pik, mak = tdes_decrypt_ecb(tmk, keys.pik), tdes_decrypt_ecb(tmk, keys.mak)
    batch = Field60.decode(answer["60"]).batch
    return [frame_of(sale_request(tid, stan, batch, pik, mak)) for stan in range(2, count + 2)]


async def drive(port: int, queues: list[list[bytes]], seconds: float, short: bool) -> dict:
    """Closed loop: each worker sends its next frame when the previous answer arrived."""
    latencies: list[float] = []
    codes: Counter[str] = Counter()
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(frames: list[bytes]) -> None:
        nonlocal errors
        conn = None
        for frame in frames:
            if time.perf_counter() >= deadline:
                break
            try:
                if conn is None:
                    conn = await asyncio.open_connection("127.0.0.1", port)
                started = time.perf_counter()
                raw = await exchange(*conn, frame)
                latencies.append(time.perf_counter() - started)
                codes[rc_of(raw)] += 1
            except (OSError, asyncio.IncompleteReadError):
                errors += 1
                conn = None
                continue
            if short:
                conn[1].close()
                conn = None
        if conn is not None:
            conn[1].close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(q) for q in queues))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "count": len(latencies), "elapsed": elapsed, "errors": errors, "codes": dict(codes),
        "p50_ms": percentile(latencies, 0.50) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def rc_of(raw: bytes) -> str:
    """Field 39 of an answer, or "echo" for the floor server's echoed request."""
    try:
        return body_of(raw).get("39", "echo")
    except Exception:  # noqa: BLE001 - any unparsable answer is counted, not raised
        return "unparsable"


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def load_generator(port: int, floor_port: int, terminals: list[tuple[str, str]],
                   per_terminal: int, seconds: float, short: bool, out: mp.Queue) -> None:
    async def main() -> dict:
        prepared = await asyncio.gather(*(
            sign_in_and_prepare(port, tid, bytes.fromhex(tmk), per_terminal) for tid, tmk in terminals
        ))
        out.put("host")  # the parent takes its CPU snapshots around the host's part
        cpu = os.times()
        host = await drive(port, prepared, seconds, short)
        done = os.times()
        host["cpu_s"] = (done.user - cpu.user) + (done.system - cpu.system)
        out.put("floor")
        floor = await drive(floor_port, prepared, seconds, short)
        return {"host": host, "floor": floor}

    try:
        import uvloop  # type: ignore[import-not-found]
        uvloop.install()
    except ImportError:
        pass
    out.put(asyncio.run(main()))


# --- the do-nothing floor server ---------------------------------------------------

def echo_floor_server(port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                prefix = await reader.readexactly(2)
                writer.write(prefix + await reader.readexactly(int.from_bytes(prefix, "big")))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    try:
        import uvloop  # type: ignore[import-not-found]
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())


# --- orchestration -----------------------------------------------------------------

def expect_phase(got: object, phase: str) -> None:
    if got != phase:
        raise RuntimeError(f"load generator: expected the start of its {phase!r} part, got {got!r}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def provision(home: Path, count: int, db: str | None = None) -> list[tuple[str, str]]:
    store = open_store(db, home=home)
    hsm = SoftHSM(load_lmk(home))
    store.add_merchant(MID, "bench merchant")
    provision_card(store, hsm, PAN, PIN, balance=10**12)
    terminals = []
    for i in range(count):
        tid = f"{20000001 + i}"
        sheet = provision_terminal(store, hsm, tid, MID, f"BENCH{i:06d}", "BENCH")
        terminals.append((tid, sheet.tmk.hex()))
    store.engine.dispose()
    return terminals


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="posdoctor-bench-") as tmp:
        home = Path(tmp)
        env = dict(os.environ, POSDOCTOR_HOME=str(home))
        os.environ["POSDOCTOR_HOME"] = str(home)
        terminals = provision(home, args.connections, args.db)
        port, floor_port = free_port(), free_port()
        serve_args = [sys.executable, "-m", "posdoctor.cli.main", "serve", "--no-tms", "--port", str(port)]
        if args.db:
            serve_args += ["--db", args.db]
        if args.short:
            serve_args.append("--short")
        if args.profile:  # sample the host process (all threads) with py-spy
            serve_args = [str(Path(sys.executable).with_name("py-spy")), "record", "--threads", "--gil", "--subprocesses", "-r", "250",
                          "-f", args.profile_format,
                          "-o", args.profile, "--", *serve_args]
        host = subprocess.Popen(serve_args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ctx = mp.get_context("spawn")
        floor = ctx.Process(target=echo_floor_server, args=(floor_port,), daemon=True)
        floor.start()
        try:
            wait_listening(port)
            wait_listening(floor_port)
            per_terminal = int(args.max_rate * args.seconds / args.connections) + 10
            out: mp.Queue = ctx.Queue()
            gen = ctx.Process(target=load_generator, args=(
                port, floor_port, terminals, per_terminal, args.seconds, args.short, out))
            speed_before = machine_speed.measure()
            gen.start()
            expect_phase(out.get(timeout=600), "host")
            host_before = proc_cpu.snapshot(host.pid)
            expect_phase(out.get(timeout=args.seconds * 3 + 60), "floor")
            host_cpu = proc_cpu.since(host_before, host.pid)
            result = out.get(timeout=args.seconds * 3 + 60)
            gen.join()
            speed_after = machine_speed.measure()
        finally:
            os.kill(host.pid, signal.SIGINT) if args.profile else host.terminate()
            floor.terminate()
            _, host_err = host.communicate(timeout=30)
        if host.returncode not in (0, -15):
            sys.stderr.write(host_err.decode(errors="replace"))
    h, f = result["host"], result["floor"]
    sales = h["codes"].get("00", 0) / h["elapsed"]
    floor_rate = f["count"] / f["elapsed"]
    return {
        "mode": "short" if args.short else "persistent", "connections": args.connections,
        "seconds": args.seconds, "sales_per_s": round(sales, 1), "p50_ms": round(h["p50_ms"], 2),
        "p99_ms": round(h["p99_ms"], 2), "echo_floor_per_s": round(floor_rate, 1),
        "ratio_to_echo_floor": round(sales / floor_rate, 3) if floor_rate else None,
        "answers_by_code": h["codes"], "errors": h["errors"], "cpus": os.cpu_count(),
        "database": "postgresql" if args.db and args.db.startswith("postgres") else "sqlite",
        "load_avg_1m": round(os.getloadavg()[0], 2), "machine_speed": [speed_before, speed_after],
        **host_cpu, "generator_cpu_s": round(h["cpu_s"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--short", action="store_true", help="one connection per sale")
    parser.add_argument("--max-rate", type=float, default=12000.0,
                        help="sales/s the prepared message pool is sized for")
    parser.add_argument("--profile", metavar="FILE", help="record the host with py-spy into FILE")
    parser.add_argument("--profile-format", default="speedscope", help="py-spy output format (speedscope, flamegraph, raw)")
    parser.add_argument("--db", help="an EMPTY database URL (e.g. PostgreSQL) instead of a temporary SQLite file")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")


if __name__ == "__main__":
    main()
