"""Benchmark: ``diagnose --fleet`` over a fleet with a day of evidence.

    python bench/fleet_diagnose.py --terminals 10000 --json

Builds a registry of N terminals (one merchant each) and a day of evidence written
through the producers' own store methods, in bulk: the host's journal rows and events
(``Store.apply_host_batch``, rows shaped like the pipeline writes them), the terminals'
heartbeats, self-checks and log uploads (``posdoctor.tms.reports.record_reports``) and
TMS history (lifecycle status changes). About 1% of the terminals get a fault (MAC
errors, a disabled terminal, a frozen merchant, connect timeouts, a printer out of
paper, insufficient funds, a wrong TMK). Then it times the fleet diagnosis (evidence
load, rules, ranking, the JSON document) and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from posdoctor.store import open_store
from posdoctor.store.models import Device, Merchant, Terminal
from posdoctor.store.records import EventRecord, JournalRecord
from posdoctor.tms.reports import Report, record_reports

DAY = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
FAULTS = ("keys.mak_desync", "status.terminal_disabled", "status.merchant_frozen", "net.firewall_blocked",
          "hw.printer", "txn.insufficient_funds", "keys.tmk_mismatch")
OK_STEPS = [{"step": s, "verdict": "ok", "reason": ""} for s in ("DecodeFrame", "SelectRoute", "CheckFields",
                                                                 "LoadTerminal", "CheckStatus")]


def tid_of(i: int) -> str:
    return str(10000001 + i)


def mid_of(i: int) -> str:
    return str(898100000000001 + i)


def build_registry(store: Any, n: int) -> None:
    """Merchants, devices, terminals in bulk (the registry tables as provisioning leaves them)."""
    now = DAY - timedelta(days=30)
    with store.engine.begin() as conn:
        conn.execute(Merchant.__table__.insert(), [{"mid": mid_of(i), "name": f"商户{i}", "status": "active",
                                                    "created_at": now} for i in range(n)])
        conn.execute(Device.__table__.insert(), [{"serial": f"SN{i:08d}", "model": "N910", "created_at": now}
                                                 for i in range(n)])
        conn.execute(Terminal.__table__.insert(), [{"tid": tid_of(i), "mid": mid_of(i), "serial": f"SN{i:08d}",
                                                    "model": "N910", "status": "active", "batch_no": 1,
                                                    "created_at": now} for i in range(n)])


def pair(tid: str, mid: str, at: datetime, route: str, stan: int, rc: str = "00",
         refused: tuple[str, str] | None = None) -> list[JournalRecord]:
    steps = list(OK_STEPS)
    if refused:
        steps = steps[:-1] + [{"step": refused[0], "verdict": "refused", "reason": refused[1]}]
    common = {"tid": tid, "mid": mid, "route": route, "stan": f"{stan:06d}", "rc": rc, "peer": "10.0.0.1:5000"}
    return [JournalRecord("in", at, mti="0200", steps=steps, fields={"11": f"{stan:06d}"}, **common),
            JournalRecord("out", at + timedelta(milliseconds=5), mti="0210", latency_ms=4.2, **common)]


def terminal_day(i: int, rng: random.Random, fault: str | None, outage: bool = False
                 ) -> tuple[list[Any], list[Report]]:
    tid, mid = tid_of(i), mid_of(i)
    start = DAY + timedelta(hours=8, minutes=rng.uniform(0, 60))
    journal = pair(tid, mid, start, "sign_in_004", 1)
    events: list[dict[str, Any]] = [{"at": start.isoformat(), "kind": "sign_in", "code": "ok.sign_in",
                                     "message_zh": "签到成功", "message_en": "Signed in", "detail": {"nmi": "004"}}]
    for k in range(rng.randint(4, 10)):
        at = start + timedelta(minutes=30 + 50 * k + rng.uniform(0, 20))
        rc, refused = "00", None
        if fault == "keys.mak_desync" and k >= 2:
            rc, refused = "A0", ("VerifyMac", "MAC does not match the MAK issued at 2026-11-28 08:10:00")
        elif fault == "status.terminal_disabled" and k >= 2:
            rc, refused = "97", ("CheckStatus", f"terminal {tid} disabled: risk")
        elif fault == "txn.insufficient_funds" and k % 2:
            rc, refused = "51", ("Authorize", "insufficient funds")
        if fault == "net.firewall_blocked" and k >= 1:  # nothing reaches the host any more
            events.append({"at": at.isoformat(), "kind": "sale",
                           "code": "comm.connect_timeout", "message_zh": "连接超时", "message_en": "timeout",
                           "detail": {"host": "10.1.2.3", "port": 5800, "stage": "connect"}})
            continue
        journal += pair(tid, mid, at, "sale", k + 2, rc, refused)
        code = "ok.approved" if rc == "00" else f"host.rc.{rc}"
        events.append({"at": at.isoformat(), "kind": "sale", "code": code, "message_zh": "", "message_en": "",
                       "detail": {"stan": f"{k + 2:06d}"}})
    if outage:  # the host answers 96 to everyone for ten minutes in the afternoon
        at = DAY + timedelta(hours=14, minutes=rng.uniform(0, 10))
        journal += pair(tid, mid, at, "sale", 80, "96", ("Authorize", "host fault"))
        events.append({"at": at.isoformat(), "kind": "sale", "code": "host.rc.96", "message_zh": "", "message_en": "",
                       "detail": {"stan": "000080"}})
    if fault == "keys.tmk_mismatch":
        events.append({"at": (start + timedelta(seconds=1)).isoformat(), "kind": "sign_in",
                       "code": "keys.check_failed", "message_zh": "密钥校验失败", "message_en": "key check failed",
                       "detail": {}})
    end = DAY + timedelta(hours=21, minutes=rng.uniform(0, 30))
    if fault != "net.firewall_blocked":
        journal += pair(tid, mid, end, "settlement", 90) + pair(tid, mid, end + timedelta(seconds=3), "sign_off", 91)
    reports = [Report(tid, "logs", {"events": events}, end)]
    for h in range(8, 22, 2):
        at = DAY + timedelta(hours=h, minutes=rng.uniform(0, 5))
        printer = "paper_out" if fault == "hw.printer" and h >= 12 else "ok"
        reports.append(Report(tid, "heartbeat", {
            "at": at.isoformat(), "app_version": "010000", "firmware_version": "1.0.0", "model": "N910",
            "serial": f"SN{i:08d}", "peripherals": {"printer": printer, "card_reader": "ok", "keypad": "ok",
                                                    "storage": "ok", "power": "ok"},
            "battery_pct": 100, "power_source": "mains", "signal_dbm": -70, "network": "4g",
            "error_counters": {"connect_timeout": 0, "reboot": 0}, "comm": {"host": "10.1.2.3", "port": 5800,
                                                                            "tpdu": "6000030000"},
            "installed_apps": ["cup_payment"], "uptime_s": 3600 * (h - 7)}, at))
    return journal, reports


def build_day(store: Any, n: int, seed: int, outage: bool = False) -> dict[str, int]:
    rng = random.Random(seed)
    faulty = {i: FAULTS[k % len(FAULTS)] for k, i in enumerate(rng.sample(range(n), max(1, n // 100)))}
    rows = events = 0
    journal: list[Any] = []
    reports: list[Report] = []
    for i in range(n):
        j, r = terminal_day(i, rng, faulty.get(i), outage)
        journal += j
        reports += r
        if len(journal) > 20000:
            rows += store.apply_host_batch(journal).written
            journal = []
        if len(reports) > 4000:
            events += record_reports(store, reports)
            reports = []
    rows += store.apply_host_batch(journal).written if journal else 0
    events += record_reports(store, reports) if reports else 0
    for i, cause in faulty.items():
        if cause == "status.terminal_disabled":
            store.change_terminal_status(tid_of(i), "disabled", reason="risk", actor="ops",
                                         now=DAY + timedelta(hours=9))
        elif cause == "status.merchant_frozen":
            store.change_merchant_status(mid_of(i), "frozen", reason="risk", actor="ops", now=DAY + timedelta(hours=9))
    store.record_events([EventRecord("host", "registry_reloaded", DAY + timedelta(hours=9), None, None, {})])
    return {"journal_rows": rows, "report_events": events, "faulty": len(faulty)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terminals", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    parser.add_argument("--outage", action="store_true",
                        help="worst case: the host answers 96 to every terminal for ten minutes")
    args = parser.parse_args(argv)
    from posdoctor.doctor.diagnose import diagnose_fleet

    home = Path(tempfile.mkdtemp(prefix="pd-bench-"))
    url = args.db or f"sqlite:///{home / 'fleet.db'}"
    store = open_store(url, home=home)
    t0 = time.perf_counter()
    build_registry(store, args.terminals)
    built = build_day(store, args.terminals, args.seed, args.outage)
    setup_s = time.perf_counter() - t0
    if not args.json:
        print(f"setup {setup_s:.1f}s: {built}", file=sys.stderr)
    t1 = time.perf_counter()
    result = diagnose_fleet(store)
    document = json.dumps(result.to_json(), ensure_ascii=False)
    seconds = time.perf_counter() - t1
    out = {"bench": "fleet_diagnose", "terminals": args.terminals, "seconds": round(seconds, 2),
           "failing": len(result.terminals), "examined": result.examined, "faulty_injected": built["faulty"],
           "journal_rows": built["journal_rows"], "report_events": built["report_events"],
           "json_bytes": len(document), "by_cause": dict(result.by_cause),
           "backend": store.engine.dialect.name, "setup_s": round(setup_s, 1), "outage": args.outage}
    print(json.dumps(out, ensure_ascii=False))
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
