"""End to end: the real host, the real TMS API (uvicorn on loopback) and emulated terminals
whose upgrade agents talk HTTP (`HttpTmsClient`) through real campaigns."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from e2esite import MID, MODEL, PAN, PIN, Site

from posdoctor.cli.serve import bind_tms_socket
from posdoctor.host import provision_terminal
from posdoctor.terminal import Card, PaymentApp
from posdoctor.terminal.slots import SlotStore, slots_dir
from posdoctor.terminal.telemetry import Telemetry
from posdoctor.terminal.tmsclient import HttpTmsClient, TmsRefused
from posdoctor.terminal.upgrade import UpgradeAgent
from posdoctor.tms.campaigns import CampaignSettings, create_campaign, start_campaign
from posdoctor.tms.credentials import issue_credential
from posdoctor.tms.firmware import add_package, build_package
from posdoctor.tms.signing import public_key_hex
from posdoctor.web.tms_api import create_tms_app

OLD = "010000"
EVERY_MINUTE = "00:00-23:59"


@pytest.fixture
def tms_url(site: Site) -> Iterator[str]:
    sock = bind_tms_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_tms_app(site.store, site.home), log_level="warning",
                                           access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    host, port = sock.getsockname()[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@dataclass
class Member:
    app: PaymentApp
    client: HttpTmsClient
    agent: UpgradeAgent

    @property
    def tid(self) -> str:
        return self.app.state.tid


@pytest.fixture
async def fleet(site: Site, tms_url: str) -> AsyncIterator[list[Member]]:
    members: list[Member] = []
    yield members
    for member in members:
        await member.client.aclose()


async def join(site: Site, tms_url: str, fleet: list[Member], count: int) -> list[Member]:
    """`count` provisioned, initialised, signed-in terminals with upgrade agents over HTTP."""
    key = public_key_hex(site.home)
    for n in range(len(fleet), len(fleet) + count):
        tid, serial = f"3000{n:04d}", f"UPG{n:05d}"
        sheet = provision_terminal(site.store, site.hsm, tid, MID, serial, MODEL)
        app = site.terminal(tid, serial)
        app.inject_transport_key(sheet.tk)
        assert all(o.ok for o in await app.initialise())
        assert (await app.sign_in()).ok
        app.state.tms_public_key = key
        client = HttpTmsClient(tms_url, issue_credential(site.store, tid), serial)
        fleet.append(Member(app, client, UpgradeAgent(app, app.device, client, home=site.home)))
    return fleet[-count:]


def release(site: Site, version: str, **kw) -> None:
    models = kw.pop("register_models", None)
    add_package(site.store, site.home, build_package(version, [MODEL], payload_size=6000, **kw),
                version=version, models=models)


def campaign(site: Site, version: str, tids: list[str], **settings) -> int:
    chosen = CampaignSettings(window=EVERY_MINUTE, stagger_minutes=0, **settings)
    created = create_campaign(site.store, f"upgrade to {version}", version, tids=tids, settings=chosen)
    start_campaign(site.store, created.id)
    return created.id


async def run_rounds(members: list[Member], rounds: int = 4) -> dict[str, str]:
    """Heartbeat then poll, a few rounds (the second wave opens after the first ends)."""
    last: dict[str, str] = {}
    for _ in range(rounds):
        for member in members:
            await Telemetry(member.app.state, member.app.device, member.app.events).send_heartbeat(member.client)
            last[member.tid] = (await member.agent.poll()).status
    return last


async def test_good_package_upgrades_every_wave(site: Site, tms_url: str, fleet: list[Member]) -> None:
    members = await join(site, tms_url, fleet, 3)
    release(site, "020000")
    cid = campaign(site, "020000", [m.tid for m in members], canary_pct=34, min_sample=1)
    await run_rounds(members)
    row = site.store.get_campaign(cid)
    assert (row.state, row.succeeded, row.failed, row.targeted) == ("completed", 3, 0, 3)
    for member in members:
        assert member.app.state.app_version == "020000"
        assert SlotStore(slots_dir(site.home, member.tid)).summary()["active"] == "B"
    steps = [e.code for e in site.store.events(tid=members[0].tid, kind="upgrade_report", limit=50)]
    assert steps == ["download", "verify", "install", "reboot", "self_check", "sign_in", "commit"]
    beat = site.store.latest_heartbeat(members[0].tid)
    assert beat is not None and beat.app_version == "020000"


async def test_bad_package_halts_in_the_canary_wave_and_rolls_back(site: Site, tms_url: str,
                                                                  fleet: list[Member]) -> None:
    members = await join(site, tms_url, fleet, 8)
    release(site, "020001", defect="sign_in")
    cid = campaign(site, "020001", [m.tid for m in members], canary_pct=25, min_sample=2, threshold=0.2)
    first = await run_rounds(members, rounds=1)
    later = await run_rounds(members, rounds=1)
    row = site.store.get_campaign(cid)
    assert row.state == "halted" and row.failed == 2 and row.succeeded == 0
    canaries = {t.tid for t in site.store.campaign_targets(cid) if t.wave == 1}
    assert len(canaries) == 2
    for member in members:
        assert member.app.state.app_version == OLD  # nobody runs the bad build
        if member.tid in canaries:
            assert first[member.tid] == "rolled_back"  # by itself, in the first round
            assert SlotStore(slots_dir(site.home, member.tid)).summary() == {
                "active": "A", "trial": False, "versions": {"A": OLD, "B": "020001"}}
            assert "upgrade.rolled_back" in [e.code for e in member.app.state.events]
        else:
            assert first[member.tid] == "idle"  # the second wave was never offered
        assert later[member.tid] == "idle"  # halted: nothing is offered any more
    steps = [e.code for e in site.store.events(tid=sorted(canaries)[0], kind="upgrade_report", limit=50)]
    assert steps[-2:] == ["sign_in", "rollback"]
    assert (await members[0].app.sale(Card(PAN, "3012"), 100, pin=PIN)).ok  # still in business


async def test_settle_first_settles_before_installing(site: Site, tms_url: str, fleet: list[Member]) -> None:
    [member] = await join(site, tms_url, fleet, 1)
    assert (await member.app.sale(Card(PAN, "3012"), 2500, pin=PIN)).ok
    batch_no = member.app.state.batch_no
    release(site, "020002", settle_first=True)
    campaign(site, "020002", [member.tid], canary_pct=100, min_sample=1)
    assert (await member.agent.poll()).status == "upgraded"
    assert member.app.state.txn_log == [] and member.app.state.batch_no == batch_no + 1
    settled = site.store.find_batch(member.tid, batch_no)
    assert settled is not None and settled.settled_at is not None and settled.debit_amount == 2500


async def test_package_for_another_model_is_refused(site: Site, tms_url: str, fleet: list[Member]) -> None:
    [member] = await join(site, tms_url, fleet, 1)
    add_package(site.store, site.home, build_package("020003", ["P9"], payload_size=4000), version="020003",
                models=[MODEL])  # registered for this model by mistake; the signed manifest says P9
    cid = campaign(site, "020003", [member.tid], canary_pct=100, min_sample=1)
    result = await member.agent.poll()
    assert (result.status, result.reason) == ("refused", "incompatible_model")
    target = site.store.campaign_target(cid, member.tid)
    assert target is not None and target.state == "failed" and target.reason == "incompatible_model"
    assert SlotStore(slots_dir(site.home, member.tid)).info("B") is None
    assert member.app.state.app_version == OLD


async def test_revoked_or_foreign_credentials_are_refused(site: Site, tms_url: str, fleet: list[Member]) -> None:
    [member] = await join(site, tms_url, fleet, 1)
    stranger = HttpTmsClient(tms_url, "not-a-credential", member.app.state.serial)
    try:
        with pytest.raises(TmsRefused) as refused:
            await stranger.check_upgrade(OLD, MODEL)
        assert refused.value.status == 401
    finally:
        await stranger.aclose()
    assert (await member.agent.poll()).status == "idle"
    assert await Telemetry(member.app.state, member.app.device).upload_logs(member.client) >= 1
    assert site.store.events(tid=member.tid, kind="terminal_event", limit=5)


async def test_rolled_back_campaign_sends_terminals_back(site: Site, tms_url: str, fleet: list[Member]) -> None:
    from posdoctor.tms.campaigns import rollback_campaign

    members = await join(site, tms_url, fleet, 2)
    release(site, "020004")
    cid = campaign(site, "020004", [m.tid for m in members], canary_pct=50, min_sample=1)
    await run_rounds(members, rounds=2)
    assert site.store.get_campaign(cid).succeeded == 2
    rollback_campaign(site.store, cid, "operator: bad field reports")
    statuses = await run_rounds(members, rounds=2)
    row = site.store.get_campaign(cid)
    assert (row.state, row.rolled_back, row.succeeded) == ("rolled_back", 2, 0)
    for member in members:
        assert member.app.state.app_version == OLD and statuses[member.tid] == "idle"
        assert SlotStore(slots_dir(site.home, member.tid)).summary()["active"] == "A"
        assert (await member.app.sign_in()).ok
