"""Upgrade-agent test kit: a terminal saved under a home, packages signed with a test TMS key,
and `ShelfTms`, a TMS in memory that speaks the `TmsClient` protocol.

`ShelfTms` offers one signed package, serves its bytes by range (optionally corrupted or
failing), and keeps every report; the real TMS service is exercised by the e2e tests.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from termhost import MAK, MID, PIK, SERIAL, TDK, TID, TMK

from posdoctor.crypto.ciphers import Algorithm
from posdoctor.terminal import Device, PaymentApp, TcpLink, TerminalFiles, new_state
from posdoctor.terminal.manifest import read_manifest
from posdoctor.terminal.tmsclient import TmsUnreachable
from posdoctor.terminal.upgrade import UpgradeAgent

MODEL = "EMU-100"
OLD = "010000"
NEW = "010100"
SIGNING_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC_KEY = SIGNING_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def package(version: str = NEW, models: tuple[str, ...] = (MODEL,), *, size: int = 8192, **kw: Any) -> bytes:
    """A package built by the TMS's own builder (imported here only: child processes skip it)."""
    from posdoctor.tms.firmware import build_package

    return build_package(version, list(models), payload_size=size, **kw)


@dataclass
class ShelfTms:
    """One offer, its bytes, and everything the terminal told us."""

    data: bytes
    campaign: str = "C1"
    window: dict[str, str] | None = None
    not_before: str | None = None
    signature: str = ""
    corrupt_at: int | None = None
    fail_downloads: int = 0
    fail_after_bytes: int | None = None
    rollback: bool = False
    withdrawn: bool = False
    delay_s: float = 0.0
    reports: list[dict[str, Any]] = field(default_factory=list)
    ranges: list[tuple[int, int]] = field(default_factory=list)
    heartbeats: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False

    def __post_init__(self) -> None:
        if not self.signature:
            self.signature = SIGNING_KEY.sign(self.data).hex()
        self.manifest = read_manifest(self.data)
        self.version = str(self.manifest["version"])

    def offer(self) -> dict[str, Any]:
        package_info = {"version": self.version, "size": len(self.data),
                        "sha256": hashlib.sha256(self.data).hexdigest(), "signature": self.signature,
                        "url": f"/api/v1/packages/{self.version}",
                        "settle_first": bool(self.manifest.get("settle_first")),
                        "resets": list(self.manifest.get("resets", []))}
        return {"campaign": self.campaign, "package": package_info, "window": self.window,
                "not_before": self.not_before}

    def _check_up(self) -> None:
        if self.down:
            raise TmsUnreachable("test TMS is down")

    async def check_upgrade(self, version: str, model: str) -> dict[str, Any] | None:
        self._check_up()
        if self.rollback:
            return {"action": "rollback", "campaign": self.campaign}
        return None if version == self.version or self.withdrawn else self.offer()

    async def download(self, package: dict[str, Any], start: int, end: int) -> bytes:
        self._check_up()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_after_bytes is not None and start >= self.fail_after_bytes and self.fail_downloads > 0:
            self.fail_downloads -= 1
            raise TmsUnreachable("connection reset mid-download")
        self.ranges.append((start, end))
        chunk = bytearray(self.data[start:end + 1])
        if self.corrupt_at is not None and start <= self.corrupt_at <= end:
            chunk[self.corrupt_at - start] ^= 0xFF
        return bytes(chunk)

    async def report_upgrade(self, report: dict[str, Any]) -> dict[str, Any]:
        self._check_up()
        self.reports.append(report)
        return {"accepted": 1}

    async def heartbeat(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._check_up()
        self.heartbeats.append(payload)
        return {"upgrade": False}

    async def upload_status(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._check_up()
        self.statuses.append(payload)
        return {"accepted": 1}

    async def upload_logs(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        self._check_up()
        self.logs.extend(events)
        return {"accepted": len(events)}

    def steps(self) -> list[tuple[str, bool]]:
        return [(r["step"], r["ok"]) for r in self.reports]


def make_terminal(home: Path, port: int, *, model: str = MODEL) -> PaymentApp:
    """A signed-in terminal saved under `home` (keys of termhost), trusting the test TMS key."""
    files = TerminalFiles(home)
    state = new_state(TID, SERIAL, mid=MID, model=model)
    state.comm.host, state.comm.port = "127.0.0.1", port
    state.comm.connect_timeout_s, state.comm.receive_timeout_s = 1.0, 1.0
    state.tms_public_key = PUBLIC_KEY
    device = Device(SERIAL, model, device_key=files.device_key(TID))
    app = PaymentApp(state, device, link=TcpLink(), persist=files.save)
    for kind, key in (("TMK", TMK), ("PIK", PIK), ("MAK", MAK), ("TDK", TDK)):
        app.keys.store(kind, key, Algorithm.TDES)
    state.signed_in = True
    files.save(state)
    return app


def reopen(home: Path, *, model: str = MODEL) -> PaymentApp:
    """The terminal as it comes back from storage after a power cut."""
    files = TerminalFiles(home)
    state = files.load(TID)
    device = Device(SERIAL, model, device_key=files.device_key(TID))
    return PaymentApp(state, device, link=TcpLink(), persist=files.save)


def agent_for(app: PaymentApp, tms: ShelfTms, home: Path, **kw: Any) -> UpgradeAgent:
    return UpgradeAgent(app, app.device, tms, home=home, **kw)


def kcvs(app: PaymentApp) -> dict[str, str]:
    return {kind: key.kcv for kind, key in app.state.keys.items()}


def batch(app: PaymentApp) -> tuple[int, int, list[tuple[str, str, int, str]]]:
    state = app.state
    return state.stan, state.batch_no, [(t.kind, t.stan, t.amount, t.status) for t in state.txn_log]
