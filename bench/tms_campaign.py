"""Bench: a firmware campaign over N terminals through TmsService (the LocalTmsClient path).

    .venv/bin/python bench/tms_campaign.py [--terminals 10000] [--db URL] [--batch 0]

Registers N terminals (bulk), records one heartbeat each (batched), adds a package,
creates and starts a campaign (10 % canary), then plays every terminal's upgrade agent:
upgrade check, then the report steps download..commit, wave after wave, until the
campaign completes. Prints the time of each phase and the peak memory (RSS).
``--batch K`` uses the batch methods (``TmsService.upgrade_checks`` for all terminals at
once, ``upgrade_reports`` K reports per transaction) instead of one call per terminal.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

from posdoctor.store import open_store
from posdoctor.store.models import Device, Merchant, Terminal
from posdoctor.tms.campaigns import CampaignSettings, create_campaign, start_campaign
from posdoctor.tms.firmware import add_package, build_package
from posdoctor.tms.reports import Report, record_reports
from posdoctor.tms.service import TmsService

STEPS = ("download", "verify", "install", "reboot", "self_check", "sign_in", "commit")


def phase(name: str, started: float) -> float:
    now = time.perf_counter()
    print(f"{name:<28} {now - started:8.2f} s")
    return now


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--terminals", type=int, default=10_000)
    parser.add_argument("--db", default=None)
    parser.add_argument("--batch", type=int, default=0)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="tmsbench"))
    store = open_store(args.db or f"sqlite:///{home}/bench.db", home=home)
    n, now = args.terminals, datetime.now(UTC)
    tids = [f"{50000000 + i:08d}" for i in range(n)]
    t = time.perf_counter()
    with store.tms_write() as session:
        connection = session.connection()
        connection.execute(insert(Merchant.__table__), [dict(mid="898100000000001", name="bench",
                                                             status="active", created_at=now)])
        connection.execute(insert(Device.__table__), [dict(serial=f"SN{tid}", model="P1", created_at=now)
                                                      for tid in tids])
        connection.execute(insert(Terminal.__table__), [
            dict(tid=tid, mid="898100000000001", serial=f"SN{tid}", model="P1", status="active",
                 batch_no=1, created_at=now) for tid in tids])
    t = phase(f"register {n} terminals", t)
    record_reports(store, [Report(tid, "heartbeat", {"app_version": "1.0.0", "model": "P1"}, now)
                           for tid in tids])
    t = phase(f"{n} heartbeats (1 batch)", t)
    add_package(store, home, build_package("2.0.0", ["P1"], payload_size=256 * 1024), version="2.0.0")
    campaign = create_campaign(store, "bench", "2.0.0", settings=CampaignSettings(canary_pct=10))
    campaign = start_campaign(store, campaign.id)
    t = phase(f"start campaign ({campaign.targeted})", t)
    service = TmsService(store, home)
    checks = reports = 0
    check_time = report_time = 0.0
    while store.get_campaign(campaign.id).state == "running":
        c0 = time.perf_counter()
        if args.batch:
            answers = service.upgrade_checks([(tid, "1.0.0", "P1") for tid in tids])
        else:
            answers = [service.upgrade_check(tid, "1.0.0", "P1") for tid in tids]
        offered = [tid for tid, answer in zip(tids, answers, strict=True) if answer is not None]
        check_time += time.perf_counter() - c0
        checks += len(tids)
        if not offered:
            break
        r0 = time.perf_counter()
        payloads = [(tid, {"campaign": campaign.id, "step": step, "ok": True, "from_version": "1.0.0",
                           "to_version": "2.0.0"}) for tid in offered for step in STEPS]
        if args.batch:
            for i in range(0, len(payloads), args.batch):
                service.upgrade_reports(payloads[i:i + args.batch])
        else:
            for tid, body in payloads:
                service.upgrade_report(tid, body)
        report_time += time.perf_counter() - r0
        reports += len(payloads)
        done = set(offered)
        tids = [tid for tid in tids if tid not in done]
    t = phase("campaign played", t)
    final = store.get_campaign(campaign.id)
    print(f"upgrade checks: {checks} in {check_time:.2f} s ({1000 * check_time / max(checks, 1):.3f} ms each)")
    print(f"upgrade reports: {reports} in {report_time:.2f} s ({1000 * report_time / max(reports, 1):.3f} ms each)")
    print(f"campaign {final.id}: {final.state} targeted {final.targeted} succeeded {final.succeeded} "
          f"failed {final.failed}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    store.close()


if __name__ == "__main__":
    main()
