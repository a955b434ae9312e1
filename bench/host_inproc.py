"""The host's pipeline without sockets: sales per second through `HostServer.handle_payload`.

    python bench/host_inproc.py --sales 20000 --json
    python bench/host_inproc.py --sales 20000 --cprofile /tmp/host.prof   # then pstats
    PYTHONHASHSEED=0 valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes \
        python bench/host_inproc.py --sales 1000 --callgrind   # instructions, per thread

One process: a temporary SQLite store (WAL), 64 provisioned terminals signed in with a
real 0800/004, then prepared 0200 sales (MAC and PIN block under each terminal's session
keys) pushed through the full pipeline by 64 concurrent workers, each answer waiting for
its group commit as on the wire. What it leaves out is the TCP and framing cost (see
`host_tps.py` for that); it is the tool for profiling the host's own work.

`cpu_us_per_sale` is the process's CPU time (both threads) per sale: on a shared
machine it moves much less than sales/s, and 1e6 / cpu_us_per_sale is what one core
could do. This VM's speed drifts (bench/machine_speed.py), so small changes are best
compared in instructions: under valgrind's callgrind with `--callgrind`, counting is
switched on (`callgrind_control -i on`) only around the timed part, and callgrind
writes one file per thread (the event loop is thread 1); the same code and input give
the same count to within a fraction of a percent, whatever else the machine does.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from host_tps import body_of, frame_of, percentile, provision, sale_request, signin_request  # noqa: E402

from posdoctor.crypto.ciphers import tdes_decrypt_ecb  # noqa: E402
from posdoctor.crypto.hsm import SoftHSM  # noqa: E402
from posdoctor.host import HostConfig, HostServer  # noqa: E402
from posdoctor.iso8583.fields import Field60, decode_key_block  # noqa: E402
from posdoctor.store.config import load_lmk  # noqa: E402
from posdoctor.store.db import open_store  # noqa: E402


async def sign_in(host: HostServer, tid: str, tmk: bytes, count: int) -> list[bytes]:
    ctx = await host.handle_payload(frame_of(signin_request(tid, 1))[2:])
    answer = body_of(ctx.session.sent[0])
    keys = decode_key_block("004", bytes.fromhex(answer["62"]))
    pik, mak = tdes_decrypt_ecb(tmk, keys.pik), tdes_decrypt_ecb(tmk, keys.mak)
    batch = Field60.decode(answer["60"]).batch
    return [frame_of(sale_request(tid, stan, batch, pik, mak))[2:] for stan in range(2, count + 2)]


async def drive(host: HostServer, queues: list[list[bytes]]) -> dict:
    latencies: list[float] = []
    codes: Counter[str] = Counter()

    async def worker(payloads: list[bytes]) -> None:
        for payload in payloads:
            started = time.perf_counter()
            ctx = await host.handle_payload(payload)
            latencies.append(time.perf_counter() - started)
            codes[ctx.answer["39"] if ctx.answer else "none"] += 1

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(q) for q in queues))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    latencies.sort()
    return {"sales": len(latencies), "elapsed": elapsed, "cpu": cpu, "codes": dict(codes),
            "p50_ms": percentile(latencies, 0.5) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000}


async def run(home: Path, args: argparse.Namespace) -> dict:
    terminals = provision(home, args.connections)
    store = open_store(home=home)
    host = HostServer(store, SoftHSM(load_lmk(home)), HostConfig(port=0))
    await host.start()
    try:
        per = args.sales // args.connections
        queues = await asyncio.gather(*(sign_in(host, tid, bytes.fromhex(tmk), per) for tid, tmk in terminals))
        profiler = cProfile.Profile() if args.cprofile else None
        if profiler:
            profiler.enable()
        if args.callgrind:
            callgrind_instrumentation("on")
        result = await drive(host, queues)
        if args.callgrind:
            callgrind_instrumentation("off")
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.cprofile)
        result["commits"] = host.ledger.commits
    finally:
        await host.stop()
        store.close()
    return result


def callgrind_instrumentation(state: str) -> None:
    """Switch callgrind's counting for this process (run under valgrind --tool=callgrind)."""
    subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--cprofile", metavar="FILE", help="cProfile the timed part (event-loop thread only)")
    parser.add_argument("--callgrind", action="store_true",
                        help="count instructions of the timed part only (run under valgrind --tool=callgrind)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    with tempfile.TemporaryDirectory(prefix="posdoctor-inproc-") as tmp:
        result = asyncio.run(run(Path(tmp), args))
    out = {"sales_per_s": round(result["sales"] / result["elapsed"], 1), "p50_ms": round(result["p50_ms"], 2),
           "p99_ms": round(result["p99_ms"], 2), "answers_by_code": result["codes"],
           "cpu_us_per_sale": round(result["cpu"] / result["sales"] * 1e6, 1),
           "commits": result["commits"], "sales": result["sales"], "load_avg_1m": os.getloadavg()[0]}
    print(json.dumps(out) if args.json else out)


if __name__ == "__main__":
    main()
