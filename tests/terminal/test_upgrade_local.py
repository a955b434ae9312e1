"""The upgrade agent through `LocalTmsClient` (the real `TmsService`, in-process, on every
store backend), report batching, and `HttpTmsClient`'s typed errors over loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from termhost import MID, SERIAL, TID
from upgradekit import MODEL, NEW, OLD, make_terminal, package

from posdoctor.store import Store
from posdoctor.terminal.telemetry import Telemetry
from posdoctor.terminal.tmsclient import HttpTmsClient, LocalTmsClient, ReportBatch, TmsBadAnswer, TmsRefused, \
    TmsTimeout, TmsUnreachable
from posdoctor.terminal.upgrade import UpgradeAgent
from posdoctor.tms.campaigns import CampaignSettings, create_campaign, start_campaign
from posdoctor.tms.firmware import add_package
from posdoctor.tms.service import TmsService
from posdoctor.tms.signing import public_key_hex

SETTINGS = CampaignSettings(canary_pct=100, min_sample=1, window="00:00-23:59", stagger_minutes=0)


def registered(store: Store, home: Path, port: int, **package_options) -> tuple:
    store.add_merchant(MID, "本地商户")
    store.add_terminal(TID, MID, SERIAL, model=MODEL)
    add_package(store, home, package(**package_options), version=NEW)
    app = make_terminal(home, port)
    app.state.tms_public_key = public_key_hex(home)
    campaign = create_campaign(store, "local", NEW, tids=[TID], settings=SETTINGS)
    start_campaign(store, campaign.id)
    return app, campaign.id


@pytest.mark.parametrize("batched", [False, True])
async def test_campaign_through_the_service_in_process(scripted, store: Store, home: Path, batched: bool) -> None:
    host = await scripted()
    app, cid = registered(store, home, host.port)
    service = TmsService(store, home)
    batch = ReportBatch(service) if batched else None
    client = LocalTmsClient(service, TID, SERIAL, batch)
    agent = UpgradeAgent(app, app.device, client, home=home)
    await Telemetry(app.state, app.device, app.events).send_heartbeat(client)
    assert (await agent.poll()).status == "upgraded"
    if batch is not None:
        assert store.get_campaign(cid).succeeded == 0  # nothing written before the flush
        assert batch.flush() >= 8
    row = store.get_campaign(cid)
    assert (row.state, row.succeeded, row.failed) == ("completed", 1, 0)
    steps = [e.code for e in store.events(tid=TID, kind="upgrade_report", limit=20)]
    assert steps[-3:] == ["self_check", "sign_in", "commit"]
    assert store.events(tid=TID, kind="heartbeat", limit=5)[0].detail["app_version"] == OLD


async def test_service_refusals_become_typed_errors(scripted, store: Store, home: Path) -> None:
    host = await scripted()
    registered(store, home, host.port)
    client = LocalTmsClient(TmsService(store, home), TID, SERIAL)
    with pytest.raises(TmsRefused) as refused:
        await client.heartbeat({"tid": "99999999", "app_version": OLD})
    assert refused.value.status == 403 and refused.value.code == "tms.refused"
    with pytest.raises(TmsBadAnswer):
        await client.heartbeat({"battery_pct": 250})
    with pytest.raises(TmsBadAnswer):
        await client.download({"version": "9.9.9"}, 0, 10)


async def test_http_client_failures_are_typed(tmp_path: Path) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    slow = HttpTmsClient(f"http://127.0.0.1:{port}", "token", SERIAL, timeout_s=0.2)
    try:
        with pytest.raises(TmsTimeout):
            await slow.check_upgrade(OLD, MODEL)
    finally:
        await slow.aclose()
        server.close()
        await server.wait_closed()
    closed = HttpTmsClient(f"http://127.0.0.1:{port}", "token", SERIAL, timeout_s=0.5)
    try:
        with pytest.raises(TmsUnreachable):
            await closed.heartbeat({"app_version": OLD})
    finally:
        await closed.aclose()
