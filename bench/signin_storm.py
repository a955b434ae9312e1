"""Morning sign-in storm: N distinct terminals sign in (0800/004) against one host process.

    python bench/signin_storm.py --terminals 50000 --json

Set-up (not timed): a temporary SQLite home, one merchant and N terminals provisioned in
bulk through `host.provision.provision_terminals` (the store and the SoftHSM, as
`posdoctor terminal add` would, each with its own TK and TMK), then `posdoctor serve` as
its own process, which loads the registry.

Timed: load-generator processes (separate from the host) each take a slice of the
terminals, build their 0800/004 requests, wait for a common start, then send them over
real TCP with a bounded number in flight: by default each terminal opens its own
connection, signs in, and closes (`--per-connection K` lets one connection carry K
terminals one after the other). `seconds` runs from the first request sent to the last
answer received, over all generators.

Checked after the clock stops, for every terminal: answer 0810 with 39 = 00 and the
terminal's own 41; the three working keys in 62 decrypted under that terminal's TMK and
each key's check value compared with the one the host sent; then the database holds
exactly 3 active PIK/MAK/TDK rows per terminal (the answers left only after their key
rows were committed). Any difference is a failure.

Prints one JSON line: signed_in, seconds, failures, signins_per_s, latency p50/p99,
provisioning and host start times, host CPU seconds, and the settings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

import machine_speed  # bench/machine_speed.py (a script's own folder is on sys.path)
import proc_cpu

from posdoctor.crypto.ciphers import Algorithm, EcbCipher
from posdoctor.crypto.hsm import SoftHSM
from posdoctor.crypto.kcv import KCV_LENGTH, check_value_with
from posdoctor.host.provision import TerminalSpec, provision_terminals
from posdoctor.iso8583.codec import decode_message, encode_message
from posdoctor.iso8583.fields import Field60, decode_key_block
from posdoctor.iso8583.framing import Frame, FrameConfig, Header, decode_frame, encode_frame
from posdoctor.store.config import load_lmk
from posdoctor.store.db import open_store
from posdoctor.store.models import TerminalKey

MID = "898100000000001"
FIRST_TID = 10_000_001
TPDU = bytes.fromhex("6000030000")
PROVISION_CHUNK = 5000


# --- set-up ----------------------------------------------------------------------------

def provision(home: Path, count: int, progress: bool, db: str | None = None) -> list[tuple[str, bytes]]:
    """N terminals with their clear TMKs (the key room sheet's copy)."""
    store = open_store(db, home=home)
    hsm = SoftHSM(load_lmk(home))
    store.add_merchant(MID, "storm merchant")
    terminals: list[tuple[str, bytes]] = []
    for start in range(0, count, PROVISION_CHUNK):
        specs = [TerminalSpec(f"{FIRST_TID + i}", MID, f"STORM{FIRST_TID + i}", "N910")
                 for i in range(start, min(count, start + PROVISION_CHUNK))]
        sheets = provision_terminals(store, hsm, specs)
        terminals += [(spec.tid, sheet.tmk) for spec, sheet in zip(specs, sheets, strict=True)]
        if progress:
            print(f"provisioned {len(terminals)}/{count}", file=sys.stderr, flush=True)
    store.close()
    return terminals


def signin_frame(tid: str) -> bytes:
    msg = {"t": "0800", "11": "000001", "41": tid, "42": MID,
           "60": Field60("00", "000001", "004").encode(), "63": "001"}
    return encode_frame(Frame(TPDU, Header(), encode_message(msg)))


# --- load generator (own process) ------------------------------------------------------

async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, frame: bytes) -> bytes:
    writer.write(frame)
    prefix = await reader.readexactly(2)
    return await reader.readexactly(int.from_bytes(prefix, "big"))


