"""Campaign benchmark: N emulated terminals (one process, asyncio) upgraded by one campaign.

    python bench/campaign_10k.py --terminals 10000 --json
    python bench/campaign_10k.py --terminals 10000 --tmpfs --json   # terminal files on /dev/shm

Setup (not timed in ``seconds``): a temporary home and SQLite database, one merchant, N
terminals registered (device serials, model EMU-100), a signed 16 KiB package added, and
N emulated terminals created on storage: state file with a TMK sealed under the device
key, device key file, factory slot A with version 010000.

Timed: a campaign (canary 10 %, then the rest; failure threshold 20 %; window all day;
no stagger) is created and started, then every terminal, through `LocalTmsClient` (the
same `TmsService` methods the HTTP API calls), runs rounds of: heartbeat (telemetry
payload recorded as evidence) then `UpgradeAgent.poll()`, until the campaign completes.
A terminal's upgrade is the full agent path: upgrade check, chunked download (64 KiB
chunks, offset persisted), sha256 + Ed25519 verification, manifest and model check,
install into slot B, trial reboot, device self-check, commit, and one upgrade report per
step written by the TMS (campaign counters, wave logic). The test sign-in is **skipped**
(reported ``sign_in`` ok with reason ``skipped:no_host``): no acquiring host runs here.
Every durable write of the terminals is atomic and fsync'ed (temp file, fsync, rename,
directory fsync) on the chosen filesystem.

Prints one JSON line: terminals, seconds (campaign), setup_seconds, succeeded, failed,
rolled_back, campaign state, upgraded terminals counted from their own slots, peak RSS
MB and per-terminal KB (peak RSS above the baseline before the terminals were built,
divided by N).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from posdoctor.crypto.ciphers import Algorithm
from posdoctor.store import open_store
from posdoctor.terminal import Device, PaymentApp, TerminalFiles, new_state
from posdoctor.terminal.slots import SlotStore, slots_dir
from posdoctor.terminal.telemetry import Telemetry
from posdoctor.terminal.tmsclient import LocalTmsClient, ReportBatch
from posdoctor.terminal.upgrade import UpgradeAgent
from posdoctor.tms.campaigns import CampaignSettings, create_campaign, start_campaign
from posdoctor.tms.firmware import add_package, build_package
from posdoctor.tms.service import TmsService
from posdoctor.tms.signing import public_key_hex

MID = "898100000000001"
MODEL = "EMU-100"
NEW = "020000"
CONCURRENCY = 64


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def progress(enabled: bool, text: str) -> None:
    if enabled:
        print(text, file=sys.stderr, flush=True)


def register(store, count: int) -> list[tuple[str, str]]:
    store.add_merchant(MID, "基准商户")
    pairs = [(f"{50000000 + n:08d}", f"BENCH{n:06d}") for n in range(count)]
    for tid, serial in pairs:
        store.add_terminal(tid, MID, serial, model=MODEL)
    return pairs


class Terminal:
    __slots__ = ("app", "agent", "telemetry", "client", "done")

    def __init__(self, home: Path, files: TerminalFiles, service: TmsService, tid: str, serial: str,
                 key: str, batch: ReportBatch | None) -> None:
        state = new_state(tid, serial, mid=MID, model=MODEL)
        state.tms_public_key = key
        device = Device(serial, MODEL, device_key=files.device_key(tid))
        self.app = PaymentApp(state, device, persist=files.save)
        self.app.keys.store("TMK", os.urandom(16), Algorithm.TDES)
        self.client = LocalTmsClient(service, tid, serial, batch)
        self.agent = UpgradeAgent(self.app, device, self.client, home=home, test_sign_in=False)
        self.telemetry = Telemetry(state, device, self.app.events, files.save)
        self.agent.power_on()  # factory slot A, state saved
        self.done = False

    async def round(self) -> None:
        await self.telemetry.send_heartbeat(self.client)
        result = await self.agent.poll()
        self.done = result.status == "upgraded" or self.app.state.app_version == NEW


async def run_rounds(terminals: list[Terminal], store, campaign_id: int, batch: ReportBatch | None,
                     verbose: bool) -> int:
    rounds = 0
    while True:
        pending = [t for t in terminals if not t.done]
        if not pending or rounds > 10:
            return rounds
        rounds += 1
        for start in range(0, len(pending), CONCURRENCY):
            await asyncio.gather(*(t.round() for t in pending[start:start + CONCURRENCY]))
            if batch is not None:
                batch.flush()
            if start % 1000 == 0:
                row = store.get_campaign(campaign_id)
                progress(verbose, f"round {rounds}: {start}/{len(pending)} polled, state {row.state}, "
                                  f"succeeded {row.succeeded}, failed {row.failed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--terminals", type=int, default=10_000)
    parser.add_argument("--package-kb", type=int, default=16)
    parser.add_argument("--tmpfs", action="store_true", help="keep the terminals' files on /dev/shm")
    parser.add_argument("--unbatched", action="store_true",
                        help="one TMS transaction per report (the HTTP API's path) instead of one per 64 terminals")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    verbose = not args.quiet
    work = Path(tempfile.mkdtemp(prefix="posdoctor-campaign-", dir="/dev/shm" if args.tmpfs else None))
    term_home = Path(tempfile.mkdtemp(prefix="posdoctor-terms-", dir="/dev/shm")) if args.tmpfs else work / "home"
    try:
        result = asyncio.run(bench(args, work, term_home, verbose))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(term_home, ignore_errors=True)
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


async def bench(args: argparse.Namespace, work: Path, term_home: Path, verbose: bool) -> dict:
    started_setup = time.perf_counter()
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    term_home.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite:///{work / 'bench.db'}", home=home)
    pairs = register(store, args.terminals)
    progress(verbose, f"registered {len(pairs)} terminals")
    add_package(store, home, build_package(NEW, [MODEL], payload_size=args.package_kb * 1024), version=NEW)
    service = TmsService(store, home)
    key = public_key_hex(home)
    files = TerminalFiles(term_home)
    baseline = rss_mb()
    batch = None if args.unbatched else ReportBatch(service)
    terminals = [Terminal(term_home, files, service, tid, serial, key, batch) for tid, serial in pairs]
    progress(verbose, f"built {len(terminals)} emulated terminals")
    setup_seconds = time.perf_counter() - started_setup
    started = time.perf_counter()
    settings = CampaignSettings(canary_pct=10, threshold=0.2, min_sample=5, window="00:00-23:59", stagger_minutes=0)
    campaign = create_campaign(store, "bench", NEW, models=[MODEL], settings=settings)
    start_campaign(store, campaign.id)
    rounds = await run_rounds(terminals, store, campaign.id, batch, verbose)
    seconds = time.perf_counter() - started
    row = store.get_campaign(campaign.id)
    on_new = sum(SlotStore(slots_dir(term_home, t.app.state.tid)).summary()["versions"]["B"] == NEW
                 and t.app.state.app_version == NEW for t in terminals)
    peak = rss_mb()
    store.close()
    return {
        "terminals": len(terminals), "seconds": round(seconds, 2), "setup_seconds": round(setup_seconds, 2),
        "rounds": rounds, "campaign_state": row.state, "succeeded": row.succeeded, "failed": row.failed,
        "rolled_back": row.rolled_back, "terminals_on_new_version": on_new,
        "upgrades_per_s": round(row.succeeded / seconds, 1) if seconds else None,
        "peak_rss_mb": round(peak, 1), "per_terminal_kb": round((peak - baseline) * 1024 / len(terminals), 1),
        "package_bytes": store.get_package(NEW).size, "terminal_files": "tmpfs" if args.tmpfs else "disk",
        "sign_in": "skipped (no host)", "reports": "per report" if args.unbatched else f"batched per {CONCURRENCY}",
    }


if __name__ == "__main__":
    main()
