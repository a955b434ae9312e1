"""Live evidence for the doctor's tests: the real host on loopback, real emulated
terminals, and their reports written through the TMS's own report function.

A fault is applied by changing the world (a terminal's settings, keys, link, device,
or the registry), never by writing the evidence the doctor reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from posdoctor.crypto.hsm import SoftHSM
from posdoctor.doctor.diagnose import diagnose_terminal
from posdoctor.host import HostConfig, HostServer, KeyRoomSheet, provision_card, provision_terminal
from posdoctor.store import Store, open_store
from posdoctor.terminal import Device, LinkConditions, PaymentApp, TcpLink, TerminalFiles, new_state
from posdoctor.terminal.telemetry import heartbeat_payload, pending_log_events, self_check_payload
from posdoctor.tms.reports import record_report

MID = "898100000000001"
MID2 = "898100000000002"
PAN = "6222020000000000000"
PIN = "123456"
MODEL = "N910"
HOST_CONFIG = HostConfig(port=0, commit_interval_s=0.0005, idle_timeout_s=5.0)


def tid_of(n: int) -> str:
    return f"{10000000 + n}"


def serial_of(n: int) -> str:
    return f"SN{n:04d}"


@dataclass
class DoctorSite:
    store: Store
    hsm: SoftHSM
    host: HostServer
    address: tuple[str, int]
    home: Path
    sheets: dict[str, KeyRoomSheet] = field(default_factory=dict)
    apps: dict[str, PaymentApp] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)
    account_id: int = 0

    def terminal(self, n: int, *, conditions: LinkConditions | None = None, tid: str | None = None,
                 connect_timeout_s: float = 1.0, receive_timeout_s: float = 2.0) -> PaymentApp:
        """A factory-fresh emulated terminal number ``n``, pointed at the host."""
        files = TerminalFiles(self.home)
        tid = tid or tid_of(n)
        state = new_state(tid, serial_of(n), mid=MID, model=MODEL)
        state.comm.host, state.comm.port = self.address
        state.comm.connect_timeout_s, state.comm.receive_timeout_s = connect_timeout_s, receive_timeout_s
        device = Device(serial_of(n), MODEL, device_key=files.device_key(tid))
        app = PaymentApp(state, device, link=TcpLink(conditions), persist=files.save)
        self.apps[tid_of(n)] = app
        self.devices[tid_of(n)] = device
        return app

    async def initialised(self, n: int, **kw: object) -> PaymentApp:
        """Transport key injected, TMK/parameters/CAPK/AID downloaded; not signed in."""
        app = self.terminal(n, **kw)  # type: ignore[arg-type]
        app.inject_transport_key(self.sheets[tid_of(n)].tk)
        outcomes = await app.initialise()
        assert all(o.ok for o in outcomes), [o.text for o in outcomes]
        return app

    async def ready(self, n: int, **kw: object) -> PaymentApp:
        """Transport key injected, TMK/parameters/CAPK/AID downloaded, signed in."""
        app = await self.initialised(n, **kw)
        assert (await app.sign_in()).ok
        app.state.comm.receive_timeout_s = 2.0
        return app

    async def broken_tmk(self, n: int, *, byte: int = 3, mask: int = 0x10) -> PaymentApp:
        """Initialised, then a TMK differing from the host's in one non-parity bit
        (``byte`` XOR ``mask``): the sign-in fails and the terminal reports."""
        assert mask.bit_count() == 1 and mask != 0x01, "one bit, and bit 0 of a DES key byte is parity"
        app = await self.initialised(n)
        wrong = bytearray(self.sheets[tid_of(n)].tmk)
        wrong[byte] ^= mask
        app.inject_tmk(bytes(wrong))
        assert not (await app.sign_in()).ok
        self.report(n)
        return app

    def cause(self, n: int) -> str | None:
        """The doctor's top cause for terminal ``n``."""
        return diagnose_terminal(self.store, tid_of(n)).cause

    def report(self, n: int, *, self_check: bool = False) -> None:
        """Upload heartbeat, logs (and a self-check) as the TMS API would store them."""
        tid = tid_of(n)
        app, device = self.apps[tid], self.devices[tid]
        now = datetime.now(UTC)
        events = pending_log_events(app.state)
        if events:
            record_report(self.store, tid, "logs", {"events": [e.to_json() for e in events]}, now)
            app.state.logs_uploaded_until = events[-1].at
        record_report(self.store, tid, "heartbeat", heartbeat_payload(app.state, device, now), now)
        if self_check:
            record_report(self.store, tid, "self_check", self_check_payload(app.state, device, now), now)

    async def healthy_fleet(self, count: int = 3) -> None:
        """Terminals 1..count signed in, one sale each, reported: the fleet the faulty one lives in."""
        for n in range(1, count + 1):
            app = await self.ready(n)
            assert (await app.sale(card(), 1000, PIN)).ok
            self.report(n)


def card() -> object:
    from posdoctor.terminal import Card

    return Card(PAN, "3012")


async def start_doctor_site(store: Store, hsm: SoftHSM, home: Path, terminals: int = 6,
                            config: HostConfig = HOST_CONFIG) -> DoctorSite:
    store.add_merchant(MID, "示例商户")
    store.add_merchant(MID2, "另一商户")
    sheets = {tid_of(n): provision_terminal(store, hsm, tid_of(n), MID, serial_of(n), MODEL)
              for n in range(1, terminals + 1)}
    issued = provision_card(store, hsm, PAN, PIN, 10_000_000, expiry="3012")
    host = HostServer(store, hsm, config)
    address = await host.start()
    return DoctorSite(store, hsm, host, address, home, sheets, account_id=issued.account_id)


@pytest.fixture
async def dsite(tmp_path: Path, home: Path, lmk: bytes) -> AsyncIterator[DoctorSite]:
    store = open_store(f"sqlite:///{tmp_path / 'doctor.db'}", home=home)
    site = await start_doctor_site(store, SoftHSM(lmk), home)
    try:
        yield site
    finally:
        await site.host.stop()
        store.close()