async def storm(port: int, frames: list[tuple[str, bytes]], concurrency: int, per_connection: int,
                go: float) -> dict:
    answers: dict[str, bytes] = {}
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    groups = [frames[i:i + per_connection] for i in range(0, len(frames), per_connection)]
    queue = iter(groups)
    first_sent: list[float] = []

    async def worker() -> None:
        for group in queue:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError as exc:
                errors[f"connect: {type(exc).__name__}"] += len(group)
                continue
            try:
                for tid, frame in group:
                    started = time.monotonic()
                    if not first_sent:
                        first_sent.append(started)
                    answers[tid] = await _exchange(reader, writer, frame)
                    latencies.append(time.monotonic() - started)
            except (OSError, asyncio.IncompleteReadError) as exc:
                errors[f"exchange: {type(exc).__name__}"] += 1
            finally:
                writer.close()

    await asyncio.sleep(max(0.0, go - time.time()))
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"answers": answers, "latencies": latencies, "errors": dict(errors),
            "first": first_sent[0] if first_sent else None, "last": time.monotonic()}


# --- checks ----------------------------------------------------------------------------

def check_answer(tid: str, tmk: bytes, payload: bytes | None) -> str | None:
    """None when the answer carries three working keys that open under the TMK with
    the check values sent; else what is wrong."""
    if payload is None:
        return "no answer"
    msg = decode_message(decode_frame(payload, FrameConfig()).body)
    if msg.get("t") != "0810" or msg.get("39") != "00" or msg.get("41") != tid:
        return f"answer {msg.get('t')} rc {msg.get('39')} tid {msg.get('41')}"
    block = decode_key_block("004", bytes.fromhex(msg["62"]))
    under_tmk = EcbCipher(Algorithm.TDES, tmk)
    for name, encrypted, sent_kcv in (("PIK", block.pik, block.pik_cv), ("MAK", block.mak, block.mak_cv),
                                      ("TDK", block.tdk, block.tdk_cv)):
        clear = under_tmk.decrypt(encrypted)
        if check_value_with(EcbCipher(Algorithm.TDES, clear), KCV_LENGTH)[:len(sent_kcv)] != sent_kcv:
            return f"{name} check value differs"
    return None


def active_working_key_rows(home: Path, db: str | None = None) -> int:
    store = open_store(db, home=home, migrate=False)
    try:
        with store.engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(TerminalKey).where(
                TerminalKey.active, TerminalKey.kind.in_(("PIK", "MAK", "TDK")))) or 0
    finally:
        store.close()


