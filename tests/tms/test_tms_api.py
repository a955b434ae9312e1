"""The TMS API over a real uvicorn server on loopback (httpx): auth, reports, upgrade, ranges."""

import hashlib

import httpx
import pytest

from posdoctor.tms.credentials import issue_credential, revoke_credential
from posdoctor.tms.signing import public_key_hex, verify_package


@pytest.fixture
def device(fleet):
    tid = fleet.add(1)[0]
    return tid, issue_credential(fleet.store, tid)


def _client(base, token=None, serial=None):
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if serial:
        headers["X-Device-Serial"] = serial
    return httpx.Client(base_url=base, headers=headers, timeout=10)


def test_refusals_unknown_revoked_and_other_device(fleet, device, tms_server):
    tid, token = device
    with _client(tms_server) as anonymous:
        answer = anonymous.post("/api/v1/heartbeat", json={})
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["error"] == "unknown_credential" and answer.json()["zh"]
    with _client(tms_server, "pdt_forged") as forged:
        assert forged.get("/api/v1/upgrade").status_code == 401
    with _client(tms_server, token, serial="SN-OTHER") as other:
        answer = other.post("/api/v1/heartbeat", json={})
        assert answer.status_code == 403
        assert answer.json()["error"] == "serial_mismatch" and "SN-OTHER" in answer.json()["en"]
    with _client(tms_server, token, serial=f"SN{tid}") as good:
        assert good.post("/api/v1/heartbeat", json={"app_version": "1.0.0"}).status_code == 200
        assert good.post("/api/v1/heartbeat", json={"tid": "10009999"}).json()["error"] == "tid_mismatch"
        revoke_credential(fleet.store, tid)
        answer = good.post("/api/v1/heartbeat", json={})
        assert (answer.status_code, answer.json()["error"]) == (401, "revoked_credential")
        assert "吊销" in answer.json()["zh"]


def test_heartbeat_status_and_logs_become_evidence(fleet, device, tms_server, clock):
    tid, token = device
    beat = {"tid": tid, "at": "2026-11-29T09:59:00+08:00", "app_version": "1.0.1",
            "firmware_version": "fw7", "model": "P1", "serial": f"SN{tid}",
            "peripherals": {"printer": "paper_out", "card_reader": "ok"}, "battery_pct": 12,
            "power_source": "battery", "signal_dbm": -97, "error_counters": {"connect_timeout": 3},
            "last_errors": ["comm.connect_timeout"], "comm": {"host": "10.0.0.1", "port": 5800}}
    with _client(tms_server, token) as terminal:
        answer = terminal.post("/api/v1/heartbeat", json=beat)
        assert answer.status_code == 200
        body = answer.json()
        assert body["server_time"] == clock.now.isoformat() and body["upgrade"] is False
        status = {"peripherals": {"printer": "ok"}, "params": "inconsistent", "keys": "ok"}
        assert terminal.post("/api/v1/status", json=status).json() == {"accepted": 1}
        events = {"events": [{"at": "2026-11-29T01:58:00+00:00", "tid": tid, "kind": "sign_in",
                              "code": "host.rc.A0", "message_zh": "签到失败", "message_en": "sign-in failed",
                              "detail": {"rc": "A0"}},
                             {"at": "2026-11-29T01:58:30+00:00", "tid": tid, "kind": "comm",
                              "code": "comm.connect_timeout", "message_zh": "连接超时",
                              "message_en": "connect timeout"}]}
        assert terminal.post("/api/v1/logs", json=events).json() == {"accepted": 2}
    heartbeat, _registration = fleet.store.events(tid, kind="heartbeat")  # oldest first
    assert (heartbeat.source, heartbeat.code) == ("terminal", "degraded")
    assert heartbeat.at.isoformat() == "2026-11-29T01:59:00+00:00"  # the terminal's clock
    assert heartbeat.detail["peripherals"]["printer"] == "paper_out"
    assert heartbeat.detail["error_counters"] == {"connect_timeout": 3}
    latest = fleet.store.latest_heartbeats([tid])[tid]
    assert (latest.app_version, latest.firmware_version, latest.code) == ("1.0.1", "fw7", "degraded")
    assert fleet.store.get_terminal(tid).app_version == "1.0.1"
    [check] = fleet.store.events(tid, kind="self_check")
    assert check.code == "failed" and check.detail["params"] == "inconsistent"
    uploaded = fleet.store.events(tid, kind="terminal_event")
    assert [(e.code, e.detail["operation"], e.detail["zh"]) for e in uploaded] == [
        ("host.rc.A0", "sign_in", "签到失败"), ("comm.connect_timeout", "comm", "连接超时")]
    assert uploaded[0].detail["rc"] == "A0"


