"""Software and upgrade causes, and the fleet-wide ones.

The upgrade steps are reported through the TMS's own report function
(``apply_upgrade_reports``, what the upgrade agent's reports go through): running the
emulator's whole download/verify/install cycle for each case would add a package
server to every test. What happens after the upgrade is live: the real terminal meets
the host with what the upgrade left it (keys gone, settings reset, a buggy version).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from doctorkit import PIN, DoctorSite, card, dsite, tid_of  # noqa: F401

from posdoctor.doctor.diagnose import diagnose_fleet, diagnose_terminal
from posdoctor.doctor.rules.base import UPGRADE_EFFECT
from posdoctor.terminal.events import TerminalEvent
from posdoctor.tms.campaign_reports import apply_upgrade_reports
from posdoctor.tms.reports import record_report

NEW = "010103"


def report_upgrade(site: DoctorSite, n: int, *steps: tuple[str, bool, str | None], attempt: int = 1,
                   at: datetime | None = None) -> None:
    at = at or datetime.now(UTC)
    apply_upgrade_reports(site.store, [
        (tid_of(n), {"campaign": None, "step": step, "ok": ok, "from_version": "010000", "to_version": NEW,
                     "reason": reason, "attempt": attempt}, at) for step, ok, reason in steps])


DONE = (("download", True, None), ("verify", True, None), ("install", True, None), ("reboot", True, None),
        ("self_check", True, None), ("commit", True, None))


async def test_keys_lost_right_after_an_upgrade(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    app = await dsite.ready(4)
    report_upgrade(dsite, 4, *DONE)
    app.state.keys.clear()  # the package wiped the key store
    app.state.sign_out()
    assert not (await app.sign_in()).ok
    dsite.report(4, self_check=True)
    diagnosis = diagnose_terminal(dsite.store, tid_of(4))
    assert diagnosis.cause == "upgrade.keys_lost"  # not keys.tmk_missing
    assert "broken_after_upgrade" in diagnosis.symptoms


async def test_config_lost_right_after_an_upgrade(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    app = await dsite.ready(4)
    report_upgrade(dsite, 4, *DONE)
    app.state.comm.host, app.state.comm.port = "127.0.0.1", 1  # factory defaults
    assert not (await app.sale(card(), 1000, PIN)).ok
    dsite.report(4)
    assert diagnose_terminal(dsite.store, tid_of(4)).cause == "upgrade.config_lost"  # not config.wrong_host


@pytest.mark.parametrize("terminal_says_it_reset", [True, False])
async def test_config_lost_seen_only_hours_after_the_upgrade(dsite: DoctorSite, terminal_says_it_reset: bool) -> None:
    """Upgraded at midday, nothing done until the evening heartbeat shows factory comm
    settings. The terminal's own log that the package reset its settings ties them to the
    upgrade however late they show; without it, settings first seen wrong hours later may
    have been changed by hand since, and are not put down to the upgrade."""
    await dsite.healthy_fleet()
    app = await dsite.ready(4)
    midday = datetime.now(UTC) - UPGRADE_EFFECT - timedelta(hours=2)
    dsite.host.clock = lambda: midday - timedelta(hours=1)  # the host stamps a morning sale
    assert (await app.sale(card(), 1000, PIN)).ok
    dsite.host.clock = lambda: datetime.now(UTC)
    dsite.report(4)
    report_upgrade(dsite, 4, *DONE, at=midday)
    if terminal_says_it_reset:
        reset = TerminalEvent(midday - timedelta(seconds=1), tid_of(4), "upgrade", "upgrade.reset",
                              "升级重置了终端数据", "The upgrade reset terminal data", {"resets": ["config"]})
        record_report(dsite.store, tid_of(4), "logs", {"events": [reset.to_json()]}, midday)
    app.state.comm.host, app.state.comm.port = "127.0.0.1", 1  # factory defaults
    assert not (await app.sale(card(), 1000, PIN)).ok  # refused at the wrong endpoint, hours after
    dsite.report(4)
    expected = "upgrade.config_lost" if terminal_says_it_reset else "config.wrong_host"
    assert diagnose_terminal(dsite.store, tid_of(4)).cause == expected


async def test_corrupt_download_and_incompatible_model(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet(4)
    for attempt in (1, 2, 3):
        report_upgrade(dsite, 2, ("download", True, None), ("verify", False, "sha256 mismatch"), attempt=attempt)
    assert diagnose_terminal(dsite.store, tid_of(2)).cause == "upgrade.download_corrupt"
    report_upgrade(dsite, 3, ("download", True, None), ("verify", True, None),
                   ("install", False, "model N910 not supported by the package"))
    assert diagnose_terminal(dsite.store, tid_of(3)).cause == "upgrade.incompatible_model"


async def test_version_below_the_minimum_is_refused(dsite: DoctorSite) -> None:
    from posdoctor.tms.policies import set_policy

    await dsite.healthy_fleet()
    app = await dsite.ready(4)
    app.state.settings.signin_device_info = True
    set_policy(dsite.store, "min_app_version", "2.0.0", actor="ops", reason="security fix")
    await dsite.host.invalidate()
    outcome = await app.sign_in()
    assert outcome.response_code == "07", outcome.text
    dsite.report(4)
    assert diagnose_terminal(dsite.store, tid_of(4)).cause == "upgrade.version_blocked"


async def test_a_defective_version_is_named_fleet_wide(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet(6)
    for n in (4, 5, 6):
        report_upgrade(dsite, n, *DONE)
        app = dsite.apps[tid_of(n)]
        app.state.app_version = NEW
        app.state.comm.receive_timeout_s = 0.0001  # the new version's bug: it never waits for answers
    await asyncio.gather(*(dsite.apps[tid_of(n)].sale(card(), 1000, PIN) for n in (4, 5, 6)))
    for n in range(1, 7):
        dsite.report(n)
    fleet = diagnose_fleet(dsite.store)
    assert fleet.by_cause.get("upgrade.firmware_defect") == 3, fleet.to_json()["by_cause"]
    assert fleet.terminals[0].cause == "upgrade.firmware_defect"  # fleet causes first
    assert diagnose_terminal(dsite.store, tid_of(2)).findings == []


async def test_host_outage_is_one_fleet_cause_not_many_network_problems(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet(6)
    for app in dsite.apps.values():
        app.state.comm.connect_timeout_s = 0.3
    await dsite.host.stop()
    await asyncio.gather(*(app.sale(card(), 1000, PIN) for app in dsite.apps.values()))
    await asyncio.gather(*(app.sale(card(), 1000, PIN) for app in dsite.apps.values()))
    for n in range(1, 7):
        dsite.report(n)
    fleet = diagnose_fleet(dsite.store)
    assert fleet.by_cause == {"backend.host_down": 6}, fleet.to_json()["by_cause"]
    top = fleet.terminals[0].top
    assert top is not None and any("terminals found the host refusing" in ln.en for ln in top.evidence)