def wait_listening(port: int, host: subprocess.Popen, timeout: float = 600.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if host.poll() is not None:
            raise RuntimeError(f"the host exited with {host.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- orchestration ---------------------------------------------------------------------

def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="posdoctor-storm-") as tmp:
        home = Path(tmp)
        os.environ["POSDOCTOR_HOME"] = str(home)
        started = time.monotonic()
        terminals = provision(home, args.terminals, not args.json, args.db)
        provision_s = time.monotonic() - started
        port = free_port()
        serve = [sys.executable, "-m", "posdoctor.cli.main", "serve", "--no-tms", "--port", str(port)]
        if args.db:
            serve += ["--db", args.db]
        if args.profile:  # py-spy samples the host (all threads) into FILE (raw collapsed stacks)
            serve = [str(Path(sys.executable).with_name("py-spy")), "record", "--threads", "--gil", "--subprocesses", "-r", "200", "-f", "raw",
                     "-o", args.profile, "--", *serve]
        host = subprocess.Popen(serve, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            started = time.monotonic()
            wait_listening(port, host)
            host_start_s = time.monotonic() - started
            speed_before = machine_speed.measure()
            result = drive(port, terminals, args, host.pid)
            speed_after = machine_speed.measure()
            result.update(proc_cpu.since(result.pop("host_before"), host.pid))
        finally:
            host.send_signal(signal.SIGINT) if args.profile else host.terminate()
            _, host_err = host.communicate(timeout=120)
        if host.returncode not in (0, -15):
            sys.stderr.write(host_err.decode(errors="replace")[-4000:])
        tmks = dict(terminals)
        failures = Counter()
        for tid, tmk in tmks.items():
            problem = check_answer(tid, tmk, result["answers"].get(tid))
            if problem is not None:
                failures[problem.split(" rc ")[0] if problem.startswith("answer") else problem] += 1
        key_rows = active_working_key_rows(home, args.db)
    if key_rows != 3 * args.terminals:
        failures[f"{key_rows} active working key rows, expected {3 * args.terminals}"] += 1
    latencies = sorted(result["latencies"])
    seconds = result["seconds"]
    signed_in = len(tmks) - sum(n for p, n in failures.items() if "key rows" not in p)
    return {
        "signed_in": signed_in, "seconds": round(seconds, 2), "failures": sum(failures.values()),
        "failure_kinds": dict(failures), "terminals": args.terminals,
        "signins_per_s": round(len(latencies) / seconds, 1) if seconds else None,
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2) if latencies else None,
        "keys_checked": 3 * (len(tmks) - sum(failures.values())) if not failures else None,
        "active_working_key_rows": key_rows, "provision_s": round(provision_s, 1),
        "host_start_s": round(host_start_s, 1), "host_cpu_s": result["host_cpu_s"],
        "host_user_s": result["host_user_s"], "host_sys_s": result["host_sys_s"],
        "host_thread_cpu_s": result["host_thread_cpu_s"], "generator_cpu_s": result["generator_cpu_s"],
        "commit_process_cpu_s": result["commit_process_cpu_s"],
        "loop_on_cpu_s": result["loop_on_cpu_s"], "loop_runqueue_wait_s": result["loop_runqueue_wait_s"],
        "generators": args.generators, "concurrency": args.concurrency,
        "per_connection": args.per_connection, "errors": result["errors"], "cpus": os.cpu_count(),
        "database": "postgresql" if args.db and args.db.startswith("postgres") else "sqlite",
        "load_avg_1m": round(os.getloadavg()[0], 2), "machine_speed": [speed_before, speed_after],
    }


def drive(port: int, terminals: list[tuple[str, bytes]], args: argparse.Namespace, host_pid: int) -> dict:
    """Start the generators, let them build their frames, then release them together."""
    ctx = mp.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    go_at = time.time() + 3600  # replaced below once every generator is ready
    slices = [[tid for tid, _ in terminals[i::args.generators]] for i in range(args.generators)]
    shared_go = ctx.Value("d", go_at)
    procs = [ctx.Process(target=_generator_entry, args=(port, tids, max(1, args.concurrency // args.generators),
                                                         args.per_connection, shared_go, ready, out))
             for tids in slices]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=600)
    host_before = proc_cpu.snapshot(host_pid)
    with shared_go.get_lock():
        shared_go.value = time.time() + 0.5
    results = [out.get(timeout=args.timeout) for _ in procs]
    for proc in procs:
        proc.join()
    answers: dict[str, bytes] = {}
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    for r in results:
        answers.update(r["answers"])
        latencies += r["latencies"]
        errors.update(r["errors"])
    firsts = [r["first"] for r in results if r["first"] is not None]
    seconds = max(r["last"] for r in results) - min(firsts) if firsts else 0.0
    return {"answers": answers, "latencies": latencies, "errors": dict(errors), "seconds": seconds,
            "host_before": host_before,
            "generator_cpu_s": round(sum(r["cpu_s"] for r in results), 2)}


def _generator_entry(port: int, tids: list[str], concurrency: int, per_connection: int, shared_go: object,
                     ready: mp.Queue, out: mp.Queue) -> None:
    """One load-generator process: frames first, then wait for the common start time."""
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    frames = [(tid, signin_frame(tid)) for tid in tids]
    ready.put(len(frames))
    while shared_go.value > time.time() + 60:  # type: ignore[attr-defined]
        time.sleep(0.01)
    cpu = os.times()
    result = asyncio.run(storm(port, frames, concurrency, per_connection, shared_go.value))  # type: ignore[attr-defined]
    done = os.times()
    result["cpu_s"] = (done.user - cpu.user) + (done.system - cpu.system)
    out.put(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terminals", type=int, default=50_000)
    parser.add_argument("--generators", type=int, default=1, help="load-generator processes")
    parser.add_argument("--concurrency", type=int, default=200, help="sign-ins in flight, over all generators")
    parser.add_argument("--per-connection", type=int, default=1,
                        help="terminals signing in one after the other on one connection")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--db", help="an EMPTY database URL (e.g. PostgreSQL) instead of a temporary SQLite file")
    parser.add_argument("--profile", metavar="FILE", help="record the host with py-spy (raw collapsed stacks)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