INVALID_BODIES = [
    ("/api/v1/heartbeat", {"battery_pct": 140}, "battery_pct"),
    ("/api/v1/heartbeat", {"power_source": "solar"}, "power_source"),
    ("/api/v1/status", {"keys": "lost"}, "keys"),
    ("/api/v1/logs", {"events": [{"kind": "x"}]}, "events.0.at"),
    ("/api/v1/upgrade/report", {"step": "explode", "ok": True}, "step"),
]


def test_invalid_bodies_are_422_with_the_field(fleet, device, tms_server):
    _tid, token = device
    before = len(fleet.store.events())
    with _client(tms_server, token) as terminal:
        for path, body, field in INVALID_BODIES:
            answer = terminal.post(path, json=body)
            assert answer.status_code == 422, path
            assert field in answer.json()["en"] and field in answer.json()["zh"]
    assert len(fleet.store.events()) == before  # nothing written


def test_non_json_body_is_422(device, tms_server):
    with _client(tms_server, device[1]) as terminal:
        answer = terminal.post("/api/v1/heartbeat", content=b"\x00garbage",
                               headers={"Content-Type": "application/json"})
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_request"


def test_upgrade_offer_ranged_download_resume_and_reports(fleet, device, tms_server, home):
    tid, token = device
    fleet.package(payload_size=200_000)
    from posdoctor.tms.campaigns import create_campaign, start_campaign

    campaign = start_campaign(fleet.store, create_campaign(fleet.store, "c", "2.0.0").id)
    with _client(tms_server, token) as terminal:
        assert terminal.post("/api/v1/heartbeat", json={"app_version": "1.0.0", "model": "P1"}).json()["upgrade"]
        assert terminal.get("/api/v1/upgrade", params={"version": "1.0.0", "model": "P9"}).status_code == 204
        offer = terminal.get("/api/v1/upgrade", params={"version": "1.0.0", "model": "P1"}).json()
        assert offer["campaign"] == campaign.id and offer["action"] == "upgrade"
        package = offer["package"]
        # download in pieces, "interrupted" after the first, resumed from where it stopped
        first = terminal.get(package["url"], headers={"Range": "bytes=0-65535"})
        assert first.status_code == 206
        assert first.headers["content-range"] == f"bytes 0-65535/{package['size']}"
        received = first.content
        while len(received) < package["size"]:
            part = terminal.get(package["url"], headers={"Range": f"bytes={len(received)}-{len(received) + 49999}"})
            assert part.status_code == 206
            received += part.content
        assert hashlib.sha256(received).hexdigest() == package["sha256"]
        assert verify_package(public_key_hex(home), received, package["signature"])
        whole = terminal.get(package["url"])
        assert whole.status_code == 200 and whole.content == received
        assert whole.headers["x-package-sha256"] == package["sha256"]
        tail = terminal.get(package["url"], headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == received[-10:]
        open_end = terminal.get(package["url"], headers={"Range": f"bytes={package['size'] - 5}-"})
        assert open_end.content == received[-5:]
        for bad in (f"bytes={package['size']}-", "bytes=9-3", "bytes=0-1,5-6", "items=0-1", "bytes=-"):
            refused = terminal.get(package["url"], headers={"Range": bad})
            assert refused.status_code == 416, bad
            assert refused.headers["content-range"] == f"bytes */{package['size']}"
        missing = terminal.get("/api/v1/packages/9.9.9")
        assert missing.status_code == 404 and "9.9.9" in missing.json()["zh"]
        for step in ("download", "verify", "install", "reboot", "self_check", "sign_in", "commit"):
            report = {"campaign": campaign.id, "step": step, "ok": True, "from_version": "1.0.0",
                      "to_version": "2.0.0", "attempt": 1}
            assert terminal.post("/api/v1/upgrade/report", json=report).json() == {"accepted": 1}
        assert terminal.get("/api/v1/upgrade", params={"version": "2.0.0", "model": "P1"}).status_code == 204
    campaign = fleet.store.get_campaign(campaign.id)
    assert (campaign.state, campaign.succeeded) == ("completed", 1)
    steps = [e.code for e in fleet.store.events(tid, kind="upgrade_report")]
    assert steps == ["download", "verify", "install", "reboot", "self_check", "sign_in", "commit"]
    detail = fleet.store.events(tid, kind="upgrade_report")[-1].detail
    assert detail == {"campaign": campaign.id, "from_version": "1.0.0", "to_version": "2.0.0",
                      "ok": True, "reason": None, "attempt": 1}
